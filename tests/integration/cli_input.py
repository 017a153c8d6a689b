"""Bad input through the CLI: run ids that would leave $SLUICE_HOME are usage errors, rows crafted
by hand in the database cannot make `db prune` or `dags test` delete a folder outside the home,
and configuration values out of range stop `sluice serve` before it starts, saying where and
why."""
import json
import os
import sqlite3
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Home, check, eq, expect, finish, wait_until  # noqa: E402

home = Home()
home.write_dag("d.lua", 'local d = dag { id = "d" }\nd:task "a" { cmd = "echo hi" }\nreturn d\n')


def runs():
    return home.json("runs", "list", "d", "--json")["dag_runs"]


def victim(name):
    """A folder where a traversal from logs/d/<run_id> would land, with a file in it. logs/d
    exists, as it does once any run of d has run, so that the kernel can resolve the "..". """
    os.makedirs(os.path.join(home.home, "logs", "d"), exist_ok=True)
    path = os.path.normpath(os.path.join(home.home, "logs", "d", "..", "..", "..", name))
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "keep.txt"), "w") as f:
        f.write("precious\n")
    return path


def craft_run(run_id, logical_date_us, state="success", end_us=1):
    db = sqlite3.connect(os.path.join(home.home, "sluice.db"))
    db.execute("INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, state, conf, end_date) "
               "VALUES ('d', ?, 'manual', ?, ?, '{}', ?)", (run_id, logical_date_us, state, end_us))
    db.commit()
    db.close()


def t_trigger_refuses_bad_run_ids():
    for bad in ["../../../x", "..", ".", "a/b", "x" * 251, "r" * 100000, "a b"]:
        p = home.run("dags", "trigger", "d", "--run-id", bad)
        eq(p.returncode, 2, f"--run-id {bad[:20]!r}: {p.stdout}{p.stderr}")
        expect("run_id" in p.stderr and "usage: sluice dags trigger" in p.stderr, p.stderr)
    p = home.run("dags", "trigger", "d", "--run-id", "fine~1:2+3")
    eq(p.returncode, 0, p.stderr)
    eq([r["dag_run_id"] for r in runs()], ["fine~1:2+3"], "only the good run was queued")
    expect(not os.path.exists(os.path.normpath(os.path.join(home.home, "logs", "d", "../../../x"))),
           "nothing outside the home")


def t_prune_stays_in_the_home():
    keep = victim("victim_prune")
    craft_run("../../../victim_prune", 10)
    p = home.run("db", "prune", "--older-than", "1d")
    eq(p.returncode, 0, p.stdout + p.stderr)
    expect(os.path.exists(os.path.join(keep, "keep.txt")), f"prune left {keep} alone")
    expect(not any(r["dag_run_id"] == "../../../victim_prune" for r in runs()), "the crafted row is gone")


def t_dags_test_stays_in_the_home():
    keep = victim("victim_test")
    # 2026-11-01T00:00:00Z: the logical date `dags test` will replace.
    craft_run("../../../victim_test", 1793491200 * 1000000, state="failed")
    run = home.test_run("d", "--logical-date", "2026-11-01", expect_state="success")
    eq(run["state"], "success", "dags test ran")
    expect(os.path.exists(os.path.join(keep, "keep.txt")), f"dags test left {keep} alone")


def t_templates_cannot_inject():
    victim = os.path.join(home.dir, "pwned")
    out = os.path.join(home.dir, "out")
    home.write_dag("inj.lua", 'local d = dag { id = "inj", params = { p = "ok" } }\n'
                   f'd:task "bare" {{ cmd = "printf %s {{{{ conf.x }}}} > {out}.bare" }}\n'
                   f'd:task "dq" {{ cmd = "printf %s \\"{{{{ conf.x }}}}\\" > {out}.dq" }}\n'
                   f'd:task "sq" {{ cmd = "printf %s \'{{{{ conf.x }}}}\' > {out}.sq" }}\n'
                   f'd:task "env" {{ cmd = "printf %s \\"$X\\" > {out}.env", env = {{ X = "{{{{ conf.x }}}}" }} }}\n'
                   f'd:task "argv" {{ cmd = {{ "sh", "-c", "printf %s \\"$1\\" > {out}.argv", "-", "{{{{ conf.x }}}}" }} }}\n'
                   'return d\n')
    evil = f"$(touch {victim}) `touch {victim}` ; touch {victim} \" ' \\"
    run = home.test_run("inj", "--conf", json.dumps({"x": evil}), expect_state="success")
    eq(run["state"], "success", "the run")
    expect(not os.path.exists(victim), "a hostile conf value ran as a command")
    for kind in ("bare", "dq", "sq", "env", "argv"):
        with open(f"{out}.{kind}") as f:
            eq(f.read(), evil, f"{kind}: the task got the value as data")


