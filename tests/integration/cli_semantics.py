"""Run semantics through `sluice dags test --json`: outputs, retries, backoff, trigger rules, skips,
timeouts, fan-out, template errors, params vs conf, dates, environment, sensors."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Home, check, eq, expect, finish, tis  # noqa: E402

home = Home()


def dag(dag_id, body, header=""):
    home.write_dag(f"{dag_id}.lua", f'local d = dag {{ id = "{dag_id}"{header} }}\n{body}\nreturn d\n')


def t_outputs():
    dag("outputs", '''
local a = d:task "a" { cmd = "printf 'rows=42\\nfile=/data/x y.csv\\n# comment\\nbad line\\n' >> $SLUICE_OUTPUT" }
local b = d:task "b" { cmd = "test '{{ outputs.a.rows }}' = 42 && test '{{ outputs.a.file }}' = '/data/x y.csv'" }
local c = d:task "c" { cmd = "echo {{ outputs.b.nothing }}" }
d:flow(a >> b >> c)''')
    run = home.test_run("outputs", expect_state="failed")
    ti = tis(run)
    eq(ti["a"]["state"], "success", "a")
    eq(ti["b"]["state"], "success", "b sees a's outputs")
    eq(ti["c"]["state"], "failed", "c: missing output is a template error")
    log = home.log("outputs", run["run_id"], "c")
    expect("task 'b' has no output 'nothing'" in log, log)
    log = home.log("outputs", run["run_id"], "a")
    expect("ignoring malformed output line" in log and "bad line" in log, log)


def t_retries():
    dag("retries", '''
d:task "flaky" { cmd = "test $SLUICE_TRY_NUMBER -ge 3", retries = 3, retry_delay = "0.1s" }
d:task "hopeless" { cmd = "exit 1", retries = 2, retry_delay = 0.1 }
d:task "fatal" { cmd = "exit 2", retries = 5, retry_delay = 0.1, no_retry_exit_codes = { 2 } }''')
    run = home.test_run("retries", expect_state="failed")
    ti = tis(run)
    eq((ti["flaky"]["state"], ti["flaky"]["try_number"]), ("success", 3), "flaky")
    eq((ti["hopeless"]["state"], ti["hopeless"]["try_number"]), ("failed", 3), "hopeless")
    eq(ti["hopeless"]["max_tries"], 2, "max_tries")
    eq((ti["fatal"]["state"], ti["fatal"]["try_number"], ti["fatal"]["exit_code"]), ("failed", 1, 2), "fatal")
    for n in (1, 2, 3):
        home.log("retries", run["run_id"], "hopeless", try_number=n)


def t_backoff():
    dag("backoff", '''
d:task "a" { cmd = "test $SLUICE_TRY_NUMBER -ge 3", retries = 2, retry_delay = "0.4s",
             retry_exponential_backoff = true, max_retry_delay = "10s" }''')
    t0 = time.monotonic()
    home.test_run("backoff", expect_state="success")
    took = time.monotonic() - t0
    # 0.4s after try 1, 0.8s after try 2 (plus up to 10% jitter each)
    expect(took >= 1.2, f"backoff waited only {took:.2f}s")
    expect(took < 10, f"took {took:.2f}s")


def t_trigger_rules():
    dag("rules", '''
local ok = d:task "ok" { cmd = "true" }
local bad = d:task "bad" { cmd = "false" }
local skip = d:task "skip" { cmd = "exit 99" }
local r = {}
for _, rule in ipairs({ "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
                        "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always" }) do
  r[rule] = d:task("ok_bad_" .. rule) { cmd = "true", trigger_rule = rule, after = { ok, bad } }
  d:task("ok_skip_" .. rule) { cmd = "true", trigger_rule = rule, after = { ok, skip } }
  d:task("skip_" .. rule) { cmd = "true", trigger_rule = rule, after = { skip } }
end
d:task "leaf" { cmd = "true", trigger_rule = "always" }''')
    run = home.test_run("rules", expect_state="failed")  # leaves include failed/upstream_failed ones
    ti = tis(run)
    want = {
        "ok_bad_all_success": "upstream_failed", "ok_skip_all_success": "skipped", "skip_all_success": "skipped",
        "ok_bad_all_failed": "skipped", "ok_skip_all_failed": "skipped", "skip_all_failed": "skipped",
        "ok_bad_all_done": "success", "ok_skip_all_done": "success", "skip_all_done": "success",
        "ok_bad_all_skipped": "skipped", "ok_skip_all_skipped": "skipped", "skip_all_skipped": "success",
        "ok_bad_one_success": "success", "ok_skip_one_success": "success", "skip_one_success": "skipped",
        "ok_bad_one_failed": "success", "ok_skip_one_failed": "skipped", "skip_one_failed": "skipped",
        "ok_bad_one_done": "success", "ok_skip_one_done": "success", "skip_one_done": "skipped",
        "ok_bad_none_failed": "upstream_failed", "ok_skip_none_failed": "success", "skip_none_failed": "success",
        "ok_bad_none_failed_min_one_success": "upstream_failed",
        "ok_skip_none_failed_min_one_success": "success", "skip_none_failed_min_one_success": "skipped",
        "ok_bad_none_skipped": "success", "ok_skip_none_skipped": "skipped", "skip_none_skipped": "skipped",
        "ok_bad_always": "success", "ok_skip_always": "success", "skip_always": "success",
    }
    bad = {k: (ti[k]["state"], v) for k, v in want.items() if ti[k]["state"] != v}
    eq(bad, {}, "trigger rule outcomes (got, wanted)")


def t_run_state_from_leaves():
    dag("leaves_ok", '''
local a = d:task "a" { cmd = "false" }
local b = d:task "b" { cmd = "true", trigger_rule = "all_done" }
d:flow(a >> b)''')
    home.test_run("leaves_ok", expect_state="success")
    dag("leaves_skip", 'd:task "a" { cmd = "exit 99" }')
    home.test_run("leaves_skip", expect_state="success")
    dag("leaves_uf", '''
local a = d:task "a" { cmd = "false" }
local b = d:task "b" { cmd = "true" }
d:flow(a >> b)''')
    run = home.test_run("leaves_uf", expect_state="failed")
    eq(tis(run)["b"]["state"], "upstream_failed", "b")
    eq(tis(run)["b"]["try_number"], 0, "b never ran")


def t_timeout():
    dag("timeout", '''
d:task "slow" { cmd = "sleep 60.4711 & sleep 60.4711; echo never", execution_timeout = "0.5s", retries = 1, retry_delay = 0.1 }
d:task "stubborn" { cmd = "trap '' TERM; sleep 60.4712", execution_timeout = "0.3s" }''')
    t0 = time.monotonic()
    run = home.test_run("timeout", expect_state="failed")
    took = time.monotonic() - t0
    ti = tis(run)
    eq((ti["slow"]["state"], ti["slow"]["try_number"]), ("failed", 2), "slow retried after timeout")
    eq(ti["stubborn"]["state"], "failed", "stubborn")
    expect(took < 30, f"took {took:.1f}s")  # 5s grace for the stubborn one
    log = home.log("timeout", run["run_id"], "slow", try_number=1)
    expect("execution_timeout" in log and "never" not in log, log)
    # No sleep of the task group survives.
    ps = os.popen("ps -eo args").read()
    expect("sleep 60.471" not in ps, "leftover processes:\n" + ps)


def t_fanout():
    dag("fan", '''
local src = d:task "src" { cmd = "echo 'csv=a, b ,c' >> $SLUICE_OUTPUT; echo 'json=[1, \\"two\\", 3.5]' >> $SLUICE_OUTPUT; echo 'none=' >> $SLUICE_OUTPUT" }
local m1 = d:map "by_csv" { over = "{{ outputs.src.csv }}", cmd = "echo got={{ item }}-{{ map_index }} >> $SLUICE_OUTPUT" }
local m2 = d:map "by_json" { over = "{{ outputs.src.json }}", cmd = "test $SLUICE_ITEM = '{{ item }}'" }
local m3 = d:map "static" { over = { "x", "y" }, cmd = "echo {{ item }}" }
local m4 = d:map "empty" { over = "{{ outputs.src.none }}", cmd = "echo never" }
local after_empty = d:task "after_empty" { cmd = "echo skipped too" }
local join = d:task "join" { cmd = "test '{{ outputs.by_csv.got }}' = 'a-0,b-1,c-2'" }
d:flow(src >> { m1, m2, m4 }, m4 >> after_empty, { m1, m2, m3 } >> join)''')
    run = home.test_run("fan", expect_state="success")
    ti = tis(run)
    eq([ti[("by_csv", i)]["state"] for i in range(3)], ["success"] * 3, "by_csv")
    eq([ti[("by_json", i)]["state"] for i in range(3)], ["success"] * 3, "by_json")
    eq([ti[("static", i)]["state"] for i in range(2)], ["success"] * 2, "static")
    eq(ti["empty"]["state"], "skipped", "a map over nothing is skipped")
    eq(ti["after_empty"]["state"], "skipped", "and its downstream too")
    eq(ti["join"]["state"], "success", "join sees every instance")


def t_mapped_failure():
    dag("fan_fail", '''
local m = d:map "m" { over = { "1", "2", "3" }, cmd = "test {{ item }} != 2" }
local after = d:task "after" { cmd = "true" }
local always = d:task "cleanup" { cmd = "true", trigger_rule = "all_done" }
d:flow(m >> { after, always })''')
    run = home.test_run("fan_fail", expect_state="failed")
    ti = tis(run)
    eq([ti[("m", i)]["state"] for i in range(3)], ["success", "failed", "success"], "instances")
    eq(ti["after"]["state"], "upstream_failed", "after")
    eq(ti["cleanup"]["state"], "success", "cleanup")


def t_unknown_template():
    dag("tmpl", '''
d:task "a" { cmd = "echo {{ no_such_name }}", retries = 3, retry_delay = 0.1 }
d:task "b" { cmd = { "echo", "{{ params.nope }}" } }
d:task "c" { cmd = "echo {{ ds }", retries = 1 }''')
    run = home.test_run("tmpl", expect_state="failed")
    ti = tis(run)
    for t in ("a", "b", "c"):
        eq((ti[t]["state"], ti[t]["try_number"]), ("failed", 1), f"{t}: fails at once, no retry")
    log = home.log("tmpl", run["run_id"], "a")
    expect("unknown template name 'no_such_name'" in log, log)
    log = home.log("tmpl", run["run_id"], "b")
    expect("unknown param 'nope'" in log, log)
    log = home.log("tmpl", run["run_id"], "c")
    expect("expected '}}'" in log, log)


def t_params_conf():
    dag("params", '''
d:task "p" { cmd = "echo region={{ params.region }} n={{ params.n }} nested={{ params.obj.k }} list={{ params.list }} >> $SLUICE_OUTPUT" }
d:task "c" { cmd = "echo conf={{ conf.extra }}" }''', ', params = { region = "eu", n = 3, obj = { k = "v" }, list = { 1, 2 } }')
    run = home.test_run("params", expect_state="failed")
    ti = tis(run)
    eq(ti["p"]["state"], "success", "params alone")
    eq(ti["c"]["state"], "failed", "conf.extra without conf")
    log = home.log("params", run["run_id"], "c")
    expect("the run's conf has no 'extra'" in log, log)
    run = home.test_run("params", "--conf", '{"region": "us", "extra": 7}', expect_state="success")
    out = home.json("tasks", "list", "params", run["run_id"], "--json")
    eq(len(out["task_instances"]), 2, "tis")
    log = home.log("params", run["run_id"], "c")
    expect("conf=7" in log, log)
    p = home.run("dags", "test", "params", "--conf", "[1]")
    eq(p.returncode, 2, "conf must be an object")


def t_dates():
    dag("dates", '''
d:task "d" { cmd = "echo ds={{ ds }} nodash={{ ds_nodash }} ts={{ ts }} ld={{ logical_date }} env=$SLUICE_DS/$SLUICE_LOGICAL_DATE dis={{ data_interval_start }} die={{ data_interval_end }}" }''',
        ', schedule = "@daily"')
    run = home.test_run("dates", "--logical-date", "2026-11-05T10:30:00Z", expect_state="success")
    log = home.log("dates", run["run_id"], "d")
    expect("ds=2026-11-05 nodash=20261105" in log, log)
    expect("ts=2026-11-05T10:30:00+00:00" in log and "ld=2026-11-05T10:30:00+00:00" in log, log)
    expect("env=2026-11-05/2026-11-05T10:30:00+00:00" in log, log)
    # a manual run of a daily DAG covers the last complete day before it
    expect("dis=2026-11-04T00:00:00+00:00 die=2026-11-05T00:00:00+00:00" in log, log)
    eq(run["run_id"], "manual__2026-11-05T10:30:00+00:00", "run_id")


def t_environment():
    dag("envs", '''
d:task "e" { cmd = { "sh", "-c", "echo $SLUICE_DAG_ID $SLUICE_RUN_ID $SLUICE_TASK_ID $SLUICE_TRY_NUMBER $MY_VAR; test -w $SLUICE_OUTPUT || test -w $(dirname $SLUICE_OUTPUT)" },
             env = { MY_VAR = "from-env" } }
d:task "argv" { cmd = { "printf", "%s|", "a b", "$HOME", "*", "{{ ds }}" } }''',
        ', default_args = { env = { MY_VAR = "default" } }')
    run = home.test_run("envs", "--logical-date", "2026-01-02", expect_state="success")
    log = home.log("envs", run["run_id"], "e")
    expect(f"envs {run['run_id']} e 1 from-env" in log, log)
    log = home.log("envs", run["run_id"], "argv")
    expect("a b|$HOME|*|2026-01-02|" in log, log)


def t_sensors():
    marker = os.path.join(home.dir, "marker")
    dag("sensors", f'''
local mk = d:task "make" {{ cmd = "touch {marker}" }}
local path = d:sensor "path" {{ path = "{marker}", poke_interval = "0.2s", timeout = "5s" }}
local cmd = d:sensor "cmd" {{ cmd = "test -e {marker}.never", poke_interval = "0.2s", timeout = "1s" }}
local after = d:task "after" {{ cmd = "true" }}
d:flow(mk >> path >> after)''')
    t0 = time.monotonic()
    run = home.test_run("sensors", expect_state="failed")
    took = time.monotonic() - t0
    ti = tis(run)
    eq(ti["path"]["state"], "success", "path sensor")
    eq(ti["after"]["state"], "success", "after")
    eq(ti["cmd"]["state"], "failed", "sensor timeout fails")
    eq(ti["cmd"]["try_number"], 1, "pokes are not tries")
    expect(1.0 <= took < 8, f"took {took:.1f}s")
    log = home.log("sensors", run["run_id"], "cmd")
    expect("sensor timed out after 1s" in log, log)


def t_exec_failure():
    dag("nocmd", 'd:task "a" { cmd = { "/no/such/binary", "x" }, retries = 1, retry_delay = 0.1 }')
    run = home.test_run("nocmd", expect_state="failed")
    ti = tis(run)
    eq((ti["a"]["state"], ti["a"]["exit_code"], ti["a"]["try_number"]), ("failed", 127, 2), "exec failure")
    log = home.log("nocmd", run["run_id"], "a")
    expect("/no/such/binary" in log, log)


def t_parallel_and_chain():
    dag("wide", '''
local prev
for i = 1, 100 do
  local t = d:task("t" .. i) { cmd = "true" }
  if prev and i % 2 == 0 then d:flow(prev >> t) end
  prev = t
end''', ", max_active_tasks = 16")
    t0 = time.monotonic()
    run = home.test_run("wide", expect_state="success")
    eq(len(run["task_instances"]), 100, "tis")
    expect(time.monotonic() - t0 < 30, "100 tasks in under 30s")


def t_callbacks():
    import http.server
    import json as js
    import threading
    bodies = []

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", 0))
            bodies.append((self.path, self.headers.get("Content-Type"), js.loads(self.rfile.read(n))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}/hook"
    out = os.path.join(home.dir, "callbacks.out")
    dag("cb_ok", 'd:task "a" { cmd = "test $SLUICE_TRY_NUMBER -ge 2", retries = 1, retry_delay = 0.1 }',
        f', on_success = {{ cmd = "echo ok {{{{ dag_id }}}} {{{{ ds }}}} $SLUICE_EVENT >> {out}", webhook = "{url}" }}'
        f', on_retry = "echo retry {{{{ task_id }}}} {{{{ try_number }}}} >> {out}"')
    dag("cb_fail", 'd:task "a" { cmd = "false" }',
        f', on_failure = {{ cmd = "echo failed {{{{ run_id }}}} >> {out}; echo $SLUICE_CALLBACK_JSON >> {out}" }}'
        ', on_success = "echo never"')
    home.test_run("cb_ok", "--logical-date", "2026-11-07", expect_state="success")
    run = home.test_run("cb_fail", expect_state="failed")
    srv.shutdown()
    with open(out) as f:
        lines = f.read()
    expect("retry a 1" in lines, lines)
    expect("ok cb_ok 2026-11-07 on_success" in lines, lines)
    expect(f"failed {run['run_id']}" in lines, lines)
    expect('"event":"on_failure"' in lines and '"state":"failed"' in lines, lines)
    eq(len(bodies), 1, "one webhook call")
    path, ctype, body = bodies[0]
    eq((path, ctype), ("/hook", "application/json"), "webhook request")
    eq((body["event"], body["dag_id"], body["state"]), ("on_success", "cb_ok", "success"), "webhook body")
    log = os.path.join(home.home, "logs", "cb_ok", "manual__2026-11-07T00:00:00+00:00", "callbacks.log")
    with open(log) as f:
        text = f.read()
    expect("callback on_success" in text, text)


def t_dagrun_timeout():
    dag("runto", """
