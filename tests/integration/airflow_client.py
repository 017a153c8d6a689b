"""The official Airflow Python client (apache-airflow-client 2.10.0, ../shared/reference/) against a
real daemon, unchanged and with its strict response models on: every call a user of it makes on the
resources sluice has, the filters and orderings it sends, and the routes Airflow documents."""
import base64
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, Daemon, Home, check, eq, expect, finish, wait_until  # noqa: E402

CLIENT = os.environ.get("SLUICE_AIRFLOW_CLIENT") or os.path.join(ROOT, "..", "shared", "reference",
                                                                  "airflow-client-2.10")
sys.path.insert(0, CLIENT)
import airflow_client.client as ac  # noqa: E402
from airflow_client.client.api import (config_api, connection_api, dag_api, dag_run_api,  # noqa: E402
                                       dag_stats_api, dag_warning_api, dataset_api, event_log_api,
                                       import_error_api, monitoring_api, permission_api, plugin_api,
                                       pool_api, provider_api, role_api, task_instance_api, user_api,
                                       variable_api, x_com_api)
from airflow_client.client.exceptions import ApiException  # noqa: E402
from airflow_client.client.model.clear_dag_run import ClearDagRun  # noqa: E402
from airflow_client.client.model.connection import Connection  # noqa: E402
from airflow_client.client.model.clear_task_instances import ClearTaskInstances  # noqa: E402
from airflow_client.client.model.dag import DAG  # noqa: E402
from airflow_client.client.model.dag_run import DAGRun  # noqa: E402
from airflow_client.client.model.dag_state import DagState  # noqa: E402
from airflow_client.client.model.list_dag_runs_form import ListDagRunsForm  # noqa: E402
from airflow_client.client.model.list_task_instance_form import ListTaskInstanceForm  # noqa: E402
from airflow_client.client.model.pool import Pool  # noqa: E402
from airflow_client.client.model.set_dag_run_note import SetDagRunNote  # noqa: E402
from airflow_client.client.model.set_task_instance_note import SetTaskInstanceNote  # noqa: E402
from airflow_client.client.model.task_state import TaskState  # noqa: E402
from airflow_client.client.model.update_dag_run_state import UpdateDagRunState  # noqa: E402
from airflow_client.client.model.update_task_instance import UpdateTaskInstance  # noqa: E402
from airflow_client.client.model.update_task_instances_state import UpdateTaskInstancesState  # noqa: E402
from airflow_client.client.model.update_task_state import UpdateTaskState  # noqa: E402
from airflow_client.client.model.variable import Variable  # noqa: E402

home = Home()
home.write_dag("etl.lua", '''
local d = dag {
  id = "etl", tags = { "Sales" }, schedule = "0 3 * * *", start_date = "2030-01-01",
  doc_md = "# ETL\\nLoads *sales*.", description = "Daily sales load",
  params = {
    region = "eu",
    days = param { default = 3, description = "how many days back", type = "integer", minimum = 1 },
  },
}
local a = d:task "a" { cmd = "echo a; echo rows=3 >> $SLUICE_OUTPUT", doc_md = "Extract **rows**." }
local b = d:task "b" { cmd = "sleep 0.3", pool = "slow" }
local m = d:map "m" { over = { "x", "y", "z" }, cmd = "echo {{ item }}" }
d:flow(a >> b >> m)
return d
''')
home.write_dag("ETL_Upper.lua", 'local d = dag { id = "ETL_Upper", schedule = "*/15 * * * *", start_date = "2030-01-01" }\n'
                                'd:task "t" { cmd = "true" }\nreturn d\n')
home.write_dag("long.lua", 'local d = dag { id = "long" }\n'
                           'local s = d:task "s" { cmd = "sleep 60" }\nlocal after = d:task "after" { cmd = "true" }\n'
                           'd:flow(s >> after)\nreturn d\n')
home.write_dag("tail.lua", 'return dag { id = "tail", schedule = "61 25 * * *" }\n')
home.run("pools", "set", "slow", "4")
os.environ["SLUICE_VAR_FROM_ENV"] = "from-the-environment"  # Airflow's AIRFLOW_VAR_<NAME>
os.environ["SLUICE_CONN_FROM_ENV"] = "postgres://envuser:envpw@db.example:6543/sales"
os.environ["SLUICE__WEBSERVER__EXPOSE_CONFIG"] = "true"
dm = Daemon(home).start()
del os.environ["SLUICE__WEBSERVER__EXPOSE_CONFIG"]
del os.environ["SLUICE_VAR_FROM_ENV"], os.environ["SLUICE_CONN_FROM_ENV"]
PORT = int(re.search(r"127\.0\.0\.1:(\d+)", dm.output()).group(1))
with open(os.path.join(home.home, "admin_password.txt")) as f:
    PASSWORD = f.read().strip()
conf = ac.Configuration(host=f"http://127.0.0.1:{PORT}/api/v1", username="admin", password=PASSWORD)
api = ac.ApiClient(conf)
dags = dag_api.DAGApi(api)
runs = dag_run_api.DAGRunApi(api)
tis = task_instance_api.TaskInstanceApi(api)
variables = variable_api.VariableApi(api)


def raw(method, path, body=None, accept=None):
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Authorization", "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode())
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if accept:
        req.add_header("Accept", accept)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type"), resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def status_of(fn, *args, **kw):
    """The HTTP status an API call ends with (200 when it returns)."""
    try:
        fn(*args, **kw)
        return 200
    except ApiException as e:
        return e.status


def finished(dag_id, run_id):
    r = runs.get_dag_run(dag_id, run_id)
    return r if str(r.state) in ("success", "failed") else None


def trigger(dag_id, run_id, **kw):
    run = runs.post_dag_run(dag_id, DAGRun(dag_run_id=run_id, **kw))
    return run


