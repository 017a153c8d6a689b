"""Broken DAG files: each becomes one import error "file:line: message" in `sluice dags check`,
within seconds, and never takes the good DAGs of the folder down with it."""
import glob
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import FIXTURES, Home, check, eq, expect, finish  # noqa: E402

broken = sorted(glob.glob(os.path.join(FIXTURES, "broken", "*.lua")))


def expectation(path):
    with open(path) as f:
        m = re.match(r"-- expect: (\d+): (.*)", f.readline())
    return int(m.group(1)), m.group(2).strip()


def case(path):
    def fn():
        home = Home()
        line, text = expectation(path)
        t0 = time.monotonic()
        p = home.run("dags", "check", path)
        took = time.monotonic() - t0
        home.cleanup()
        eq(p.returncode, 1, "exit code\n" + p.stdout + p.stderr)
        want = f"{path}:{line}: "
        expect(want in p.stdout and text in p.stdout, f"wanted '{want}...{text}' in:\n{p.stdout}")
        expect("1 import error" in p.stdout, p.stdout)
        expect(took < 15, f"took {took:.1f}s")
    return fn


for path in broken:
    check(f"dags check {os.path.basename(path)}", case(path))


def t_folder():
    """A folder of broken files and one good DAG: the good one lists and runs."""
    home = Home()
    for path in broken:
        shutil.copy(path, home.dags)
    home.write_dag("good.lua", 'local d = dag { id = "good" }\nd:task "a" { cmd = "echo fine" }\nreturn d\n')
    p = home.run("dags", "check")
    eq(p.returncode, 1, "dags check exit code")
    for path in broken:
        name = os.path.basename(path)
        line, text = expectation(path)
        expect(f"{name}:{line}: " in p.stdout and text in p.stdout, f"{name} in:\n{p.stdout}")
    expect(f"{len(broken)} import errors" in p.stdout, p.stdout)
    out = home.json("dags", "list", "--json")
    eq([d["dag_id"] for d in out["dags"]], ["good"], "listed dags")
    run = home.test_run("good", expect_state="success")
    eq(run["task_instances"][0]["state"], "success", "good runs")
    js = home.json("dags", "check", "--json", ok_codes=(1,))
    eq(len(js["import_errors"]), len(broken), "json import errors")
    expect(all(e["filename"].startswith(home.dags) for e in js["import_errors"]), "absolute filenames")
    home.cleanup()


def t_require_of_a_fifo():
    """Issue 14, defect 6: `require` of something that is not a regular file must not block."""
    home = Home()
    os.makedirs(os.path.join(home.dags, "lib"), exist_ok=True)
    os.mkfifo(os.path.join(home.dags, "lib", "fifo.lua"))
    home.write_dag("f.lua", 'require "fifo"\nlocal d = dag { id = "f" }\nd:task "t" { cmd = "true" }\nreturn d\n')
    t0 = time.monotonic()
    p = home.run("dags", "check", timeout=30)
    expect(time.monotonic() - t0 < 10, "it returned at once")
    expect(p.returncode == 1 and "f.lua:1: require: cannot load module 'fifo'" in p.stdout
           and "not a regular file" in p.stdout, p.stdout)
    home.cleanup()


def t_duplicate_dag_ids():
    home = Home()
    home.write_dag("a.lua", 'local d = dag { id = "same" }\nd:task "x" { cmd = "true" }\nreturn d\n')
    home.write_dag("b.lua", '\nlocal d = dag { id = "same" }\nd:task "y" { cmd = "true" }\nreturn d\n')
    p = home.run("dags", "check")
    eq(p.returncode, 1, "exit code")
    expect("b.lua:2: DAG id 'same' is already defined in a.lua:1" in p.stdout, p.stdout)
    home.cleanup()


def t_test_unknown_dag():
    home = Home()
    home.write_dag("bad.lua", "this is not lua\n")
    p = home.run("dags", "test", "nope")
    eq(p.returncode, 1, "exit code")
    expect("DAG 'nope' not found" in p.stderr and "bad.lua:1:" in p.stderr, p.stderr)
    home.cleanup()


def t_missing_folder():
    home = Home()
    p = home.run("--dags", os.path.join(home.dir, "nowhere"), "dags", "list")
    eq(p.returncode, 1, "exit code")
    expect("cannot read the DAG folder" in p.stderr, p.stderr)
    home.cleanup()


check("a folder with every broken file and one good DAG", t_folder)
check("duplicate DAG ids across files", t_duplicate_dag_ids)
check("require of a FIFO is an import error, not a hang", t_require_of_a_fifo)
check("dags test of an unknown DAG shows the import errors", t_test_unknown_dag)
check("a missing DAG folder is a clear error", t_missing_folder)
finish()
