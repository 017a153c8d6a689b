"""What the kernels' correctness tests share: the sluice-kernel under test (argv[1], else
$SLUICE_KERNEL, else build/kernels/sluice-kernel), a temporary folder and its files, and kern(),
which runs the kernel and fails with its stderr on an unexpected exit status."""
import os
import subprocess
import sys
import tempfile

KERNEL = (sys.argv[1] if len(sys.argv) > 1 else None) or os.environ.get("SLUICE_KERNEL") \
    or os.path.abspath("build/kernels/sluice-kernel")
C_ENV = dict(os.environ, LC_ALL="C")
TMP = None
_n = [0]


def make_tmp(prefix):
    """The test's temporary folder (call once, before the helpers below)."""
    global TMP
    TMP = tempfile.mkdtemp(prefix=prefix)
    return TMP


def path(*p):
    return os.path.join(TMP, *p)


def write(name, data):
    p = path(name)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
    return p


def read(p):
    with open(p, "rb") as f:
        return f.read()


def fresh(name):
    """A new path under TMP, numbered so that no two calls give the same one."""
    _n[0] += 1
    return path("%s-%d" % (name, _n[0]))


def kern(*args, ok=(0,), timeout=120):
    p = subprocess.run([KERNEL] + [str(a) for a in args], capture_output=True, timeout=timeout)
    if p.returncode not in ok:
        raise AssertionError("sluice-kernel %s exited %d\nstderr: %s" % (" ".join(map(str, args)), p.returncode,
                                                                           p.stderr.decode(errors="replace")))
    return p