# One finished run of etl and one of ETL_Upper, shared by the read-only cases.
wait_until(lambda: status_of(dags.get_dag, "etl") == 200, 15, "the daemon to import etl")
trigger("etl", "r1", logical_date=datetime(2026, 11, 1, tzinfo=timezone.utc), conf={"days": 5})
trigger("ETL_Upper", "u1", logical_date=datetime(2026, 11, 2, tzinfo=timezone.utc))
wait_until(lambda: finished("etl", "r1") and finished("ETL_Upper", "u1"), 30, "the first runs")


def t_monitoring():
    m = monitoring_api.MonitoringApi(api)
    eq(str(m.get_health().metadatabase.status), "healthy", "health")
    expect(m.get_version().version, "version")


def t_booleans():
    dags.patch_dag("ETL_Upper", DAG(is_paused=True))
    for t, f in (("True", "False"), ("true", "false"), ("1", "0"), ("TRUE", "FALSE")):
        st, _, body = raw("GET", f"/dags?paused={t}")
        eq((st, [d["dag_id"] for d in json.loads(body)["dags"]]), (200, ["ETL_Upper"]), f"paused={t}")
        st, _, body = raw("GET", f"/dags?paused={f}")
        expect("ETL_Upper" not in body and '"etl"' in body, f"paused={f}: {body}")
    eq(raw("GET", "/dags?paused=maybe")[0], 400, "a boolean that is neither")
    eq([d.dag_id for d in dags.get_dags(paused=True).dags], ["ETL_Upper"], "the client sends True")
    expect("etl" in [d.dag_id for d in dags.get_dags(paused=False).dags], "paused=False")
    dags.patch_dag("ETL_Upper", DAG(is_paused=False))
    expect(len(dags.get_dags(only_active=False).dags) >= 3, "only_active=False")


def t_dag_filters_and_order():
    eq(sorted(d.dag_id for d in dags.get_dags(dag_id_pattern="etl").dags), ["ETL_Upper", "etl"],
       "dag_id_pattern is case-insensitive (ILIKE)")
    eq([d.dag_id for d in dags.get_dags(tags=["Sales"]).dags], ["etl"], "tags")
    ids = [d.dag_id for d in dags.get_dags(order_by="-dag_id").dags]
    eq(ids, sorted(ids, reverse=True), "order_by -dag_id")
    eq(status_of(dags.get_dags, order_by="nonsense"), 400, "an unknown order_by")
    tasks = dags.get_tasks("etl")
    eq([t.task_id for t in tasks.tasks], ["a", "b", "m"], "tasks in task_id order")
    eq([t.task_id for t in dags.get_tasks("etl", order_by="-task_id").tasks], ["m", "b", "a"], "-task_id")
    eq(status_of(dags.get_tasks, "etl", order_by="bogus"), 400, "unknown task order_by")
    eq(dags.get_task("etl", "a").doc_md, "Extract **rows**.", "the task's doc_md")


def t_dag_detail():
    d = dags.get_dag_details("etl")
    eq(d.doc_md, "# ETL\nLoads *sales*.", "doc_md is the DAG's own")
    eq(d.description, "Daily sales load", "description")
    p = d.params
    eq(p["days"], {"__class": "airflow.models.param.Param", "value": 3, "description": "how many days back",
                   "schema": {"type": "integer", "minimum": 1}}, "params as Airflow sends them")
    eq(p["region"]["value"], "eu", "a plain param")
    eq(p["region"]["schema"], {}, "a plain param has an empty schema")
    eq(dags.get_dag("etl").timetable_description, "At 03:00", "timetable in words, as Airflow")
    # The client itself refuses "At 03:00" in DAGDetail (dateutil reads it as a time): the
    # verbose form there.
    eq(d.timetable_description, "At 03:00, every day", "in DAGDetail")
    eq(dags.get_dag("ETL_Upper").timetable_description, "Every 15 minutes", "every 15 minutes")
    eq(dags.get_dag_details("ETL_Upper").timetable_description, "Every 15 minutes", "the same in DAGDetail")
    eq(dags.get_dag("long").timetable_description, "Never, external triggers only", "no schedule")


def t_param_validation():
    try:
        trigger("etl", "bad-conf", conf={"days": 0})
        raise AssertionError("a conf that breaks the schema was accepted")
    except ApiException as e:
        eq(e.status, 400, "bad conf")
        expect("days" in e.body, e.body)
    try:
        trigger("etl", "bad-type", conf={"days": "many"})
        raise AssertionError("a string for an integer param was accepted")
    except ApiException as e:
        eq(e.status, 400, "bad type")


def t_sources():
    d = dags.get_dag("etl")
    src = dags.get_dag_source(d.file_token)
    expect("Extract" in src["content"], "source as JSON")
    st, ctype, body = raw("GET", f"/dagSources/{d.file_token}", accept="text/plain")
    eq((st, ctype.split(";")[0]), (200, "text/plain"), "text/plain")
    expect(body.startswith("\nlocal d = dag {"), f"the bare source: {body[:40]!r}")


def t_import_error_location():
    errs = import_error_api.ImportErrorApi(api).get_import_errors()
    tail = [e for e in errs.import_errors if e.filename.endswith("tail.lua")]
    eq(len(tail), 1, f"an import error for tail.lua: {errs}")
    expect(re.match(r".*tail\.lua:1: ", tail[0].stack_trace), f"file:line: in {tail[0].stack_trace!r}")
    one = import_error_api.ImportErrorApi(api).get_import_error(tail[0].import_error_id)
    eq(one.filename, tail[0].filename, "get one")


