"""The scheduler daemon, for real: schedules, catchup, triggers, pause, folder watching, pools,
concurrent CLI writers, and kill -9 in the middle of a run."""
import concurrent.futures
import os
import random
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Home, check, eq, expect, finish, wait_until  # noqa: E402


def runs(home, dag_id):
    return home.json("runs", "list", dag_id, "--json")["dag_runs"]


def finished(home, dag_id, n):
    rs = runs(home, dag_id)
    done = [r for r in rs if r["state"] in ("success", "failed")]
    return rs if len(done) >= n else None


def t_every_schedule():
    home = Home()
    home.write_dag("every.lua", 'local d = dag { id = "every", schedule = "@every 2s" }\n'
                                'd:task "a" { cmd = "echo {{ data_interval_start }} {{ data_interval_end }}" }\nreturn d\n')
    dm = Daemon(home).start()
    try:
        rs = wait_until(lambda: finished(home, "every", 3), 15, "three scheduled runs")
    finally:
        eq(dm.stop(), 0, "clean exit on SIGTERM")
    rs = sorted((r for r in rs if r["state"] == "success"), key=lambda r: r["logical_date"])
    for a, b in zip(rs, rs[1:]):
        eq(a["data_interval_end"], b["data_interval_start"], "intervals are contiguous")
    for r in rs:
        eq(r["run_type"], "scheduled", "run_type")
        eq(r["logical_date"], r["data_interval_start"], "logical date = interval start")
        expect(r["dag_run_id"] == "scheduled__" + r["logical_date"], r["dag_run_id"])
    home.cleanup()


def t_catchup():
    home = Home()
    # ten days ago, daily: catchup creates every day (oldest first), at most 2 at a time
    start = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 10 * 86400))
    home.write_dag("c.lua", f'local d = dag {{ id = "catch", schedule = "@daily", start_date = "{start}", '
                            f'catchup = true, max_active_runs = 2 }}\n'
                            'd:task "a" { cmd = "sleep 0.2; echo {{ ds }}" }\nreturn d\n')
    home.write_dag("n.lua", f'local d = dag {{ id = "nocatch", schedule = "@daily", start_date = "{start}", catchup = false }}\n'
                            'd:task "a" { cmd = "true" }\nreturn d\n')
    dm = Daemon(home).start()
    try:
        rs = wait_until(lambda: finished(home, "catch", 10), 30, "ten catchup runs")
        nrs = wait_until(lambda: finished(home, "nocatch", 1), 10, "the latest run")
        time.sleep(1)
        nrs = runs(home, "nocatch")
    finally:
        dm.stop()
    dates = sorted(r["logical_date"][:10] for r in rs)
    eq(len(dates), 10, "one run per missed day")
    eq(len(set(dates)), 10, "no duplicates")
    eq(dates[0], start, "starts at start_date")
    eq(len(nrs), 1, "catchup = false creates only the latest interval")
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(time.time() - 86400))
    eq(nrs[0]["logical_date"][:10], yesterday, "latest complete interval")
    # max_active_runs = 2: never more than two runs overlapped
    spans = sorted((r["start_date"], r["end_date"]) for r in rs)
    for i, (s, _) in enumerate(spans):
        overlapping = sum(1 for (s2, e2) in spans if s2 <= s < e2)
        expect(overlapping <= 2, f"{overlapping} runs overlapped at {s}")
    # a restart does not create the same intervals again
    dm = Daemon(home).start()
    time.sleep(2)
    dm.stop()
    eq(len(runs(home, "catch")), 10, "no new runs after restart")
    home.cleanup()