local a = d:task "slow" { cmd = "sleep 30.4713" }
local b = d:task "after" { cmd = "true" }
d:task "quick" { cmd = "true" }
d:flow(a >> b)""", ', dagrun_timeout = "1s"')
    t0 = time.monotonic()
    run = home.test_run("runto", expect_state="failed")
    expect(time.monotonic() - t0 < 10, "the run timed out")
    ti = tis(run)
    eq(ti["slow"]["state"], "failed", "the running try was stopped")
    eq(ti["after"]["state"], "skipped", "what had not started is skipped")
    eq(ti["quick"]["state"], "success", "what finished stays")
    expect("sleep 30.4713" not in os.popen("ps -eo args").read(), "the task is gone")


def t_prune():
    dag("prunable", 'd:task "a" { cmd = "echo x" }')
    run = home.test_run("prunable", "--logical-date", "2025-01-01", expect_state="success")
    logs = os.path.join(home.home, "logs", "prunable", run["run_id"])
    expect(os.path.isdir(logs), "logs exist")
    p = home.run("db", "prune", "--older-than", "90d")
    eq(p.returncode, 0, p.stderr)
    expect("0 runs removed" in p.stdout, p.stdout)
    time.sleep(1.1)
    p = home.run("db", "prune", "--older-than", "1s", "--dry-run")
    expect("would remove prunable" in p.stdout, p.stdout)
    expect(os.path.isdir(logs), "a dry run removes nothing")
    p = home.run("db", "prune", "--older-than", "1s")
    expect("removed prunable" in p.stdout, p.stdout)
    eq(home.json("runs", "list", "prunable", "--json")["total_entries"], 0, "run removed")
    expect(not os.path.exists(logs), "logs removed")
    eq(home.run("db", "prune").returncode, 2, "--older-than is required")


check("outputs flow downstream; a missing output fails the task", t_outputs)
check("retries, exhausted retries, no_retry_exit_codes", t_retries)
check("exponential backoff waits", t_backoff)
check("every trigger rule against success, failure and skip", t_trigger_rules)
check("a run's state comes from its leaves", t_run_state_from_leaves)
check("execution_timeout kills the process group and retries", t_timeout)
check("fan-out over outputs (csv, json, empty) and static lists", t_fanout)
check("a failed mapped instance fails its downstream", t_mapped_failure)
check("template errors fail at once with a clear log line", t_unknown_template)
check("params, conf overrides and conf.X", t_params_conf)
check("ds, ds_nodash, ts and data intervals", t_dates)
check("SLUICE_* environment, env and argv commands", t_environment)
check("path and cmd sensors, sensor timeout", t_sensors)
check("a command that cannot be executed", t_exec_failure)
check("100 tasks with max_active_tasks", t_parallel_and_chain)
check("on_success / on_failure / on_retry callbacks: commands and webhooks", t_callbacks)
check("dagrun_timeout stops the run", t_dagrun_timeout)
check("db prune --older-than removes finished runs and their logs", t_prune)
home.cleanup()
finish()