def t_files_are_the_owners():
    h = Home()
    h.write_dag("d.lua", 'local d = dag { id = "d" }\nd:task "a" { cmd = "echo secret" }\nreturn d\n')
    h.test_run("d", "--logical-date", "2026-11-01", expect_state="success")
    import stat
    mode = lambda p: stat.S_IMODE(os.stat(p).st_mode)
    eq(oct(mode(h.home)), oct(0o700), "the home")
    eq(oct(mode(os.path.join(h.home, "sluice.db"))), oct(0o600), "the database")
    logs = os.path.join(h.home, "logs")
    for root, dirs, files in os.walk(logs):
        eq(oct(mode(root)), oct(0o700), f"log folder {root}")
        for f in files:
            eq(oct(mode(os.path.join(root, f))), oct(0o600), f"log file {f}")
    expect(any(files for _, _, files in os.walk(logs)), "the run wrote logs")
    os.chmod(h.home, 0o755)
    dm = Daemon(h).start()
    try:
        wait_until(lambda: "open to other users" in dm.output(), 10, "a warning about a loose home")
    finally:
        dm.stop()
    h.cleanup()


def t_tasks_get_a_clean_environment():
    h = Home()
    out = os.path.join(h.dir, "env")
    h.write_dag("e.lua", 'local d = dag { id = "e" }\n'
                f'd:task "a" {{ cmd = "env > {out}", env = {{ MINE = "set by the DAG" }} }}\nreturn d\n')
    secrets = {"AWS_SECRET_ACCESS_KEY": "s3cr3t", "DATABASE_URL": "postgres://u:p@h/db", "KEEP_ME": "yes"}
    p = h.run("dags", "test", "e", env=secrets)
    eq(p.returncode, 0, p.stderr)
    with open(out) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    expect("AWS_SECRET_ACCESS_KEY" not in env and "DATABASE_URL" not in env, f"the daemon's secrets leaked: {env}")
    expect("PATH" in env and env.get("MINE") == "set by the DAG" and env.get("SLUICE_DAG_ID") == "e", f"{env}")
    with open(os.path.join(h.home, "sluice.cfg"), "w") as f:
        f.write("[core]\ntask_env_passthrough = KEEP_ME\n")
    p = h.run("dags", "test", "e", env=secrets)
    eq(p.returncode, 0, p.stderr)
    with open(out) as f:
        env = dict(line.split("=", 1) for line in f.read().splitlines() if "=" in line)
    eq(env.get("KEEP_ME"), "yes", "core.task_env_passthrough lets a named variable through")
    expect("AWS_SECRET_ACCESS_KEY" not in env, "and only that one")
    h.cleanup()


def t_config_out_of_range():
    cfg = os.path.join(home.home, "sluice.cfg")
    cases = [("[webserver]\nport = 70000\n", "sluice.cfg:2: webserver.port = 70000: must be between 0 and 65535"),
             ("[core]\n\nparallelism = 0\n", "sluice.cfg:3: core.parallelism = 0: must be between 1 and 4096"),
             ("[core]\nparalelism = 4\n", "did you mean 'core.parallelism'?")]
    for text, want in cases:
        with open(cfg, "w") as f:
            f.write(text)
        p = home.run("serve", "--port", "0", timeout=20)
        expect(p.returncode != 0, f"serve started with {text!r}")
        expect(want in p.stderr, f"wanted {want!r} in {p.stderr!r}")
        expect("REST API at" not in p.stdout, p.stdout)
    os.remove(cfg)
    p = home.run("serve", "--port", "99999", timeout=20)
    eq(p.returncode, 2, p.stderr)
    expect("must be between 0 and 65535" in p.stderr, p.stderr)
    p = home.run("config", "show", env={"SLUICE__CORE__PARALLELISM": "-1"})
    expect(p.returncode != 0 and "SLUICE__CORE__PARALLELISM" in p.stderr, p.stderr)


check("dags trigger: run ids outside Airflow's characters are usage errors", t_trigger_refuses_bad_run_ids)
check("db prune with a hand-crafted run id deletes nothing outside the home", t_prune_stays_in_the_home)
check("dags test replacing a hand-crafted run deletes nothing outside the home", t_dags_test_stays_in_the_home)
check("templates cannot inject: hostile conf in bare, quoted, env and argv commands is data",
      t_templates_cannot_inject)
check("the home is 0700, the database and logs 0600; a looser home is warned about", t_files_are_the_owners)
check("tasks get a clean environment: PATH and the like, the DAG's env, SLUICE_*, and what the config names",
      t_tasks_get_a_clean_environment)
check("config values out of range or unknown stop serve at start, with file, line and reason",
      t_config_out_of_range)
home.cleanup()
finish()