def t_trigger_and_pause():
    home = Home()
    home.write_dag("m.lua", 'local d = dag { id = "m", params = { x = 1 } }\n'
                            'd:task "a" { cmd = "echo x={{ params.x }}" }\nreturn d\n')
    # queued while no daemon runs
    p = home.run("dags", "trigger", "m", "--conf", '{"x": 7}', "--run-id", "early")
    eq(p.returncode, 0, p.stderr)
    expect("is queued and starts when it runs" in p.stderr, p.stderr)
    p = home.run("dags", "trigger", "m", "--wait")
    eq(p.returncode, 1, "--wait needs a daemon")
    eq(runs(home, "m")[0]["state"], "queued", "queued")
    dm = Daemon(home).start()
    try:
        wait_until(lambda: finished(home, "m", 1), 10, "the queued run")
        expect("x=7" in home.log("m", "early", "a"), "conf applied")
        out = home.json("dags", "trigger", "m", "--wait", "--json", timeout=30)
        eq(out["state"], "success", "trigger --wait")
        # paused: triggered runs stay queued
        eq(home.run("dags", "pause", "m").returncode, 0, "pause")
        home.run("dags", "trigger", "m", "--run-id", "while_paused")
        time.sleep(2)
        st = {r["dag_run_id"]: r["state"] for r in runs(home, "m")}
        eq(st["while_paused"], "queued", "a paused DAG's triggered run waits")
        eq(home.run("dags", "unpause", "m").returncode, 0, "unpause")
        wait_until(lambda: {r["dag_run_id"]: r["state"] for r in runs(home, "m")}["while_paused"] == "success",
                   10, "the run after unpause")
    finally:
        dm.stop()
    home.cleanup()


def t_folder_watch():
    home = Home()
    home.write_dag("a.lua", 'local d = dag { id = "a" }\nd:task "t" { cmd = "true" }\nreturn d\n')
    dm = Daemon(home).start()
    try:
        time.sleep(1)
        # a new file is picked up within 2 s
        home.write_dag("b.lua", 'local d = dag { id = "b" }\nd:task "t" { cmd = "echo v1" }\nreturn d\n')
        time.sleep(2)
        out = home.json("dags", "trigger", "b", "--wait", "--json", timeout=30)
        eq(out["state"], "success", "new DAG runs")
        # a run keeps the version it started with
        home.write_dag("v.lua", 'local d = dag { id = "v" }\nlocal a = d:task "a" { cmd = "sleep 2" }\n'
                                'local b = d:task "b" { cmd = "echo version=1" }\nd:flow(a >> b)\nreturn d\n')
        time.sleep(2)
        home.run("dags", "trigger", "v", "--run-id", "old")
        wait_until(lambda: any(r["state"] == "running" for r in runs(home, "v")), 10, "run v started")
        home.write_dag("v.lua", 'local d = dag { id = "v" }\nlocal a = d:task "a" { cmd = "sleep 2" }\n'
                                'local b = d:task "b" { cmd = "echo version=2" }\nd:flow(a >> b)\nreturn d\n')
        wait_until(lambda: finished(home, "v", 1), 15, "run old")
        expect("version=1" in home.log("v", "old", "b"), "the run kept its version")
        # a broken new version keeps the last good one and records the import error
        home.write_dag("v.lua", "this is broken\n")
        time.sleep(2)
        out = home.json("dags", "trigger", "v", "--run-id", "after_break", "--wait", "--json", timeout=30)
        eq(out["state"], "success", "last good version still runs")
        expect("version=2" in home.log("v", "after_break", "b"), "the last good version is v2")
    finally:
        dm.stop()
    expect("import error: v.lua:1:" in dm.output(), dm.output())
    home.cleanup()


def t_pools():
    home = Home()
    stamps = os.path.join(home.dir, "stamps")
    home.write_dag("p.lua", 'local d = dag { id = "p" }\nfor i = 1, 4 do\n'
                            f'  d:task("t" .. i) {{ pool = "one", cmd = "echo start $(date +%s.%N) >> {stamps}; sleep 0.3; echo end $(date +%s.%N) >> {stamps}" }}\n'
                            'end\nreturn d\n')
    eq(home.run("pools", "set", "one", "1").returncode, 0, "pools set")
    out = home.json("pools", "list", "--json")
    eq({p["name"]: p["slots"] for p in out["pools"]}, {"default_pool": 128, "one": 1}, "pools")
    dm = Daemon(home).start()
    try:
        out = home.json("dags", "trigger", "p", "--wait", "--json", timeout=60)
        eq(out["state"], "success", "run")
    finally:
        dm.stop()
    events = []
    with open(stamps) as f:
        for line in f:
            kind, t = line.split()
            events.append((float(t), kind))
    depth = peak = 0
    for _, kind in sorted(events):
        depth += 1 if kind == "start" else -1
        peak = max(peak, depth)
    eq(peak, 1, "a pool of one slot runs one task at a time")
    home.cleanup()