def t_runs_and_filters():
    r = runs.get_dag_run("etl", "r1")
    eq(str(r.state), "success", "r1")
    eq(r.conf, {"days": 5}, "conf")
    listed = runs.get_dag_runs("~", order_by="-execution_date")
    eq([x.dag_run_id for x in listed.dag_runs][:2], ["u1", "r1"], "newest first")
    eq(runs.get_dag_runs("etl", state=["success"]).total_entries, 1, "state filter")
    later = datetime(2026, 11, 1, 12, tzinfo=timezone.utc)
    eq([x.dag_run_id for x in runs.get_dag_runs("~", execution_date_gte=later).dag_runs], ["u1"], "execution_date_gte")
    now = datetime.now(timezone.utc)
    eq(runs.get_dag_runs("~", updated_at_gte=now + timedelta(hours=1)).total_entries, 0, "updated_at_gte")
    expect(runs.get_dag_runs("~", updated_at_lte=now + timedelta(hours=1)).total_entries >= 2, "updated_at_lte")
    b = runs.get_dag_runs_batch(ListDagRunsForm(order_by="dag_run_id", dag_ids=["etl", "ETL_Upper"]))
    eq([x.dag_run_id for x in b.dag_runs], ["r1", "u1"], "order_by in the batch body")
    b = runs.get_dag_runs_batch(ListDagRunsForm(order_by="-dag_run_id", dag_ids=["etl", "ETL_Upper"]))
    eq([x.dag_run_id for x in b.dag_runs], ["u1", "r1"], "descending in the batch body")
    eq(status_of(runs.get_dag_runs_batch, ListDagRunsForm(order_by="nope")), 400, "unknown order_by in the body")
    stats = dag_stats_api.DagStatsApi(api).get_dag_stats(dag_ids="etl")
    eq(stats.dags[0].dag_id, "etl", "dag stats")


def t_task_instance_filters():
    all_tis = tis.get_task_instances("etl", "r1")
    eq(all_tis.total_entries, 5, "a, b and three m")
    eq([t.task_id for t in tis.get_task_instances("etl", "r1", pool=["slow"]).task_instances], ["b"], "pool")
    eq(tis.get_task_instances("etl", "r1", queue=["default"]).total_entries, 5, "queue: sluice has Airflow's default one")
    eq(tis.get_task_instances("etl", "r1", queue=["q2"]).total_entries, 0, "no other queue")
    eq(tis.get_task_instances("etl", "r1", executor=["nope"]).total_entries, 0, "executor")
    eq(tis.get_task_instances("etl", "r1", executor=["local"]).total_entries, 5, "executor local")
    eq([t.task_id for t in tis.get_task_instances("etl", "r1", duration_gte=0.25).task_instances], ["b"],
       "duration_gte")
    expect("b" not in [t.task_id for t in tis.get_task_instances("etl", "r1", duration_lte=0.25).task_instances],
           "duration_lte")
    eq(tis.get_task_instances("etl", "r1", execution_date_gte=datetime(2026, 11, 2, tzinfo=timezone.utc))
       .total_entries, 0, "execution_date_gte")
    eq(tis.get_task_instances("etl", "r1", execution_date_lte=datetime(2026, 11, 2, tzinfo=timezone.utc))
       .total_entries, 5, "execution_date_lte")
    now = datetime.now(timezone.utc)
    eq(tis.get_task_instances("etl", "r1", updated_at_gte=now + timedelta(hours=1)).total_entries, 0, "updated_at")
    eq(tis.get_task_instances("etl", "r1", updated_at_lte=now + timedelta(hours=1)).total_entries, 5, "updated_at")
    eq(tis.get_task_instances("~", "~", state=["success"]).total_entries, 6, "~ for dag_id and dag_run_id")
    eq(tis.get_task_instances("etl", "~").total_entries, 5, "~ for dag_run_id")
    batch = tis.get_task_instances_batch(ListTaskInstanceForm(dag_ids=["etl"], task_ids=["m"]))
    eq(batch.total_entries, 3, "taskInstances/list")
    batch = tis.get_task_instances_batch(ListTaskInstanceForm(dag_run_ids=["u1"], state=[TaskState("success")]))
    eq([t.task_id for t in batch.task_instances], ["t"], "taskInstances/list by run and state")


def t_mapped_and_tries():
    mapped = tis.get_mapped_task_instances("etl", "r1", "m")
    eq([t.map_index for t in mapped.task_instances], [0, 1, 2], "listMapped")
    eq([t.map_index for t in tis.get_mapped_task_instances("etl", "r1", "m", order_by="-map_index").task_instances],
       [2, 1, 0], "listMapped order_by")
    eq(status_of(tis.get_mapped_task_instances, "etl", "r1", "a"), 404, "listMapped of an unmapped task")
    eq(tis.get_mapped_task_instance("etl", "r1", "m", 1).map_index, 1, "one mapped")
    eq(tis.get_task_instance("etl", "r1", "a").try_number, 1, "one instance")
    eq([t.try_number for t in tis.get_task_instance_tries("etl", "r1", "a").task_instances], [1], "tries")
    eq(tis.get_task_instance_try_details("etl", "r1", "a", 1).try_number, 1, "tries/{n}")
    eq(status_of(tis.get_task_instance_try_details, "etl", "r1", "a", 7), 404, "no try 7")
    eq([t.map_index for t in tis.get_mapped_task_instance_tries("etl", "r1", "m", 2).task_instances], [2],
       "mapped tries")
    eq(tis.get_mapped_task_instance_try_details("etl", "r1", "m", 2, 1).map_index, 2, "mapped try details")
    log = tis.get_log("etl", "r1", "a", 1, full_content=True)
    expect("a" in log.content, "log")
    ref = tis.patch_mapped_task_instance("etl", "r1", "m", 2, update_task_instance=UpdateTaskInstance(
        new_state=UpdateTaskState("failed"), dry_run=True))
    eq(ref.task_id, "m", "PATCH of a mapped instance (dry run)")
    eq(str(tis.get_mapped_task_instance("etl", "r1", "m", 2).state), "success", "a dry run changes nothing")
    eq(raw("GET", "/dags/etl/dagRuns/r1/taskInstances/a/x")[0], 400, "GET with a map_index not a number")
    eq(raw("PATCH", "/dags/etl/dagRuns/r1/taskInstances/m/x", {"new_state": "success"})[0], 400,
       "PATCH with a map_index not a number")


