"""The daemon and `dags test` under valgrind: no memory errors, no definite or indirect leaks.
(Only on the plain build: valgrind cannot run ASan binaries.)"""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, SLUICE, Home, check, eq, expect, finish, wait_until  # noqa: E402

VG = ["valgrind", "--error-exitcode=97", "--leak-check=full", "--show-leak-kinds=definite,indirect",
      "--errors-for-leak-kinds=definite,indirect", "-q"]

home = Home()
for name in ("etl_chain.lua", "fanout.lua", "trigger_rules.lua"):
    with open(os.path.join(ROOT, "dags", name)) as f:
        home.write_dag(name, f.read())


def env():
    e = dict(os.environ)
    e["TMPDIR"] = home.dir
    return e


def t_dags_test():
    p = subprocess.run(VG + [SLUICE, "--home", home.home, "--dags", home.dags, "dags", "test", "etl_chain"],
                       capture_output=True, text=True, timeout=300, env=env())
    eq(p.returncode, 0, "valgrind exit code\n" + p.stderr[-3000:])


def t_hostile_dag_files():
    """Every broken fixture through the loader under valgrind: ASan misses Lua stack overflows."""
    import glob
    import shutil
    other = Home()
    for path in glob.glob(os.path.join(ROOT, "tests", "fixtures", "broken", "*.lua")):
        if os.path.basename(path) not in ("infinite_loop.lua", "memory_bomb.lua"):  # only slow here
            shutil.copy(path, other.dags)
    p = subprocess.run(VG + [SLUICE, "--home", other.home, "--dags", other.dags, "dags", "check"],
                       capture_output=True, text=True, timeout=600, env=env())
    eq(p.returncode, 1, "import errors and no valgrind error (97)\n" + p.stderr[-3000:] + p.stdout[-2000:])
    expect("import error" in p.stdout, p.stdout)
    other.cleanup()


def t_daemon():
    log = open(os.path.join(home.dir, "vg-serve.log"), "w")
    proc = subprocess.Popen(VG + [SLUICE, "--home", home.home, "--dags", home.dags, "serve", "--port", "0"],
                            stdout=log, stderr=subprocess.STDOUT, env=env())
    try:
        wait_until(lambda: "serving DAGs" in open(log.name).read(), 60, "the daemon under valgrind")
        for dag_id in ("fanout", "trigger_rules"):
            out = home.json("dags", "trigger", dag_id, "--wait", "--json", timeout=120)
            eq(out["state"], "success", dag_id)
    finally:
        proc.terminate()
        code = proc.wait(timeout=120)
        log.close()
    with open(log.name) as f:
        text = f.read()
    eq(code, 0, "valgrind exit code\n" + text[-3000:])
    expect("==" not in text.replace("===", ""), text[-3000:])


check("dags test under valgrind", t_dags_test)
check("every hostile DAG file of tests/fixtures/broken through the loader under valgrind", t_hostile_dag_files)
check("the daemon under valgrind: runs, then SIGTERM", t_daemon)
home.cleanup()
finish()