def t_concurrent_cli():
    home = Home()
    home.write_dag("big.lua", 'local d = dag { id = "big", max_active_tasks = 32 }\n'
                              'for i = 1, 300 do d:task("t" .. i) { cmd = "true" } end\nreturn d\n')
    home.write_dag("small.lua", 'local d = dag { id = "small", max_active_runs = 16 }\nd:task "a" { cmd = "true" }\nreturn d\n')
    dm = Daemon(home).start()
    try:
        time.sleep(1)
        home.run("dags", "trigger", "big")
        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            procs = list(ex.map(lambda i: home.run("dags", "trigger", "small", "--run-id", f"r{i}", "--json"),
                                range(24)))
        for p in procs:
            eq(p.returncode, 0, p.stderr)
            expect("locked" not in p.stderr, p.stderr)
        wait_until(lambda: finished(home, "small", 24), 60, "24 small runs")
        wait_until(lambda: finished(home, "big", 1), 60, "the big run")
    finally:
        dm.stop()
    expect("locked" not in dm.output(), dm.output())
    eq([r["state"] for r in runs(home, "big")], ["success"], "big run")
    home.cleanup()


def t_kill9_exactly_once():
    """kill -9 of the daemon at 25 moments of one run of 300 tasks (a third of them live 50 ms,
    the others 0.4-0.9 s), then every task must have run exactly once."""
    home = Home()
    counts = os.path.join(home.dir, "counts")
    n = 300
    # 100 chains of 3 tasks, 4 at a time: ~35 s of work to interrupt
    home.write_dag("k.lua", f'local d = dag {{ id = "k", max_active_tasks = 4 }}\nlocal prev = nil\n'
                            f'for i = 1, {n} do\n'
                            '  local nap = (i % 3 == 0) and "0.05" or "0.$((4 + RANDOM % 6))"\n'
                            f'  local t = d:task("t" .. i) {{ cmd = "echo {{{{ task_id }}}} >> {counts}; sleep " .. nap }}\n'
                            '  if prev and i % 3 ~= 1 then d:flow(prev >> t) end\n  prev = t\nend\nreturn d\n')
    p = home.run("dags", "trigger", "k", "--run-id", "crashy")
    eq(p.returncode, 0, p.stderr)
    kills = 0
    rnd = random.Random(14)
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline and kills < 25:
        dm = Daemon(home).start()
        time.sleep(0.2 + rnd.random() * 0.8)
        dm.kill()
        kills += 1
        if runs(home, "k")[0]["state"] in ("success", "failed"):
            break
    dm = Daemon(home).start()
    try:
        r = wait_until(lambda: finished(home, "k", 1), 90, "the run to finish")
    finally:
        dm.stop()
    eq(r[0]["state"], "success", "run state")
    with open(counts) as f:
        seen = [line.strip() for line in f]
    dup = {t for t in seen if seen.count(t) > 1}
    eq(dup, set(), f"tasks that ran twice (after {kills} kills)")
    eq(len(set(seen)), n, "every task ran")
    p = home.run("db", "check")
    eq(p.returncode, 0, p.stdout)
    expect(kills >= 20, f"only {kills} kills happened before the run ended")
    print(f"     ({kills} kill -9 during the run, {len(seen)} task starts, none twice)")
    home.cleanup()