def t_full_content_true():
    path = os.path.join(home.home, "logs", "etl", "r1", "a", "-1", "1.log")
    with open(path, "a") as f:
        f.write("x" * (1536 * 1024) + "\nEND\n")
    log = tis.get_log("etl", "r1", "a", 1, full_content=True)
    expect(log.content.endswith("END\n"), "full_content=True is the whole log")


def t_xcom():
    x = x_com_api.XComApi(api)
    eq([e.key for e in x.get_xcom_entries("etl", "r1", "a").xcom_entries], ["rows"], "xcom entries")
    eq(x.get_xcom_entry("etl", "r1", "a", "rows").value, "3", "one entry")
    eq([e.task_id for e in x.get_xcom_entries("~", "~", "~").xcom_entries], ["a"], "~ wildcards for xcom")


def t_notes():
    r = runs.set_dag_run_note("etl", "r1", SetDagRunNote(note="checked by ops"))
    eq(r.note, "checked by ops", "run note")
    eq(runs.get_dag_run("etl", "r1").note, "checked by ops", "kept")
    t = tis.set_task_instance_note("etl", "r1", "a", SetTaskInstanceNote(note="slow source"))
    eq(t.note, "slow source", "task instance note")
    eq(tis.get_task_instance("etl", "r1", "a").note, "slow source", "kept")
    t = tis.set_mapped_task_instance_note("etl", "r1", "m", 1, SetTaskInstanceNote(note="y was late"))
    eq((t.map_index, t.note), (1, "y was late"), "mapped note")
    eq(tis.get_mapped_task_instance("etl", "r1", "m", 0).note, None, "other map indexes untouched")


def t_queued_touches_no_task():
    before = {(t.task_id, t.map_index): (str(t.state), t.try_number)
              for t in tis.get_task_instances("ETL_Upper", "u1").task_instances}
    r = runs.update_dag_run_state("ETL_Upper", "u1", UpdateDagRunState(state="queued"))
    eq(str(r.state), "queued", "the run is queued")
    after = {(t.task_id, t.map_index): (str(t.state), t.try_number)
             for t in tis.get_task_instances("ETL_Upper", "u1").task_instances}
    eq(after, before, "no task instance touched")
    wait_until(lambda: finished("ETL_Upper", "u1"), 20, "the queued run to finish again")
    eq(str(runs.get_dag_run("ETL_Upper", "u1").state), "success", "its tasks had succeeded")


def start_long(run_id):
    trigger("long", run_id)
    wait_until(lambda: str(tis.get_task_instance("long", run_id, "s").state) == "running", 20, "s to run")


def t_running_run_marked_failed():
    start_long("lf")
    r = runs.update_dag_run_state("long", "lf", UpdateDagRunState(state="failed"))
    expect(str(r.state) in ("running", "failed"), f"accepted: {r.state}")
    wait_until(lambda: finished("long", "lf"), 20, "the run to fail")
    got = {t.task_id: str(t.state) for t in tis.get_task_instances("long", "lf").task_instances}
    eq(got, {"s": "failed", "after": "skipped"}, "running failed, not started skipped")
    eq(str(runs.get_dag_run("long", "lf").state), "failed", "the run")


def t_running_run_marked_success():
    start_long("ls")
    r = runs.update_dag_run_state("long", "ls", UpdateDagRunState(state="success"))
    expect(str(r.state) in ("running", "success"), f"accepted: {r.state}")
    wait_until(lambda: finished("long", "ls"), 20, "the run to succeed")
    got = {t.task_id: str(t.state) for t in tis.get_task_instances("long", "ls").task_instances}
    eq(got, {"s": "success", "after": "success"}, "every task success")
    eq(str(runs.get_dag_run("long", "ls").state), "success", "the run")
    tries = tis.get_task_instance_tries("long", "ls", "s").task_instances
    eq(len(tries), 1, "no retry of the stopped try")


def t_running_ti_set_state():
    start_long("ts")
    ref = tis.patch_task_instance("long", "ts", "s", UpdateTaskInstance(new_state=UpdateTaskState("success")))
    eq(ref.task_id, "s", "reference")
    wait_until(lambda: finished("long", "ts"), 20, "the run to go on")
    got = {t.task_id: str(t.state) for t in tis.get_task_instances("long", "ts").task_instances}
    eq(got, {"s": "success", "after": "success"}, "s marked success, after ran")
    start_long("tf")
    dags.post_set_task_instances_state("long", UpdateTaskInstancesState(
        dag_run_id="tf", task_id="s", new_state=UpdateTaskState("failed"), dry_run=False))
    wait_until(lambda: finished("long", "tf"), 20, "the run to fail")
    got = {t.task_id: str(t.state) for t in tis.get_task_instances("long", "tf").task_instances}
    eq(got, {"s": "failed", "after": "upstream_failed"}, "s failed, after upstream_failed")


def t_delete_running_run():
    start_long("ld")
    runs.delete_dag_run("long", "ld")
    eq(status_of(runs.get_dag_run, "long", "ld"), 404, "gone")
    left = os.path.join(home.home, "logs", "long", "ld")
    # Its supervisor may still write its status as it stops: the folder goes once it is done.
    wait_until(lambda: not os.path.exists(left), 10, "its logs to go too")
    time.sleep(1)
    eq(status_of(runs.get_dag_run, "long", "ld"), 404, "and it does not come back")
    # The daemon is fine and the stopped process is gone.
    start_long("after-delete")
    runs.update_dag_run_state("long", "after-delete", UpdateDagRunState(state="failed"))
    wait_until(lambda: finished("long", "after-delete"), 20, "the next run")


