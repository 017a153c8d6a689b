"""The example DAGs of dags/ through the CLI: check, list, show, test, logs, runs, db."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, Home, check, eq, expect, finish, tis  # noqa: E402

home = Home(dags=os.path.join(ROOT, "dags"))


def t_check():
    p = home.run("dags", "check")
    eq(p.returncode, 0, "dags check exit code\n" + p.stdout + p.stderr)
    expect("0 import errors" in p.stdout, p.stdout)


def t_list():
    out = home.json("dags", "list", "--json")
    ids = sorted(d["dag_id"] for d in out["dags"])
    # every example file defines the DAG named after it
    eq(ids, sorted(f[:-4] for f in os.listdir(os.path.join(ROOT, "dags")) if f.endswith(".lua")), "dag ids")
    eq(out["total_entries"], len(ids), "total_entries")
    etl = next(d for d in out["dags"] if d["dag_id"] == "etl_chain")
    eq(etl["schedule_interval"], {"__type": "CronExpression", "value": "0 3 * * *"}, "schedule")
    eq(etl["owners"], ["data-eng"], "owners")
    eq(etl["tags"], [{"name": "example"}, {"name": "etl"}], "tags")
    eq(etl["is_paused"], False, "is_paused")
    expect(etl["fileloc"].endswith("dags/etl_chain.lua"), etl["fileloc"])


def t_show():
    out = home.json("dags", "show", "etl_chain", "--json")
    tasks = {t["task_id"]: t for t in out["tasks"]}
    eq(tasks["extract"]["downstream_task_ids"], ["validate"], "downstream")
    eq(tasks["report"]["trigger_rule"], "all_done", "trigger rule")
    eq(tasks["validate"]["retries"], 2, "retries from default_args")
    eq(out["timezone"], "Europe/Berlin", "timezone")
    p = home.run("dags", "show", "fanout", "--dot")
    eq(p.returncode, 0, "show --dot")
    expect('"list_shards" -> "per_shard"' in p.stdout, p.stdout)
    p = home.run("dags", "show", "nope")
    eq(p.returncode, 1, "unknown dag")
    expect("not found" in p.stderr, p.stderr)


def t_etl():
    run = home.test_run("etl_chain", "--logical-date", "2026-11-05", expect_state="success")
    ti = tis(run)
    for t in ("extract", "validate", "transform", "load", "report"):
        eq(ti[t]["state"], "success", t)
    eq(ti["validate"]["try_number"], 2, "validate retried once")
    eq(ti["extract"]["try_number"], 1, "extract tries")
    eq(run["run_id"], "manual__2026-11-05T00:00:00+00:00", "run_id")
    log = home.log("etl_chain", run["run_id"], "report")
    expect("loaded 3 rows" in log and "2026-11-05" in log, log)
    first = home.log("etl_chain", run["run_id"], "validate", try_number=1)
    expect("source not ready yet" in first, first)
    expect("retrying in 1s" in first, first)
    path = os.path.join(home.home, "logs", "etl_chain", run["run_id"], "transform", "-1", "1.log")
    with open(path) as f:
        body = f.read()
    expect("eu=42" in body and "us=7" in body, body)


def t_fanout():
    run = home.test_run("fanout", expect_state="success")
    ti = tis(run)
    for i in range(4):
        eq(ti[("per_shard", i)]["state"], "success", f"per_shard {i}")
    eq(ti[("per_format", 1)]["state"], "success", "per_format 1")
    log = home.log("fanout", run["run_id"], "combine")
    expect("sizes: 10,11,12,13" in log, log)
    log = home.log("fanout", run["run_id"], "per_shard", map_index=2)
    expect("shard east (2)" in log, log)


def t_wordcount():
    root = os.path.join(home.dir, "wordcount")
    run = home.test_run("wordcount", "--conf", json.dumps({"root": root}), expect_state="success")
    ti = tis(run)
    for i in range(4):
        eq(ti[("wc.map", i)]["state"], "success", f"wc.map {i}")
    for p in range(2):
        eq(ti[("wc.reduce", p)]["state"], "success", f"wc.reduce {p}")
    log = home.log("wordcount", run["run_id"], "report")
    expect("the\t3204" in log, log)


def t_trigger_rules():
    run = home.test_run("trigger_rules", expect_state="success")
    ti = tis(run)
    eq(ti["check_source"]["state"], "skipped", "exit 99")
    eq(ti["load_if_present"]["state"], "skipped", "all_success after skip")
    eq(ti["carry_on"]["state"], "success", "none_failed")
    eq(ti["flaky"]["state"], "failed", "flaky")
    eq(ti["flaky"]["try_number"], 1, "no retry for code 3")
    eq(ti["flaky"]["exit_code"], 3, "exit code")
    eq(ti["handle_failure"]["state"], "success", "one_failed")
    eq(ti["finalize"]["state"], "success", "all_done")


def t_sensor_params():
    run = home.test_run("sensor_params", "--conf", '{"greeting": "hallo"}', expect_state="success")
    log = home.log("sensor_params", run["run_id"], "greet")
    expect("hallo, world!" in log, log)


def t_runs_and_tasks():
    out = home.json("runs", "list", "etl_chain", "--json")
    eq(out["total_entries"], 1, "runs")
    r = out["dag_runs"][0]
    eq(r["state"], "success", "run state")
    eq(r["run_type"], "manual", "run_type")
    eq(r["logical_date"], "2026-11-05T00:00:00+00:00", "logical_date")
    # Europe/Berlin 03:00 daily: the interval that ends before the logical date
    eq(r["data_interval_end"], "2026-11-04T02:00:00+00:00", "interval end")
    out = home.json("tasks", "list", "etl_chain", r["dag_run_id"], "--json")
    eq(out["total_entries"], 5, "tis")
    eq({t["task_id"] for t in out["task_instances"]},
       {"extract", "validate", "transform", "load", "report"}, "task ids")


def t_rerun_replaces():
    home.test_run("etl_chain", "--logical-date", "2026-11-05", expect_state="success")
    out = home.json("runs", "list", "etl_chain", "--json")
    eq(out["total_entries"], 1, "the same logical date replaces the earlier run")


def t_db():
    p = home.run("db", "check")
    eq(p.returncode, 0, p.stdout + p.stderr)
    expect("integrity:    ok" in p.stdout, p.stdout)
    p = home.run("db", "migrate")
    eq(p.returncode, 0, p.stderr)
    expect("up to date" in p.stdout, p.stdout)


def t_help():
    for args in (["--help"], ["dags", "--help"], ["dags", "test", "--help"], ["db", "--help"],
                 ["tasks", "--help"], ["runs", "--help"], ["cron", "--help"], ["config", "--help"]):
        p = home.run(*args)
        eq(p.returncode, 0, f"{args} exit code: {p.stderr}")
        expect("usage" in p.stdout.lower(), f"{args}: {p.stdout}")
    p = home.run("bogus")
    eq(p.returncode, 2, "unknown command")


def commands():
    """Every command of the table, as listed by `sluice help` and `sluice help GROUP`."""
    out = home.run("help").stdout
    groups = [line.split()[0] for line in out.split("Commands:\n", 1)[1].splitlines() if line.startswith("  ")]
    expect(len(groups) >= 10, f"groups: {groups}")
    found = []
    for g in groups:
        p = home.run("help", g)
        eq(p.returncode, 0, f"help {g}: {p.stderr}")
        if p.stdout.startswith(f"usage: sluice {g} COMMAND"):
            found += [[g, line.split()[0]] for line in p.stdout.splitlines()[2:] if line.startswith("  ")]
        else:
            found.append([g])
    return found


def t_every_command_in_the_table():
    cmds = commands()
    expect(len(cmds) >= 28, f"{len(cmds)} commands: {cmds}")
    for words in cmds:
        name = " ".join(words)
        p = home.run(*words, "--help")
        eq(p.returncode, 0, f"{name} --help: {p.stderr}")
        expect(p.stdout.startswith(f"usage: sluice {name}"), f"{name} --help: {p.stdout[:200]}")
        q = home.run("help", *words)
        eq((q.returncode, q.stdout), (0, p.stdout), f"sluice help {name} prints the same as --help")
        r = home.run(*words, "--no-such-option")
        eq(r.returncode, 2, f"{name} --no-such-option: {r.stdout}{r.stderr}")
        expect(f"usage: sluice {name}" in r.stderr, f"{name}: usage on a mistake: {r.stderr}")
        synopsis = p.stdout.splitlines()[0]
        if "..." not in synopsis and words != ["cron", "next"]:
            r = home.run(*words, *["extra"] * 6)
            eq(r.returncode, 2, f"{name} with too many arguments: {r.stdout}{r.stderr}")
            expect("unexpected argument" in r.stderr, r.stderr)
    p = home.run("tasks", "help")
    eq(p.returncode, 0, "sluice tasks help")
    expect("clear" in p.stdout and "mark" in p.stdout, p.stdout)
    p = home.run("tasks", "mark", "d", "r", "t")
    eq(p.returncode, 2, "a required option")
    expect("--state is required" in p.stderr, p.stderr)


check("dags check passes on the examples", t_check)
check("dags list --json", t_list)
check("dags show --json/--dot", t_show)
check("wordcount: d:mapreduce over a generated folder", t_wordcount)
check("etl_chain runs green with a retry and outputs", t_etl)
check("fanout maps over outputs and fans in", t_fanout)
check("trigger_rules: skips, no-retry codes, one_failed, all_done", t_trigger_rules)
check("sensor_params: sensor and conf overriding params", t_sensor_params)
check("runs list / tasks list --json", t_runs_and_tasks)
check("dags test replaces a run at the same logical date", t_rerun_replaces)
check("db check and migrate", t_db)
check("--help everywhere", t_help)
check("every command of the table: --help, sluice help, unknown option and argument counts",
      t_every_command_in_the_table)
home.cleanup()
finish()