def t_store_faults():
    """The store's fault-injection hook through a whole run: the 5th write and every 97th after it
    (more than the largest transaction here) and every 2nd COMMIT of the daemon fail. Nothing may
    be lost or run twice, and the run must end as it would without faults (outputs passed on, a
    retry counted once)."""
    home = Home()
    counts = os.path.join(home.dir, "counts")
    n = 60
    home.write_dag("f.lua", f'local d = dag {{ id = "f", max_active_tasks = 4 }}\n'
                            f'local first = d:task "first" {{ cmd = "echo first >> {counts}; echo v=42 >> $SLUICE_OUTPUT" }}\n'
                            f'local flaky = d:task "flaky" {{ retries = 1, retry_delay = "0s", '
                            f'cmd = "echo flaky >> {counts}; test -e {counts}.again || {{ touch {counts}.again; exit 3; }}" }}\n'
                            f'for i = 1, {n} do\n'
                            f'  local t = d:task("t" .. i) {{ cmd = "echo {{{{ task_id }}}}={{{{ outputs.first.v }}}} >> {counts}" }}\n'
                            '  d:flow(first >> t)\nend\nreturn d\n')
    eq(home.run("dags", "trigger", "f", "--run-id", "faulty").returncode, 0, "trigger")
    dm = Daemon(home, env={"SLUICE_STORE_FAULTS": "write@5+97,commit@3+2"}).start()
    try:
        r = wait_until(lambda: finished(home, "f", 1), 90, "the run to finish despite the faults")
    finally:
        dm.stop()
    log = dm.output()
    faults = log.count("injected fault")
    eq(r[0]["state"], "success", "run state")
    with open(counts) as f:
        seen = [line.strip() for line in f]
    eq(seen.count("first"), 1, "first ran once")
    eq(seen.count("flaky"), 2, "flaky ran twice (one retry)")
    ts = [x for x in seen if x.startswith("t")]
    eq(sorted(ts), sorted(f"t{i}=42" for i in range(1, n + 1)), "every t ran once with first's output")
    tis = {t["task_id"]: t for t in home.json("tasks", "list", "f", "faulty", "--json")["task_instances"]}
    eq(tis["flaky"]["try_number"], 2, "flaky's try number")
    expect(all(t["state"] == "success" for t in tis.values()), "every task instance succeeded")
    p = home.run("db", "check")
    eq(p.returncode, 0, p.stdout)
    expect(faults >= 20, f"only {faults} faults were injected")
    expect("written again" in log, "the daemon said the state changes were written again")
    print(f"     ({faults} faults injected into one run of {n + 2} tasks; nothing lost, nothing twice)")
    home.cleanup()


def t_store_fault_each_call():
    """One failing call at a time, as SQLite's own fault tests go: for N = 1, 3, 5, ... 41 the Nth
    write (a run here takes ~42), then for N = 1 ... 12 the Nth COMMIT (~12), of a daemon that
    starts up and runs a 4-task run fails once. Every run must still succeed with each task run
    exactly once."""
    tried = 0
    for kind, ns in (("write", range(1, 43, 2)), ("commit", range(1, 13))):
        for n in ns:
            home = Home()
            counts = os.path.join(home.dir, "counts")
            home.write_dag("g.lua", f'local d = dag {{ id = "g" }}\n'
                                    f'local a = d:task "a" {{ cmd = "echo a >> {counts}; echo x=1 >> $SLUICE_OUTPUT" }}\n'
                                    f'local b = d:task "b" {{ cmd = "echo b{{{{ outputs.a.x }}}} >> {counts}" }}\n'
                                    f'local c = d:task "c" {{ cmd = "echo c >> {counts}" }}\n'
                                    f'local e = d:task "e" {{ cmd = "echo e >> {counts}" }}\n'
                                    'd:flow(a >> {b, c}) d:flow({b, c} >> e)\nreturn d\n')
            eq(home.run("dags", "trigger", "g", "--run-id", "r").returncode, 0, "trigger")
            dm = Daemon(home, env={"SLUICE_STORE_FAULTS": f"{kind}@{n}"}).start()
            if dm.proc.poll() is not None:
                # A fault while starting up (creating the admin user, say): the daemon must say
                # what failed and stop; started again, it loses nothing.
                out = dm.output()
                tried += 1
                expect("sluice serve: cannot" in out, f"a clear message when {kind} #{n} fails at start:\n{out}")
                dm.stop()
                dm = Daemon(home).start()
            try:
                r = wait_until(lambda: finished(home, "g", 1), 30, f"the run with {kind} #{n} failing")
            finally:
                dm.stop()
            eq(r[0]["state"], "success", f"run state with {kind} #{n} failing")
            with open(counts) as f:
                eq(sorted(line.strip() for line in f), ["a", "b1", "c", "e"], f"each task once with {kind} #{n} failing")
            eq(home.run("db", "check").returncode, 0, "db check")
            hit = "injected fault" in dm.output()
            tried += hit
            if os.environ.get("SLUICE_TEST_VERBOSE"):
                print(kind, n, hit)
            home.cleanup()
    expect(tried >= 25, f"only {tried} of the runs met their fault")
    print(f"     ({tried} runs, each through one injected fault)")