def t_clear_and_mark():
    refs = dags.post_clear_task_instances("etl", ClearTaskInstances(dag_run_id="r1", only_failed=False, dry_run=True))
    eq(len(refs.task_instances), 5, "dry run lists all five")
    runs.clear_dag_run("etl", "r1", ClearDagRun(dry_run=True))
    refs = dags.post_set_task_instances_state("etl", UpdateTaskInstancesState(
        dag_run_id="r1", task_id="m", new_state=UpdateTaskState("success"), dry_run=True))
    eq(len(refs.task_instances), 3, "a mapped task's instances")


def t_pools():
    p = pool_api.PoolApi(api)
    p.post_pool(Pool(name="client_pool", slots=3))
    eq(p.get_pool("client_pool").slots, 3, "get")
    p.patch_pool("client_pool", Pool(name="client_pool", slots=5))
    eq([x.name for x in p.get_pools(order_by="-name").pools][0], "slow", "ordered")
    p.delete_pool("client_pool")
    eq(status_of(p.get_pool, "client_pool"), 404, "deleted")


def t_variables():
    variables.post_variables(Variable(key="region", value="eu-west", description="where"))
    eq(variables.get_variable("region").value, "eu-west", "get")
    eq(variables.get_variable("region").description, "where", "description")
    variables.post_variables(Variable(key="cfg", value=json.dumps({"db": {"host": "h1"}, "n": 2})))
    eq(status_of(variables.post_variables, Variable(key="region", value="again")), 409, "duplicate")
    variables.patch_variable("region", Variable(key="region", value="eu-central"))
    eq(variables.get_variable("region").value, "eu-central", "patched")
    got = variables.get_variables(order_by="key")
    eq([v.key for v in got.variables], ["cfg", "region"], "list ordered")
    eq(variables.get_variables(limit=1, offset=1).variables[0].key, "region", "paginated")
    eq(status_of(variables.get_variable, "nope"), 404, "unknown")
    home.write_dag("usevar.lua", 'local d = dag { id = "usevar" }\n'
                                 'd:task "t" { cmd = "echo R={{ var.value.region }} H={{ var.json.cfg.db.host }}"'
                                 ' .. " E={{ var.value.from_env }}" }\nreturn d\n')
    wait_until(lambda: status_of(dags.get_dag, "usevar") == 200, 15, "usevar")
    trigger("usevar", "v1")
    wait_until(lambda: finished("usevar", "v1"), 20, "usevar run")
    eq(str(runs.get_dag_run("usevar", "v1").state), "success", "templated from variables")
    log = tis.get_log("usevar", "v1", "t", 1, full_content=True).content
    expect("R=eu-central H=h1 E=from-the-environment" in log, log)
    variables.delete_variable("cfg")
    eq(status_of(variables.get_variable, "cfg"), 404, "deleted")
    eq(status_of(variables.delete_variable, "cfg"), 404, "deleted twice")


def sqlite_dump():
    import sqlite3
    db = sqlite3.connect(f"file:{os.path.join(home.home, 'sluice.db')}?mode=ro", uri=True)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def t_secret_variables():
    variables.post_variables(Variable(key="db_password", value="hunter2-very-secret"))
    eq(variables.get_variable("db_password").value, "***", "a secret variable is never sent back")
    expect("hunter2-very-secret" not in sqlite_dump(), "sealed at rest")
    key = os.path.join(home.home, "secret.key")
    eq(os.stat(key).st_mode & 0o777, 0o600, "the key file is 0600")
    p = home.run("variables", "get", "db_password")
    eq((p.returncode, p.stdout.strip()), (0, "hunter2-very-secret"), f"the CLI opens it: {p.stderr}")
    with open(key) as f:
        old = f.read()
    p = home.run("db", "rotate-key")
    eq(p.returncode, 0, f"rotate-key: {p.stderr}")
    expect("1 sealed value" in p.stdout or "sealed values" in p.stdout, p.stdout)
    with open(key) as f:
        eq(len(f.read().split()), 1, "one key left after the rotation")
    with open(key) as f:
        expect(f.read() != old, "a new key")
    p = home.run("variables", "get", "db_password")
    eq(p.stdout.strip(), "hunter2-very-secret", "still opens after the rotation")
    p = home.run("variables", "get", "db_password", env={"SLUICE_SECRET_KEY": "00" * 32})
    eq(p.returncode, 1, "a wrong key opens nothing")
    expect("does not open" in p.stderr, p.stderr)


class BannerServer:
    """A TCP listener on 127.0.0.1 that greets with an SSH banner (the connection test reads
    only the banner), or says nothing at all."""

    def __init__(self, banner):
        import socket
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.banner = banner
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        for _ in range(20):  # bounded
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.banner:
                c.sendall(self.banner)
            c.close()

    def close(self):
        self.sock.close()


