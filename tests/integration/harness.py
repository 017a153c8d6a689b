"""Shared helpers for the integration tests: run the real sluice binary in a fresh home.

Each test script calls check(name, fn) for its cases and finish() at the end, which prints
"N passed, N failed" and exits non-zero on any failure."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback

SLUICE = os.environ.get("SLUICE_BIN") or os.path.abspath("build/cli/sluice")
ROOT = os.environ.get("SLUICE_SOURCE_ROOT") or os.path.abspath(".")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

_passed = 0
_failed = 0


class Home:
    """A temporary SLUICE_HOME with an optional DAG folder."""

    def __init__(self, dags=None):
        self.dir = tempfile.mkdtemp(prefix="sluice-it-")
        self.home = os.path.join(self.dir, "home")
        self.dags = dags or os.path.join(self.dir, "dags")
        os.makedirs(self.dags, exist_ok=True)

    def write_dag(self, name, text):
        path = os.path.join(self.dags, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run(self, *args, timeout=120, input=None, env=None):
        e = dict(os.environ)
        e.pop("SLUICE_HOME", None)
        e.pop("SLUICE_DAGS", None)
        e["TMPDIR"] = self.dir
        if env:
            e.update(env)
        cmd = [SLUICE, "--home", self.home, "--dags", self.dags] + [str(a) for a in args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input=input, env=e)

    def json(self, *args, ok_codes=(0,), **kw):
        p = self.run(*args, **kw)
        if p.returncode not in ok_codes:
            raise AssertionError(f"sluice {' '.join(map(str, args))} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        try:
            return json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"not JSON ({e}): {p.stdout!r}\nstderr: {p.stderr}")

    def test_run(self, dag_id, *extra, expect_state=None):
        out = self.json("dags", "test", dag_id, "--json", *extra, ok_codes=(0, 1))
        if expect_state is not None and out["state"] != expect_state:
            raise AssertionError(f"{dag_id}: run state {out['state']}, wanted {expect_state}\n"
                                 + json.dumps(out, indent=1))
        return out

    def log(self, dag_id, run_id, task, map_index=-1, try_number=None):
        args = ["tasks", "logs", dag_id, run_id, task, "--map-index", map_index]
        if try_number:
            args += ["--try", try_number]
        p = self.run(*args)
        if p.returncode != 0:
            raise AssertionError(f"tasks logs failed: {p.stderr}")
        return p.stdout

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tis(run):
    """task_id (or (task_id, map_index) for mapped) -> task instance."""
    out = {}
    for t in run["task_instances"]:
        key = t["task_id"] if t["map_index"] < 0 else (t["task_id"], t["map_index"])
        out[key] = t
    return out


def expect(cond, msg):
    if not cond:
        raise AssertionError(msg)


def eq(got, want, what=""):
    if got != want:
        raise AssertionError(f"{what}: got {got!r}, wanted {want!r}")


def check(name, fn):
    """Runs one case; SLUICE_TEST_ONLY=text runs only the cases whose name contains text."""
    global _passed, _failed
    only = os.environ.get("SLUICE_TEST_ONLY")
    if only and only not in name:
        return
    t0 = time.monotonic()
    try:
        fn()
    except Exception:
        _failed += 1
        print(f"FAIL {name} ({time.monotonic() - t0:.1f}s)")
        traceback.print_exc(file=sys.stdout)
        return
    _passed += 1
    print(f"ok   {name} ({time.monotonic() - t0:.1f}s)")


def finish():
    print(f"{_passed} passed, {_failed} failed")
    sys.exit(1 if _failed else 0)


class Daemon:
    """A real `sluice serve` on a Home; stop() sends SIGTERM, kill() SIGKILL."""

    def __init__(self, home, *extra, env=None):
        self.home = home
        self.env = env or {}  # added to the daemon's environment
        self.extra = ("--port", "0") + extra  # any free port: tests never collide
        self.proc = None
        self.logs = []

    def start(self):
        import subprocess as sp
        e = dict(os.environ)
        e.pop("SLUICE_HOME", None)
        e.pop("SLUICE_DAGS", None)
        e["TMPDIR"] = self.home.dir
        e.update(self.env)
        log = open(os.path.join(self.home.dir, f"serve.{len(self.logs)}.log"), "w")
        self.logs.append(log.name)
        self.proc = sp.Popen([SLUICE, "--home", self.home.home, "--dags", self.home.dags, "serve", *self.extra],
                             stdout=log, stderr=sp.STDOUT, env=e)
        log.close()
        wait_until(lambda: "serving DAGs" in self.output() or self.proc.poll() is not None, 15, "the daemon to start",
                   interval=0.05)
        return self

    def stop(self, sig=15, timeout=30):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        code = self.proc.returncode if self.proc else None
        self.proc = None
        return code

    def kill(self):
        return self.stop(sig=9)

    def output(self):
        out = ""
        for name in self.logs:
            with open(name) as f:
                out += f.read()
        return out


def wait_until(fn, timeout, what, interval=0.2):
    """Polls fn() until it returns a true value (bounded); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    """A TCP port on 127.0.0.1 that is free now (for servers the tests start)."""
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def alive(pid):
    """Whether process pid exists and is no zombie (a process may go between any two reads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def wait_run(home, dag_id, run_id, timeout=60):
    """Waits (bounded) for a run to end; returns its row."""
    def done():
        runs = home.json("runs", "list", dag_id, "--json")["dag_runs"]
        r = [x for x in runs if x["dag_run_id"] == run_id]
        return r and r[0]["state"] in ("success", "failed") and r[0]
    return wait_until(done, timeout, f"run {run_id} of {dag_id} to end", interval=0.3)


def task_states(home, dag_id, run_id):
    """The task instances of a run by task id."""
    p = home.json("tasks", "list", dag_id, run_id, "--json")
    return {t["task_id"]: t for t in p["task_instances"]}


def api_call(home, daemon, method, path, body=None, accept="application/json"):
    """A request to the daemon's /api/v1 as admin (HTTP Basic); (status, text)."""
    import base64
    import json
    import re
    import urllib.error
    import urllib.request
    port = int(re.search(r"127\.0\.0\.1:(\d+)", daemon.output()).group(1))
    if not hasattr(home, "admin"):  # the first login removes the file
        with open(os.path.join(home.home, "admin_password.txt")) as f:
            home.admin = "admin:" + f.read().strip()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(home.admin.encode()).decode())
    req.add_header("Accept", accept)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def expect_config_errors(home, cases):
    """For each (sluice.cfg text, message): `config show` refuses that file with the message."""
    cfg = os.path.join(home.home, "sluice.cfg")
    for bad, why in cases:
        with open(cfg, "w") as f:
            f.write(bad)
        p = home.run("config", "show")
        expect(p.returncode != 0 and why in p.stderr, f"{bad!r}: {p.stderr}")
    os.unlink(cfg)


def expect_import_errors(home, cases):
    """For each (task line, message): a DAG whose line 2 is that task fails `dags check` with the
    message at x.lua:2."""
    for body, why in cases:
        home.write_dag("x.lua", f'local d = dag {{ id = "x" }}\n{body}\nreturn d\n')
        p = home.run("dags", "check")
        expect(p.returncode == 1 and "x.lua:2:" in p.stdout + p.stderr and why in p.stdout + p.stderr,
               f"{body}: {p.stdout}{p.stderr}")