def t_sigterm_keeps_tasks():
    home = Home()
    marker = os.path.join(home.dir, "done")
    home.write_dag("s.lua", f'local d = dag {{ id = "s" }}\nlocal a = d:task "slow" {{ cmd = "sleep 2; touch {marker}; echo out=1 >> $SLUICE_OUTPUT" }}\n'
                            'local b = d:task "after" { cmd = "echo {{ outputs.slow.out }}" }\nd:flow(a >> b)\nreturn d\n')
    home.run("dags", "trigger", "s", "--run-id", "r")
    dm = Daemon(home).start()
    wait_until(lambda: any(t["state"] == "running" for t in home.json("tasks", "list", "s", "r", "--json")["task_instances"]),
               10, "slow running")
    eq(dm.stop(), 0, "SIGTERM exit code")
    wait_until(lambda: os.path.exists(marker), 10, "the task finishing without the daemon")
    dm = Daemon(home).start()
    try:
        rs = wait_until(lambda: finished(home, "s", 1), 15, "the run after restart")
    finally:
        dm.stop()
    eq(rs[0]["state"], "success", "run")
    tis = {t["task_id"]: t for t in home.json("tasks", "list", "s", "r", "--json")["task_instances"]}
    eq(tis["slow"]["try_number"], 1, "slow was re-attached, not re-run")
    home.cleanup()


def t_kill_tasks_on_exit():
    home = Home()
    home.write_dag("s.lua", 'local d = dag { id = "s" }\nd:task "slow" { cmd = "sleep 30.4711" }\nreturn d\n')
    home.run("dags", "trigger", "s", "--run-id", "r")
    dm = Daemon(home, "--kill-tasks-on-exit").start()
    wait_until(lambda: any(t["state"] == "running" for t in home.json("tasks", "list", "s", "r", "--json")["task_instances"]),
               10, "slow running")
    t0 = time.monotonic()
    eq(dm.stop(), 0, "exit code")
    expect(time.monotonic() - t0 < 10, "stopped within the grace period")
    ti = home.json("tasks", "list", "s", "r", "--json")["task_instances"][0]
    eq(ti["state"], "failed", "the killed try failed")
    expect("sleep 30.4711" not in os.popen("ps -eo args").read(), "the task is gone")
    home.cleanup()


def t_one_daemon():
    home = Home()
    home.write_dag("a.lua", 'local d = dag { id = "a" }\nd:task "t" { cmd = "true" }\nreturn d\n')
    dm = Daemon(home).start()
    time.sleep(0.5)
    p = home.run("serve", timeout=10)
    dm.stop()
    eq(p.returncode, 1, "second daemon refused")
    expect("another sluice serve" in p.stdout + p.stderr, p.stdout + p.stderr)
    home.cleanup()