def t_connections():
    conns = connection_api.ConnectionApi(api)
    conns.post_connection(Connection(connection_id="db", conn_type="postgres", host="db.internal", port=5432,
                                     login="etl", password="pg-secret-pw", schema="sales",
                                     extra=json.dumps({"region": "eu", "api_token": "tok-123"})))
    c = conns.get_connection("db")
    eq((c.conn_type, c.host, c.port, c.login, c.schema), ("postgres", "db.internal", 5432, "etl", "sales"), "get")
    eq(json.loads(c.extra), {"region": "eu", "api_token": "***"}, "secret extra fields masked")
    expect("password" not in c.to_dict() or c.to_dict().get("password") in (None, "***"), "no password back")
    dump = sqlite_dump()
    expect("pg-secret-pw" not in dump and "tok-123" not in dump, "password and secret extra sealed at rest")
    eq(status_of(conns.post_connection, Connection(connection_id="db", conn_type="http")), 409, "duplicate")
    eq(status_of(conns.post_connection, Connection(connection_id="bad id", conn_type="http")), 400, "bad id")
    conns.patch_connection("db", Connection(connection_id="db", conn_type="postgres", host="db2.internal"),
                           update_mask=["host"])
    c = conns.get_connection("db")
    eq((c.host, c.login), ("db2.internal", "etl"), "update_mask changed the host only")
    eq([x.connection_id for x in conns.get_connections(order_by="-connection_id").connections], ["db"], "list")
    p = home.run("connections", "get", "db")
    uri = p.stdout.strip()
    prefix = "postgres://etl:pg-secret-pw@db2.internal:5432/sales?__extra__="
    expect(uri.startswith(prefix), f"the URI: {uri} {p.stderr}")
    eq(json.loads(urllib.request.unquote(uri[len(prefix):])), {"region": "eu", "api_token": "tok-123"}, "its extra")
    p = home.run("connections", "add", "db_copy", "--uri", uri)
    eq(p.returncode, 0, p.stderr)
    eq(home.run("connections", "get", "db_copy").stdout.strip(), uri, "a URI reads back the same")
    home.run("connections", "delete", "db_copy")
    p = home.run("connections", "add", "web", "--uri", f"http://u%40x:p%3Aw@127.0.0.1:{PORT}/api?timeout=5")
    eq(p.returncode, 0, p.stderr)
    got = home.json("connections", "get", "web", "--json")
    eq((got["login"], got["password"], got["host"], got["port"], got["schema"], json.loads(got["extra"])),
       ("u@x", "p:w", "127.0.0.1", PORT, "api", {"timeout": "5"}), "the URI parts, percent-decoded")
    ssh = BannerServer(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n")
    mute = BannerServer(None)
    try:
        t = conns.test_connection(Connection(connection_id="t", conn_type="ssh", host="127.0.0.1", port=ssh.port))
        expect(t.status and "SSH-2.0-OpenSSH_9.2p1" in t.message, t)
        t = conns.test_connection(Connection(connection_id="t", conn_type="ssh", host="127.0.0.1", port=mute.port))
        expect(not t.status and "not as an SSH server" in t.message, t)
        t = conns.test_connection(Connection(connection_id="t", conn_type="http", host="127.0.0.1", port=PORT))
        expect(t.status, t)
        import socket
        free = socket.socket()  # a port nothing listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        t = conns.test_connection(Connection(connection_id="t", conn_type="postgres", host="127.0.0.1", port=port))
        expect(not t.status and "cannot connect" in t.message, t)
    finally:
        ssh.close()
        mute.close()
    home.write_dag("useconn.lua", 'local d = dag { id = "useconn" }\n'
                                  'd:task "t" { cmd = "echo H={{ conn.db.host }}:{{ conn.db.port }}'
                                  ' R={{ conn.db.extra_dejson.region }} E={{ conn.from_env.login }}@'
                                  '{{ conn.from_env.host }}/{{ conn.from_env.schema }}"'
                                  ' .. "; echo P={{ conn.db.password }} S={{ var.value.db_password }};'
                                  ' printf X=pg-secret; sleep 0.3; echo -pw" }\nreturn d\n')
    wait_until(lambda: status_of(dags.get_dag, "useconn") == 200, 15, "useconn")
    trigger("useconn", "c1")
    wait_until(lambda: finished("useconn", "c1"), 20, "useconn run")
    log = tis.get_log("useconn", "c1", "t", 1, full_content=True).content
    expect("H=db2.internal:5432 R=eu E=envuser@db.example/sales" in log, log)
    # Secrets a task prints are masked in its log, however they were written.
    expect("P=*** S=***" in log, log)
    expect("X=***" in log, f"a secret printed in two writes is masked too: {log}")
    expect("pg-secret-pw" not in log and "hunter2-very-secret" not in log, log)
    conns.delete_connection("web")
    eq(status_of(conns.get_connection, "web"), 404, "deleted")


def t_event_logs():
    ev = event_log_api.EventLogApi(api)
    logs = ev.get_event_logs(limit=1000).event_logs
    events = [e.event for e in logs]
    for want in ("dag_run.create", "dag.edit", "variable.create", "variable.delete", "connection.create",
                 "dag_run.edit", "task_instance.edit", "pool.create", "cli_db_rotate_key", "cli_connections_add"):
        expect(want in events, f"{want} in {sorted(set(events))}")
    r1 = [e for e in logs if e.event == "dag_run.create" and e.run_id == "r1"]
    eq(len(r1), 1, "the trigger of r1, with its run id")
    eq((r1[0].owner, r1[0].dag_id), ("admin", "etl"), "who and which DAG")
    extra = json.loads(r1[0].extra)
    eq((extra["method"], extra["status"], extra["client"]), ("POST", 200, "127.0.0.1"), "what and from where")
    secret = [e for e in logs if e.event == "variable.create" and "db_password" in e.extra]
    eq(len(secret), 1, "the secret variable's creation")
    expect("hunter2" not in secret[0].extra and '"***"' in secret[0].extra, secret[0].extra)
    cli = [e for e in logs if e.event == "cli_connections_add"][0]
    expect("p%3Aw" not in cli.extra and "***" in cli.extra, f"a --uri is masked: {cli.extra}")
    eq(ev.get_event_log(r1[0].event_log_id).event, "dag_run.create", "get one")
    eq(status_of(ev.get_event_log, 10 ** 9), 404, "unknown id")
    eq({e.event for e in ev.get_event_logs(dag_id="etl", event="dag_run.create").event_logs}, {"dag_run.create"},
       "filter by dag and event")
    only = ev.get_event_logs(included_events="pool.create,pool.delete").event_logs
    expect(only and {e.event for e in only} <= {"pool.create", "pool.delete"}, "included_events")
    without = ev.get_event_logs(excluded_events="dag_run.create", limit=1000).event_logs
    expect("dag_run.create" not in {e.event for e in without}, "excluded_events")
    eq(ev.get_event_logs(after=datetime.now(timezone.utc) + timedelta(hours=1)).total_entries, 0, "after")
    ordered = [e.event_log_id for e in ev.get_event_logs(order_by="-event_log_id", limit=5).event_logs]
    eq(ordered, sorted(ordered, reverse=True), "order_by")


def t_dag_admin():
    home.write_dag("gone.lua", 'local d = dag { id = "gone_one", tags = { "tmp" } }\nd:task "t" { cmd = "true" }\nreturn d\n')
    home.write_dag("gone2.lua", 'local d = dag { id = "gone_two", tags = { "tmp" } }\nd:task "t" { cmd = "true" }\nreturn d\n')
    wait_until(lambda: status_of(dags.get_dag, "gone_two") == 200, 15, "the gone DAGs")
    out = dags.patch_dags("gone", DAG(is_paused=True), update_mask=["is_paused"])
    eq(sorted((d.dag_id, d.is_paused) for d in out.dags), [("gone_one", True), ("gone_two", True)], "bulk pause")
    eq(dags.get_dag("gone_one").is_paused, True, "stored")
    out = dags.patch_dags("~", DAG(is_paused=False), tags=["tmp"])
    eq(sorted(d.dag_id for d in out.dags), ["gone_one", "gone_two"], "~ with tags")
    eq(dags.get_dag("gone_two").is_paused, False, "unpaused")
    trigger("gone_one", "g1")
    wait_until(lambda: finished("gone_one", "g1"), 20, "a run of gone_one")
    expect(os.path.isdir(os.path.join(home.home, "logs", "gone_one")), "its logs")
    dags.delete_dag("gone_one")
    expect(not os.path.exists(os.path.join(home.home, "logs", "gone_one")), "logs gone")
    # The file stays, so the DAG is imported again, afresh: no runs.
    wait_until(lambda: status_of(dags.get_dag, "gone_one") == 200, 15, "the DAG re-imported from its file")
    eq(runs.get_dag_runs("gone_one").total_entries, 0, "its runs went with it")
    eq(status_of(dags.delete_dag, "nope"), 404, "unknown DAG")
    start_long("busy")
    eq(status_of(dags.delete_dag, "long"), 409, "a DAG with a running run")
    runs.update_dag_run_state("long", "busy", UpdateDagRunState(state="failed"))
    wait_until(lambda: finished("long", "busy"), 20, "busy to stop")


def t_config_users_roles():
    cfg = config_api.ConfigApi(api).get_config()
    sections = {s.name: {o.key: o.value for o in s.options} for s in cfg.sections}
    eq(sections["webserver"]["expose_config"], "true", "exposed here")
    eq(sections["core"]["parallelism"], "32", "values")
    one = config_api.ConfigApi(api).get_value("core", "kill_grace")
    eq([(s.name, [o.key for o in s.options]) for s in one.sections], [("core", ["kill_grace"])], "one option")
    eq(status_of(config_api.ConfigApi(api).get_value, "core", "nope"), 404, "unknown option")
    users = user_api.UserApi(api).get_users()
    eq([u.username for u in users.users], ["admin"], "users")
    eq(user_api.UserApi(api).get_user("admin").roles[0].name, "admin", "a user's role")
    roles = role_api.RoleApi(api).get_roles()
    eq([r.name for r in roles.roles], ["admin", "op", "viewer"], "roles")
    eq(status_of(role_api.RoleApi(api).get_role, "nope"), 404, "unknown role")
    home.run("users", "create", "vic", "--role", "viewer", "--password-stdin", input="viewer-pass-1\n")
    viewer = ac.ApiClient(ac.Configuration(host=conf.host, username="vic", password="viewer-pass-1"))
    eq(status_of(user_api.UserApi(viewer).get_users), 403, "users are for admins")
    eq(status_of(config_api.ConfigApi(viewer).get_config), 403, "config is for admins")
    eq(status_of(variable_api.VariableApi(viewer).post_variables, Variable(key="x", value="y")), 403,
       "viewers change nothing")
    eq(status_of(variable_api.VariableApi(viewer).get_variables), 403, "nor read variables, as Airflow's Viewer")
    eq(status_of(connection_api.ConnectionApi(viewer).get_connection, "db"), 403, "nor connections")
    eq(event_log_api.EventLogApi(viewer).get_event_logs(limit=1).total_entries > 0, True, "but the audit log")


def t_warnings_dependencies_and_the_rest():
    home.write_dag("nopool.lua", 'local d = dag { id = "nopool" }\nd:task "t" { cmd = "true", pool = "missing_pool" }'
                                 '\nreturn d\n')
    wait_until(lambda: status_of(dags.get_dag, "nopool") == 200, 15, "nopool")
    w = dag_warning_api.DagWarningApi(api).get_dag_warnings(dag_id="nopool")
    # The client's model names the list import_errors (a slip in Airflow's spec); Airflow sends
    # dag_warnings. sluice sends both.
    eq([(x.warning_type, x.message) for x in w.import_errors],
       [("non-existent pool", "Dag 'nopool' references non-existent pools: ['missing_pool']")], "a DAG warning")
    eq(dag_warning_api.DagWarningApi(api).get_dag_warnings(dag_id="etl").total_entries, 0, "none for etl")
    deps = tis.get_task_instance_dependencies("etl", "r1", "a").dependencies
    eq([(x.name, x.reason) for x in deps], [("Task Instance State", "Task is in the 'success' state.")], "finished")
    eq(tis.get_mapped_task_instance_dependencies("etl", "r1", "m", 1).dependencies[0].name, "Task Instance State",
       "mapped")
    start_long("deps")
    deps = tis.get_task_instance_dependencies("long", "deps", "after").dependencies
    expect([x.name for x in deps] == ["Trigger Rule"] and "all_success" in deps[0].reason
           and "upstream_task_ids=['s']" in deps[0].reason, deps)
    runs.update_dag_run_state("long", "deps", UpdateDagRunState(state="failed"))
    wait_until(lambda: finished("long", "deps"), 20, "deps to stop")
    eq(tis.get_extra_links("etl", "r1", "a").extra_links, [], "no extra links")
    # reparseDagFile: the daemon reads the file again at once, whatever its mtime.
    path = os.path.join(home.dags, "ETL_Upper.lua")
    st = os.stat(path)
    with open(path, "w") as f:
        f.write('local d = dag { id = "ETL_Upper", schedule = "*/15 * * * *", start_date = "2030-01-01", '
                'description = "reparsed" }\nd:task "t" { cmd = "true" }\nreturn d\n')
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same mtime; the size differs, so be sure:
    token = dags.get_dag("ETL_Upper").file_token
    dags.reparse_dag_file(token)
    eq(dags.get_dag("ETL_Upper").description, "reparsed", "re-read by reparseDagFile")
    eq(status_of(dags.reparse_dag_file, "0" * 32), 404, "unknown token")
    eq(plugin_api.PluginApi(api).get_plugins().total_entries, 0, "no plugins")
    eq(provider_api.ProviderApi(api).get_providers()["providers"], [], "no providers")
    eq(sorted(a.name for a in permission_api.PermissionApi(api).get_permissions().actions),
       ["can_create", "can_delete", "can_edit", "can_read"], "permissions")
    ds = dataset_api.DatasetApi(api)
    eq((ds.get_datasets().total_entries, ds.get_dataset_events().total_entries), (0, 0), "no datasets")
    eq(ds.get_upstream_dataset_events("etl", "r1").total_entries, 0, "no dataset events")
    eq(status_of(ds.get_dataset, "s3://x"), 404, "no such dataset")


def t_config_not_exposed_by_default():
    other = Home()
    other.write_dag("x.lua", 'local d = dag { id = "x" }\nd:task "t" { cmd = "true" }\nreturn d\n')
    d2 = Daemon(other).start()
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", d2.output()).group(1))
        with open(os.path.join(other.home, "admin_password.txt")) as f:
            pw = f.read().strip()
        c2 = ac.ApiClient(ac.Configuration(host=f"http://127.0.0.1:{port}/api/v1", username="admin", password=pw))
        eq(status_of(config_api.ConfigApi(c2).get_config), 403, "GET /config is off by default, as in Airflow")
    finally:
        d2.stop()
        other.cleanup()


try:
    check("health and version", t_monitoring)
    check("booleans in the query string: True/False/1/0 in any case", t_booleans)
    check("dags: dag_id_pattern ILIKE, tags, order_by (400 when unknown), tasks in task_id order", t_dag_filters_and_order)
    check("DAG details: doc_md, params with description and schema, timetable in words", t_dag_detail)
    check("a trigger's conf is checked against the params' schemas (400 naming the field)", t_param_validation)
    check("dagSources as JSON and as text/plain", t_sources)
    check("an import error carries file:line: whatever the shape of the file", t_import_error_location)
    check("dag runs: get, list filters incl. updated_at, batch order_by, dagStats", t_runs_and_filters)
    check("task instances: every filter, ~ wildcards, taskInstances/list", t_task_instance_filters)
    check("listMapped, mapped instances, tries and try details, map_index not a number", t_mapped_and_tries)
    check("full_content=True returns a log over 1 MiB whole", t_full_content_true)
    check("xcom entries and ~ wildcards", t_xcom)
    check("setNote on runs, task instances and mapped task instances", t_notes)
    check("PATCH dagRun state=queued touches no task instance", t_queued_touches_no_task)
    check("marking a running run failed: running tasks failed, the rest skipped", t_running_run_marked_failed)
    check("marking a running run success: its running try stops, every task success", t_running_run_marked_success)
    check("setting a running task instance's state (success, failed)", t_running_ti_set_state)
    check("deleting a running run stops its tries first", t_delete_running_run)
    check("clearTaskInstances, dagRun clear, updateTaskInstancesState (dry runs)", t_clear_and_mark)
    check("pools CRUD with the client", t_pools)
    check("variables: CRUD, pagination, order_by, templating, SLUICE_VAR_ override", t_variables)
    check("secret variables: sealed at rest, *** in the API, rotate-key, a wrong key opens nothing",
          t_secret_variables)
    check("connections: CRUD, update_mask, URIs, test (ssh banner, http, refused), templating, SLUICE_CONN_",
          t_connections)
    check("PATCH /dags (pattern, ~, tags) and DELETE /dags/{id} (runs and logs go, the file re-imports)", t_dag_admin)
    check("/config with expose_config, /users and /roles for admins only", t_config_users_roles)
    check("the audit log: API and CLI changes with who, what, where; secrets masked; filters", t_event_logs)
    check("dagWarnings, dependencies, extra links, reparseDagFile, plugins, providers, permissions, datasets",
          t_warnings_dependencies_and_the_rest)
finally:
    dm.stop()
check("GET /config is 403 unless webserver.expose_config", t_config_not_exposed_by_default)
home.cleanup()
finish()