def t_clear_and_mark():
    home = Home()
    flag = os.path.join(home.dir, "fixed")
    home.write_dag("c.lua", 'local d = dag { id = "c" }\n'
                            f'local a = d:task "a" {{ cmd = "test -e {flag}" }}\n'
                            'local b = d:task "b" { cmd = "echo b ran" }\n'
                            'local m = d:map "m" { over = { "x", "y" }, cmd = "echo {{ item }}" }\n'
                            'd:flow(a >> b >> m)\nreturn d\n')
    run = home.test_run("c", "--logical-date", "2026-11-01", expect_state="failed")
    rid = run["run_id"]
    # dry run lists, changes nothing
    out = home.json("tasks", "clear", "c", rid, "a", "--downstream", "--dry-run", "--json")
    eq(sorted((t["task_id"], t["map_index"]) for t in out["task_instances"]),
       [("a", -1), ("b", -1), ("m", -1)], "dry run selection")
    eq(runs(home, "c")[0]["state"], "failed", "dry run changed nothing")
    with open(flag, "w"):
        pass
    p = home.run("tasks", "clear", "c", rid, "a", "--downstream")
    eq(p.returncode, 0, p.stderr)
    expect("3 task instances cleared" in p.stdout, p.stdout)
    eq(runs(home, "c")[0]["state"], "queued", "a cleared run is queued")
    dm = Daemon(home).start()
    try:
        rs = wait_until(lambda: finished(home, "c", 1), 15, "the cleared run")
    finally:
        dm.stop()
    eq(rs[0]["state"], "success", "cleared run succeeds")
    tis = {(t["task_id"], t["map_index"]): t for t in home.json("tasks", "list", "c", rid, "--json")["task_instances"]}
    eq(tis[("a", -1)]["try_number"], 2, "a ran again as try 2")
    eq(tis[("a", -1)]["max_tries"], 1, "retries available again after a clear")
    eq(tis[("m", 1)]["state"], "success", "the mapped task expanded")
    home.log("c", rid, "a", try_number=1)  # the first try's log is still there

    # mark: a failed leaf marked success makes the run succeed
    home.write_dag("f.lua", 'local d = dag { id = "f" }\nlocal a = d:task "a" { cmd = "true" }\n'
                            'local b = d:task "b" { cmd = "false" }\nd:flow(a >> b)\nreturn d\n')
    run = home.test_run("f", expect_state="failed")
    p = home.run("tasks", "mark", "f", run["run_id"], "b", "--state", "success")
    eq(p.returncode, 0, p.stderr)
    eq(runs(home, "f")[0]["state"], "success", "run state follows the leaves")
    p = home.run("tasks", "mark", "f", run["run_id"], "b", "--state", "bogus")
    eq(p.returncode, 1, "bad state")
    p = home.run("tasks", "clear", "f", run["run_id"], "nope")
    eq(p.returncode, 1, "unknown task")
    expect("has no task 'nope'" in p.stderr, p.stderr)

    # with a daemon up, the CLI hands the change to it: clearing and marking inside a running run
    # work as the REST API's clearTaskInstances and PATCH of a task instance do
    flag2 = os.path.join(home.dir, "fixed2")
    home.write_dag("s.lua", 'local d = dag { id = "s" }\nd:task "slow" { cmd = "sleep 30" }\n'
                            f'local f = d:task "flaky" {{ cmd = "test -e {flag2}" }}\n'
                            'local a = d:task "after" { cmd = "true" }\nd:flow(f >> a)\nreturn d\n')
    home.run("dags", "trigger", "s", "--run-id", "r")
    dm = Daemon(home).start()
    try:
        def states():
            return {t["task_id"]: t["state"] for t in home.json("tasks", "list", "s", "r", "--json")["task_instances"]}
        wait_until(lambda: states().get("after") == "upstream_failed", 15, "flaky to fail while slow runs")
        eq(states()["slow"], "running", "slow still runs")
        out = home.json("tasks", "clear", "s", "r", "flaky", "--downstream", "--dry-run", "--json")
        eq(sorted(t["task_id"] for t in out["task_instances"]), ["after", "flaky"], "dry run in a running run")
        eq(states()["flaky"], "failed", "the dry run changed nothing")
        with open(flag2, "w"):
            pass
        p = home.run("tasks", "clear", "s", "r", "flaky", "--downstream")
        eq(p.returncode, 0, p.stdout + p.stderr)
        expect("clear s.flaky[-1] (was failed)" in p.stdout and "2 task instances cleared" in p.stdout, p.stdout)
        wait_until(lambda: states()["after"] == "success", 20, "flaky and after to run again")
        # Marking inside the running run: the engine stops slow's try, which ends as marked.
        eq(states()["slow"], "running", "slow still runs")
        p = home.run("tasks", "mark", "s", "r", "slow", "--state", "success")
        eq(p.returncode, 0, p.stdout + p.stderr)
        rs = wait_until(lambda: finished(home, "s", 1), 20, "the run to end")
        eq(rs[0]["state"], "success", "the run succeeds after the clear")
        tis = {t["task_id"]: t for t in home.json("tasks", "list", "s", "r", "--json")["task_instances"]}
        eq((tis["flaky"]["try_number"], tis["after"]["try_number"], tis["slow"]["try_number"]), (2, 1, 1), "tries")
    finally:
        dm.stop()
    home.cleanup()


def alive(pattern):
    return subprocess.run(["pgrep", "-f", pattern], capture_output=True).returncode == 0


def t_cancel():
    home = Home()
    home.write_dag("k.lua", 'local d = dag { id = "k" }\n'
                            'local s = d:task "slow" { cmd = "sleep 61.25", retries = 3 }\n'
                            'local a = d:task "after" { cmd = "true" }\nd:flow(s >> a)\nreturn d\n')
    home.run("dags", "trigger", "k", "--run-id", "r1")
    home.run("dags", "trigger", "k", "--run-id", "r2", "--logical-date", "2026-01-01")
    p = home.run("runs", "cancel", "k", "r2")
    eq(p.returncode, 0, f"a queued run is cancelled without a daemon: {p.stderr}")
    dm = Daemon(home).start()
    try:
        wait_until(lambda: alive("sleep 61.25"), 15, "the slow task to start")
        p = home.run("runs", "cancel", "k", "r1")
        eq(p.returncode, 0, p.stdout + p.stderr)
        rs = wait_until(lambda: finished(home, "k", 2), 20, "the cancelled run to end")
        states = {r["dag_run_id"]: r["state"] for r in rs}
        eq(states, {"r1": "failed", "r2": "failed"}, "both runs failed")
        tis = {t["task_id"]: t for t in home.json("tasks", "list", "k", "r1", "--json")["task_instances"]}
        eq((tis["slow"]["state"], tis["slow"]["try_number"]), ("failed", 1), "the try was stopped, not retried")
        eq(tis["after"]["state"], "skipped", "what had not started is skipped")
        wait_until(lambda: not alive("sleep 61.25"), 10, "the task's process to be gone")
        p = home.run("runs", "cancel", "k", "r1")
        eq(p.returncode, 1, "cancelling an ended run")
        expect("already ended" in p.stderr, p.stderr)
    finally:
        dm.stop()
    home.cleanup()


def t_kill():
    home = Home()
    home.write_dag("kt.lua", 'local d = dag { id = "kt" }\n'
                             'local s = d:task "slow" { cmd = "sleep 63.75", retries = 2 }\n'
                             'local o = d:task "other" { cmd = "sleep 1" }\n'
                             'local a = d:task "after" { cmd = "true" }\nd:flow(s >> a)\nreturn d\n')
    home.run("dags", "trigger", "kt", "--run-id", "k1")
    p = home.run("tasks", "kill", "kt", "k1", "slow")
    eq(p.returncode, 1, "without a daemon there is nothing to kill")
    dm = Daemon(home).start()
    try:
        wait_until(lambda: alive("sleep 63.75"), 15, "the slow task to start")
        p = home.run("tasks", "kill", "kt", "k1", "slow")
        eq(p.returncode, 0, p.stdout + p.stderr)
        rs = wait_until(lambda: finished(home, "kt", 1), 20, "the run to end")
        eq(rs[0]["state"], "failed", "the killed task's run fails")
        tis = {t["task_id"]: t for t in home.json("tasks", "list", "kt", "k1", "--json")["task_instances"]}
        eq((tis["slow"]["state"], tis["slow"]["try_number"]), ("failed", 1), "killed, not retried")
        eq(tis["other"]["state"], "success", "the rest of the run went on")
        eq(tis["after"]["state"], "upstream_failed", "downstream as the trigger rule says")
        expect(not alive("sleep 63.75"), "the process is gone")
        p = home.run("tasks", "kill", "kt", "k1", "slow")
        eq(p.returncode, 1, "killing in an ended run")
    finally:
        dm.stop()
    home.cleanup()


def t_backfill():
    home = Home()
    # start_date in the future: the schedule itself creates nothing, only the backfill runs
    bad = os.path.join(home.dir, "bad")
    home.write_dag("b.lua", 'local d = dag { id = "b", schedule = "@daily", start_date = "2030-01-01", '
                            'max_active_runs = 8 }\n'
                            f'd:task "a" {{ cmd = "sleep 0.3; test ! -e {bad}-{{{{ ds }}}}" }}\nreturn d\n')
    with open(bad + "-2026-11-03", "w"):
        pass
    run = home.test_run("b", "--logical-date", "2026-11-03", expect_state="failed")
    os.unlink(bad + "-2026-11-03")
    out = home.json("backfill", "create", "b", "--from", "2026-11-01", "--to", "2026-11-05", "--reprocess",
                    "failed", "--dry-run", "--json")
    eq([(x["logical_date"][:10], x["action"]) for x in out["backfills"]],
       [("2026-11-01", "create"), ("2026-11-02", "create"), ("2026-11-03", "reprocess"),
        ("2026-11-04", "create"), ("2026-11-05", "create")], "dry run")
    eq(home.json("backfill", "list", "--json")["total_entries"], 0, "dry run creates nothing")
    out = home.json("backfill", "create", "b", "--from", "2026-11-01", "--to", "2026-11-05", "--reprocess",
                    "failed", "--max-active-runs", "2", "--json")
    bf = out["id"]
    eq(out["reprocess_behavior"], "failed", "reprocess")
    p = home.run("backfill", "create", "b", "--from", "2026-11-01", "--to", "2026-11-02")
    eq(p.returncode, 1, "one backfill per DAG at a time")
    dm = Daemon(home).start()
    try:
        wait_until(lambda: home.json("backfill", "list", "--json")["backfills"][0]["completed_at"], 40,
                   "the backfill to complete")
    finally:
        dm.stop()
    rs = {r["logical_date"][:10]: r for r in runs(home, "b")}
    eq(sorted(rs), ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05"], "dates")
    eq({d: r["state"] for d, r in rs.items()}, {d: "success" for d in rs}, "states")
    eq(rs["2026-11-03"]["dag_run_id"], run["run_id"], "the failed run was reprocessed, not replaced")
    eq(rs["2026-11-01"]["run_type"], "backfill", "run_type")
    spans = sorted((r["start_date"], r["end_date"]) for r in rs.values())
    for s0, _ in spans:
        expect(sum(1 for (s2, e2) in spans if s2 <= s0 < e2) <= 2, "max_active_runs of the backfill")

    # pause and cancel
    out = home.json("backfill", "create", "b", "--from", "2026-10-10", "--to", "2026-10-20",
                    "--max-active-runs", "1", "--json")
    bf2 = out["id"]
    eq(home.run("backfill", "pause", str(bf2)).returncode, 0, "pause")
    dm = Daemon(home).start()
    try:
        time.sleep(1.5)
        eq([r for r in runs(home, "b") if r["logical_date"].startswith("2026-10-1")], [], "paused: nothing created")
        eq(home.run("backfill", "resume", str(bf2)).returncode, 0, "resume")
        wait_until(lambda: any(r["logical_date"].startswith("2026-10-1") for r in runs(home, "b")), 10, "a run")
        p = home.run("backfill", "cancel", str(bf2))
        eq(p.returncode, 0, p.stderr)
        time.sleep(1.5)
    finally:
        dm.stop()
    oct_runs = [r for r in runs(home, "b") if r["logical_date"][:7] == "2026-10"]
    expect(1 <= len(oct_runs) <= 3, f"cancel stopped the backfill ({len(oct_runs)} runs)")
    b2 = [b for b in home.json("backfill", "list", "--json")["backfills"] if b["id"] == bf2][0]
    expect(b2["completed_at"], "cancelled backfill is completed")
    eq(home.run("backfill", "cancel", str(bf2)).returncode, 1, "cancel twice")
    home.cleanup()


check("@every 2s creates contiguous scheduled runs", t_every_schedule)
check("catchup, catchup = false, max_active_runs, restart", t_catchup)
check("trigger (queued without a daemon), --wait, pause/unpause", t_trigger_and_pause)
check("folder watching: new files, versions kept by runs, broken updates", t_folder_watch)
check("pools limit concurrency", t_pools)
check("concurrent CLI triggers during a 300-task run", t_concurrent_cli)
check("kill -9 during a run: every task runs exactly once", t_kill9_exactly_once)
check("store faults through a whole run: nothing lost, nothing twice", t_store_faults)
check("one store fault at each Nth write or commit: every run still right", t_store_fault_each_call)
check("SIGTERM leaves tries running; restart re-attaches", t_sigterm_keeps_tasks)
check("--kill-tasks-on-exit", t_kill_tasks_on_exit)
check("one daemon per home", t_one_daemon)
check("tasks clear (dry run, downstream, mapped) and mark; clear inside a running run through the daemon",
      t_clear_and_mark)
check("runs cancel: the daemon kills the tries, skips the rest, the run fails; a queued run fails", t_cancel)
check("tasks kill: the try stops and fails without a retry; the run goes on", t_kill)
check("backfill: dry run, reprocess failed, max_active_runs, pause, resume, cancel", t_backfill)
finish()
