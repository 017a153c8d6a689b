"""The REST API of a real daemon on an ephemeral port: auth (none, wrong, Basic, Bearer, viewer),
RFC 7807 errors, pagination, and every response body validated against the schemas of Airflow's
REST API v1 (../shared/reference/airflow-v1.yaml) with ajv."""
import base64
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import ROOT, Daemon, Home, check, eq, expect, finish, wait_until  # noqa: E402

SPEC = os.environ.get("SLUICE_AIRFLOW_SPEC") or os.path.join(ROOT, "..", "shared", "reference", "airflow-v1.yaml")
recorded = []   # responses to validate against the spec
home = Home()
home.write_dag("d.lua", 'local d = dag { id = "d", tags = { "t1" }, params = { p = 1 } }\n'
                        'local a = d:task "a" { cmd = "echo hello from a; echo rows=3 >> $SLUICE_OUTPUT" }\n'
                        'local m = d:map "m" { over = { "x", "y" }, cmd = "echo {{ item }}" }\nd:flow(a >> m)\nreturn d\n')
home.write_dag("broken.lua", "this is not lua\n")
run = home.test_run("d", "--logical-date", "2026-11-01", expect_state="success")
RUN = run["run_id"]
dm = Daemon(home).start()
PORT = int(re.search(r"127\.0\.0\.1:(\d+)", dm.output()).group(1))
with open(os.path.join(home.home, "admin_password.txt")) as f:
    ADMIN = "admin:" + f.read().strip()


def call(method, path, auth=ADMIN, body=None, bearer=None, headers=None, port=None):
    url = f"http://127.0.0.1:{port or PORT}/api/v1{path}"
    req = urllib.request.Request(url, method=method, data=body)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    if bearer:
        req.add_header("Authorization", "Bearer " + bearer)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.headers.get("Content-Type"), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), json.loads(e.read() or b"null")


def get_ok(path, schema, **kw):
    status, ctype, body = call("GET", path, **kw)
    eq(status, 200, f"GET {path}: {body}")
    eq(ctype, "application/json", "content type")
    recorded.append({"name": f"GET {path}", "schema": schema, "body": body})
    return body


def problem(path, status, **kw):
    st, ctype, body = call("GET", path, **kw)
    eq(st, status, f"GET {path}: {body}")
    eq(ctype, "application/problem+json", "problem content type")
    recorded.append({"name": f"GET {path} ({status})", "schema": "Error", "body": body})
    return body


def t_public():
    h = get_ok("/health", "HealthInfo", auth=None)
    eq(h["metadatabase"]["status"], "healthy", "db")
    eq(h["scheduler"]["status"], "healthy", "scheduler heartbeat")
    v = get_ok("/version", "VersionInfo", auth=None)
    expect(v["version"], "version")


def t_auth():
    problem("/pools", 401, auth=None)
    problem("/pools", 401, auth="admin:wrong-password")
    problem("/pools", 401, bearer="slc_not_a_token")
    get_ok("/pools", "PoolCollection")
    token = home.run("tokens", "create", "ci", "--role", "viewer").stdout.strip()
    expect(token.startswith("slc_"), token)
    get_ok("/pools", "PoolCollection", auth=None, bearer=token)
    p = home.run("users", "create", "vera", "--role", "viewer", "--password-stdin", input="s3cret-pass\n")
    eq(p.returncode, 0, p.stderr)
    get_ok("/pools", "PoolCollection", auth="vera:s3cret-pass")
    problem("/pools", 401, auth="vera:wrong")


def t_nul_and_bad_escapes():
    for path in ("/dags/d%00junk", "/dags/d%zz", "/dags/d%4", "/dags/%00"):
        st, ctype, body = call("GET", path)
        eq(st, 400, f"{path}: {body}")
        eq(ctype, "application/problem+json", path)
    eq(call("GET", "/dags/%64")[0], 200, "a valid escape (%64 is d) still works")
    # Not UTF-8 (issue 14, defect 10): it would be echoed into replies clients cannot decode.
    for path in ("/dags/caf%E9", "/dags?dag_id_pattern=%FF", "/dags/d/dagRuns/%C0%AF"):
        st, ctype, body = call("GET", path)
        eq((st, ctype), (400, "application/problem+json"), f"{path}: {body}")
    st, _, body = call("POST", "/dags/d/dagRuns", body=b'{"conf": {"x": "caf\xe9"}}',
                       headers={"Content-Type": "application/json"})
    eq(st, 400, f"a body that is not UTF-8: {body}")
    eq(call("GET", "/dags/caf%C3%A9")[0], 404, "UTF-8 is fine (no such DAG)")


def t_login_back_off():
    pw = "tess-pass-123"
    eq(home.run("users", "create", "tess", "--role", "viewer", "--password-stdin", input=pw + "\n").returncode, 0, "user")
    for i in range(6):
        eq(call("GET", "/pools", auth="tess:wrong")[0], 401, f"wrong password {i + 1}")
    # Past five failures in a row the user is blocked, even with the right password, before any
    # password work, and told for how long.
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1/pools")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"tess:{pw}".encode()).decode())
    try:
        urllib.request.urlopen(req, timeout=30)
        raise AssertionError("a blocked user got in")
    except urllib.error.HTTPError as e:
        eq(e.code, 429, "blocked")
        retry = int(e.headers.get("Retry-After"))
        expect(1 <= retry <= 2, f"Retry-After {retry}")
        recorded.append({"name": "429 after failed logins", "schema": "Error", "body": json.loads(e.read())})
    eq(call("GET", "/pools")[0], 200, "another user is not affected")
    time.sleep(retry + 0.2)
    eq(call("GET", "/pools", auth=f"tess:{pw}")[0], 200, "after the back-off the right password works")
    eq(call("GET", "/pools", auth="tess:wrong")[0], 401, "and a success reset the count")


def t_revocation_is_immediate():
    token = home.run("tokens", "create", "short-lived", "--role", "op").stdout.strip()
    eq(call("GET", "/pools", auth=None, bearer=token)[0], 200, "the token works")
    p = home.run("tokens", "list")
    expect("short-lived" in p.stdout and token not in p.stdout, f"tokens list shows names, never tokens: {p.stdout}")
    eq(home.run("tokens", "revoke", "short-lived").returncode, 0, "revoke")
    eq(call("GET", "/pools", auth=None, bearer=token)[0], 401, "a revoked token stops at once")
    eq(home.run("tokens", "revoke", "short-lived").returncode, 1, "revoking twice")
    pw = "first-pass-1"
    eq(home.run("users", "create", "ulla", "--role", "op", "--password-stdin", input=pw + "\n").returncode, 0, "user")
    eq(call("GET", "/pools", auth="ulla:" + pw)[0], 200, "the password works (and is now cached)")
    st, _, _ = send("PATCH", "/dags/d", {"is_paused": False}, auth="ulla:" + pw)
    eq(st, 200, "an op may pause")
    eq(home.run("users", "create", "ulla", "--role", "viewer", "--password-stdin", input=pw + "\n").returncode, 0,
       "role change")
    st, _, _ = send("PATCH", "/dags/d", {"is_paused": False}, auth="ulla:" + pw)
    eq(st, 403, "a role change is in effect at once")
    eq(home.run("users", "create", "ulla", "--role", "op", "--password-stdin", input="second-pass-2\n").returncode, 0,
       "password change")
    eq(call("GET", "/pools", auth="ulla:" + pw)[0], 401, "the old password stops at once")
    eq(call("GET", "/pools", auth="ulla:second-pass-2")[0], 200, "the new one works")
    eq(home.run("users", "delete", "ulla").returncode, 0, "delete")
    eq(call("GET", "/pools", auth="ulla:second-pass-2")[0], 401, "a deleted user stops at once")


def t_resources():
    pools = get_ok("/pools", "PoolCollection")
    eq(pools["total_entries"], 1, "pools")
    eq(pools["pools"][0]["name"], "default_pool", "default pool")
    get_ok("/pools/default_pool", "Pool")
    problem("/pools/nope", 404)
    wait_until(lambda: call("GET", "/importErrors")[2]["total_entries"] == 1, 10, "the import error")
    errs = get_ok("/importErrors", "ImportErrorCollection")
    expect(errs["import_errors"][0]["filename"].endswith("broken.lua"), errs)
    get_ok(f"/importErrors/{errs['import_errors'][0]['import_error_id']}", "ImportError")
    problem("/importErrors/999", 404)
    runs = get_ok("/dags/d/dagRuns", "DAGRunCollection")
    eq([r["dag_run_id"] for r in runs["dag_runs"]], [RUN], "runs")
    get_ok("/dags/~/dagRuns", "DAGRunCollection")
    quoted = urllib.request.quote(RUN, safe="")
    r = get_ok(f"/dags/d/dagRuns/{quoted}", "DAGRun")
    eq(r["state"], "success", "run state")
    problem("/dags/d/dagRuns/nope", 404)
    tis = get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances", "TaskInstanceCollection")
    eq(tis["total_entries"], 3, "task instances")
    eq(get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances?state=failed", "TaskInstanceCollection")["total_entries"], 0, "state filter")
    eq(get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances?state=failed&state=success", "TaskInstanceCollection")["total_entries"], 3, "states")
    eq(get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances?pool=nope", "TaskInstanceCollection")["total_entries"], 0, "pool filter")
    eq(get_ok("/dags/d/dagRuns?state=failed", "DAGRunCollection")["total_entries"], 0, "run state filter")
    eq(get_ok("/dags/d/dagRuns?execution_date_gte=2026-11-01T00:00:00Z&execution_date_lte=2026-11-01T00:00:00Z",
              "DAGRunCollection")["total_entries"], 1, "run date filter")
    eq(get_ok("/dags/d/dagRuns?execution_date_gte=2026-11-02T00:00:00Z", "DAGRunCollection")["total_entries"], 0, "after")
    ti = get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances/a", "TaskInstance")
    eq(ti["state"], "success", "ti")
    ti = get_ok(f"/dags/d/dagRuns/{quoted}/taskInstances/m/1", "TaskInstance")
    eq(ti["map_index"], 1, "mapped ti")
    problem(f"/dags/d/dagRuns/{quoted}/taskInstances/zz", 404)


def t_pagination_and_errors():
    page = get_ok(f"/dags/d/dagRuns/{urllib.request.quote(RUN, safe='')}/taskInstances?limit=1&offset=1",
                  "TaskInstanceCollection")
    eq((len(page["task_instances"]), page["total_entries"]), (1, 3), "page")
    problem("/pools?limit=-1", 400)
    problem("/no/such/thing", 404)
    st, _, body = call("POST", "/health", body=b"{}")
    eq(st, 405, f"method not allowed: {body}")
    st, _, body = call("GET", "/pools", body=b"x" * (2 << 20))
    eq(st, 413, "body cap")


def send(method, path, payload, auth=ADMIN):
    return call(method, path, auth=auth, body=json.dumps(payload).encode())


def t_dags():
    out = get_ok("/dags", "DAGCollection")
    eq([d["dag_id"] for d in out["dags"]], ["d"], "dags")
    eq(out["dags"][0]["is_paused"], False, "not paused")
    get_ok("/dags?dag_id_pattern=d&paused=false", "DAGCollection")
    eq(get_ok("/dags?tags=nope", "DAGCollection")["total_entries"], 0, "tag filter")
    eq(get_ok("/dags?tags=t1", "DAGCollection")["total_entries"], 1, "tag filter hit")
    get_ok("/dags/d", "DAG")
    problem("/dags/nope", 404)
    det = get_ok("/dags/d/details", "DAGDetail")
    eq(det["params"], {"p": {"__class": "airflow.models.param.Param", "value": 1, "description": None,
                             "schema": {}}}, "params as Airflow 2.10 sends them")
    tasks = get_ok("/dags/d/tasks", "TaskCollection")
    eq(sorted(t["task_id"] for t in tasks["tasks"]), ["a", "m"], "tasks")
    eq(get_ok("/dags/d/tasks/m", "Task")["is_mapped"], True, "mapped task")
    problem("/dags/d/tasks/zz", 404)
    token = get_ok("/dags/d", "DAG")["file_token"]
    st, _, body = call("GET", f"/dagSources/{token}")
    eq(st, 200, "dag source")
    expect('dag { id = "d"' in body["content"], body)
    problem("/dagSources/nope", 404)


def t_pause():
    viewer = "vera:s3cret-pass"
    st, _, body = send("PATCH", "/dags/d", {"is_paused": True}, auth=viewer)
    eq(st, 403, f"viewer may not pause: {body}")
    recorded.append({"name": "PATCH as viewer", "schema": "Error", "body": body})
    st, _, body = send("PATCH", "/dags/d?update_mask=is_paused", {"is_paused": True})
    eq(st, 200, f"pause: {body}")
    recorded.append({"name": "PATCH /dags/d", "schema": "DAG", "body": body})
    eq(body["is_paused"], True, "paused")
    eq(home.json("dags", "list", "--json")["dags"][0]["is_paused"], True, "the CLI sees it")
    st, _, body = send("PATCH", "/dags/d", {"is_paused": "yes"})
    eq(st, 400, "bad body")
    st, _, body = send("PATCH", "/dags/d", {"is_paused": False})
    eq((st, body["is_paused"]), (200, False), "unpause")


def t_trigger():
    st, _, body = send("POST", "/dags/d/dagRuns", {"dag_run_id": "api_1", "conf": {"p": 2}})
    eq(st, 200, f"trigger: {body}")
    recorded.append({"name": "POST dagRuns", "schema": "DAGRun", "body": body})
    eq((body["state"], body["conf"], body["run_type"]), ("queued", {"p": 2}, "manual"), "queued run")
    st, _, body = send("POST", "/dags/d/dagRuns", {"dag_run_id": "api_1"})
    eq(st, 409, f"duplicate: {body}")
    recorded.append({"name": "POST dagRuns (409)", "schema": "Error", "body": body})
    st, _, body = send("POST", "/dags/d/dagRuns", {"conf": [1]})
    eq(st, 400, "conf must be an object")
    st, _, body = send("POST", "/dags/nope/dagRuns", {})
    eq(st, 404, "unknown DAG")
    st, _, body = send("POST", "/dags/d/dagRuns", {}, auth="vera:s3cret-pass")
    eq(st, 403, "viewer may not trigger")
    wait_until(lambda: call("GET", "/dags/d/dagRuns/api_1")[2]["state"] == "success", 20, "the API-triggered run")
    log = home.log("d", "api_1", "a")
    expect("hello from a" in log, f"the API-triggered run ran its task: {log}")


def t_run_id_traversal():
    p = home.run("users", "create", "otto", "--role", "op", "--password-stdin", input="op-pass-123\n")
    eq(p.returncode, 0, p.stderr)
    target = os.path.normpath(os.path.join(home.home, "logs", "d", "../../../x"))
    for bad in ["../../../x", "..", ".", "a/b", "x" * 251, "r" * 100000, "a b", "caf\u00e9"]:
        st, _, body = send("POST", "/dags/d/dagRuns", {"dag_run_id": bad}, auth="otto:op-pass-123")
        eq(st, 400, f"run_id {bad[:20]!r}: {body}")
        expect("run_id" in body["detail"], body)
        recorded.append({"name": "POST dagRuns (400 run_id)", "schema": "Error", "body": body})
    st, _, body = send("POST", "/dags/d/dagRuns", {"dag_run_id": "ok~1:2+3.4-5_6"}, auth="otto:op-pass-123")
    eq(st, 200, f"Airflow's characters are accepted: {body}")
    runs = [r["dag_run_id"] for r in call("GET", "/dags/d/dagRuns")[2]["dag_runs"]]
    expect(not any(".." in r or "/" in r for r in runs), runs)
    expect(not os.path.exists(target), f"nothing written outside $SLUICE_HOME ({target})")
    wait_until(lambda: call("GET", "/dags/d/dagRuns/ok~1:2+3.4-5_6")[2]["state"] == "success", 20, "the run")


def t_pools_crud():
    st, _, body = send("POST", "/pools", {"name": "gpu", "slots": 2, "description": "cards"})
    eq(st, 200, f"create: {body}")
    recorded.append({"name": "POST /pools", "schema": "Pool", "body": body})
    eq((body["name"], body["slots"], body["open_slots"]), ("gpu", 2, 2), "created")
    st, _, body = send("POST", "/pools", {"name": "gpu", "slots": 1})
    eq(st, 409, "duplicate pool")
    st, _, body = send("POST", "/pools", {"name": "bad name", "slots": 1})
    eq(st, 400, "bad name")
    st, _, body = send("PATCH", "/pools/gpu?update_mask=slots", {"slots": 5, "description": "ignored"})
    eq((st, body["slots"], body["description"]), (200, 5, "cards"), f"patch with mask: {body}")
    recorded.append({"name": "PATCH /pools/gpu", "schema": "Pool", "body": body})
    eq({p["name"]: p["slots"] for p in home.json("pools", "list", "--json")["pools"]}["gpu"], 5, "the CLI sees it")
    st, _, body = send("PATCH", "/pools/nope", {"slots": 1})
    eq(st, 404, "patch unknown")
    st, _, body = send("POST", "/pools", {"name": "x", "slots": 1}, auth="vera:s3cret-pass")
    eq(st, 403, "viewer may not create pools")
    st, _, body = call("DELETE", "/pools/default_pool")
    eq(st, 400, "default pool stays")
    st, _, body = call("DELETE", "/pools/gpu")
    eq(st, 204, "delete")
    st, _, body = call("DELETE", "/pools/gpu")
    eq(st, 404, "delete twice")


def t_logs_tries_xcom():
    q = urllib.request.quote(RUN, safe="")
    base = f"/dags/d/dagRuns/{q}/taskInstances/a"
    st, _, body = call("GET", f"{base}/logs/1")
    eq(st, 200, f"log: {body}")
    expect("hello from a" in body["content"], body)
    token = body["continuation_token"]
    st, _, more = call("GET", f"{base}/logs/1?token={token}")
    eq((st, more["content"], more["continuation_token"]), (200, "", token), "nothing new after the token")
    st, _, whole = call("GET", f"{base}/logs/1?full_content=true")
    eq(whole["content"], body["content"], "full content")
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1{base}/logs/1")
    req.add_header("Authorization", "Basic " + base64.b64encode(ADMIN.encode()).decode())
    req.add_header("Accept", "text/plain")
    with urllib.request.urlopen(req, timeout=30) as resp:
        eq(resp.headers.get("Content-Type"), "text/plain; charset=utf-8", "plain text log")
        expect("hello from a" in resp.read().decode(), "plain log content")
    problem(f"{base}/logs/5", 404)
    problem(f"{base}/logs/x", 400)
    st, _, body = call("GET", f"/dags/d/dagRuns/{q}/taskInstances/m/logs/1?map_index=1")
    expect(st == 200 and "y" in body["content"], f"mapped log: {body}")
    tries = get_ok(f"{base}/tries", "TaskInstanceCollection")
    eq([(t["try_number"], t["state"]) for t in tries["task_instances"]], [(1, "success")], "tries")
    xs = get_ok(f"{base}/xcomEntries", "XComCollection")
    eq(sorted(x["key"] for x in xs["xcom_entries"]), ["rows"], "outputs as xcom")
    x = get_ok(f"{base}/xcomEntries/rows", "XCom")
    eq(x["value"], "3", "xcom value")
    problem(f"{base}/xcomEntries/nope", 404)
    # A big log with everything JSON must escape, streamed whole from the file (bounded memory).
    path = os.path.join(home.home, "logs", "d", RUN, "a", "-1", "1.log")
    chunk = 'quote " backslash \\ tab \t nl \n bell \x07 utf-8 \u00e9\u20ac\n'
    with open(path, "a", encoding="utf-8") as f:
        for _ in range(3 * 1024 * 1024 // len(chunk.encode())):
            f.write(chunk)
    with open(path, "rb") as f:
        data = f.read()
    st, _, whole = call("GET", f"{base}/logs/1?full_content=true")
    eq(st, 200, "a 3 MB log in full")
    eq(whole["content"].encode(), data, "the streamed JSON content is the file, byte for byte")
    eq(whole["continuation_token"], str(len(data)), "its token is the file's size")
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1{base}/logs/1?full_content=true")
    req.add_header("Authorization", "Basic " + base64.b64encode(ADMIN.encode()).decode())
    req.add_header("Accept", "text/plain")
    with urllib.request.urlopen(req, timeout=30) as resp:
        eq(resp.read(), data, "and as plain text")


def t_run_ops():
    home.write_dag("f.lua", 'local d = dag { id = "f" }\nlocal a = d:task "a" { cmd = "true" }\n'
                            'local b = d:task "b" { cmd = "exit 3" }\nd:flow(a >> b)\nreturn d\n')
    wait_until(lambda: call("GET", "/dags/f")[0] == 200, 10, "the daemon to see f")
    run = home.test_run("f", "--logical-date", "2026-11-02", expect_state="failed")
    rid = run["run_id"]
    q = urllib.request.quote(rid, safe="")
    st, _, body = send("POST", "/dags/f/clearTaskInstances", {"dag_run_id": rid})
    eq(st, 200, f"clear dry run: {body}")
    recorded.append({"name": "clearTaskInstances", "schema": "TaskInstanceReferenceCollection", "body": body})
    eq([t["task_id"] for t in body["task_instances"]], ["b"], "only_failed by default, dry run by default")
    eq(call("GET", f"/dags/f/dagRuns/{q}")[2]["state"], "failed", "dry run changed nothing")
    st, _, body = send("POST", "/dags/f/updateTaskInstancesState",
                       {"dag_run_id": rid, "task_id": "b", "new_state": "success", "dry_run": False})
    eq(st, 200, f"mark: {body}")
    recorded.append({"name": "updateTaskInstancesState", "schema": "TaskInstanceReferenceCollection", "body": body})
    eq(call("GET", f"/dags/f/dagRuns/{q}")[2]["state"], "success", "the run follows its leaves")
    st, _, body = send("POST", f"/dags/f/dagRuns/{q}/clear", {"dry_run": True})
    eq((st, body["total_entries"]), (200, 2), f"run clear dry run: {body}")
    recorded.append({"name": "dagRun clear dry", "schema": "TaskInstanceCollection", "body": body})
    st, _, body = send("PATCH", f"/dags/f/dagRuns/{q}", {"state": "failed"})
    eq((st, body["state"]), (200, "failed"), f"patch run: {body}")
    recorded.append({"name": "PATCH dagRun", "schema": "DAGRun", "body": body})
    st, _, body = send("PATCH", f"/dags/f/dagRuns/{q}", {"state": "bogus"})
    eq(st, 400, "bad state")
    st, _, body = send("POST", f"/dags/f/dagRuns/{q}/clear", {"dry_run": False})
    expect(st == 200 and body["state"] in ("queued", "running"), f"run clear: {body}")  # the scheduler is quick
    recorded.append({"name": "dagRun clear", "schema": "DAGRun", "body": body})
    wait_until(lambda: call("GET", f"/dags/f/dagRuns/{q}")[2]["state"] == "failed", 20, "the cleared run to run again")
    tis = {t["task_id"]: t for t in call("GET", f"/dags/f/dagRuns/{q}/taskInstances")[2]["task_instances"]}
    eq((tis["a"]["try_number"], tis["b"]["try_number"]), (2, 2), "both ran again")
    stats = get_ok("/dagStats?dag_ids=f,d", "DagStatsCollectionSchema")
    eq({s["state"]: s["count"] for s in stats["dags"][0]["stats"]}["failed"], 1, "stats")
    st, _, body = send("POST", "/dags/~/dagRuns/list", {"dag_ids": ["f"], "states": ["failed"]})
    eq((st, body["total_entries"]), (200, 1), f"list: {body}")
    recorded.append({"name": "dagRuns/list", "schema": "DAGRunCollection", "body": body})
    st, _, body = send("POST", "/dags/~/dagRuns/list", {"dag_ids": ["nope"]})
    eq(body["total_entries"], 0, "list filter")
    st, _, body = call("DELETE", f"/dags/f/dagRuns/{q}", auth="vera:s3cret-pass")
    eq(st, 403, "viewer may not delete")
    st, _, body = call("DELETE", f"/dags/f/dagRuns/{q}")
    eq(st, 204, f"delete: {body}")
    problem(f"/dags/f/dagRuns/{q}", 404)
    expect(not os.path.exists(os.path.join(home.home, "logs", "f", rid)), "logs removed")


def t_order_and_patch_ti():
    runs = get_ok("/dags/~/dagRuns?order_by=dag_run_id", "DAGRunCollection")["dag_runs"]
    ids = [r["dag_run_id"] for r in runs]
    eq(ids, sorted(ids), "order_by ascending")
    runs = get_ok("/dags/~/dagRuns?order_by=-dag_run_id", "DAGRunCollection")["dag_runs"]
    eq([r["dag_run_id"] for r in runs], sorted(ids, reverse=True), "order_by descending")
    problem("/dags/~/dagRuns?order_by=nonsense", 400)
    q = urllib.request.quote(RUN, safe="")
    st, _, body = send("PATCH", f"/dags/d/dagRuns/{q}/taskInstances/m/1", {"new_state": "failed"})
    eq(st, 200, f"patch ti: {body}")
    recorded.append({"name": "PATCH ti", "schema": "TaskInstanceReference", "body": body})
    ti = call("GET", f"/dags/d/dagRuns/{q}/taskInstances/m/1")[2]
    eq(ti["state"], "failed", "the instance was marked")
    eq(call("GET", f"/dags/d/dagRuns/{q}")[2]["state"], "failed", "the run follows its leaves")
    st, _, body = send("PATCH", f"/dags/d/dagRuns/{q}/taskInstances/m/1", {"new_state": "success", "dry_run": True})
    eq(call("GET", f"/dags/d/dagRuns/{q}/taskInstances/m/1")[2]["state"], "failed", "dry run")
    send("PATCH", f"/dags/d/dagRuns/{q}/taskInstances/m/1", {"new_state": "success"})


def t_backfills_api():
    home.write_dag("bf.lua", 'local d = dag { id = "bf", schedule = "@daily", start_date = "2030-01-01" }\n'
                             'd:task "a" { cmd = "true" }\nreturn d\n')
    wait_until(lambda: call("GET", "/dags/bf")[0] == 200, 10, "the daemon to see bf")
    st, _, body = send("POST", "/backfills/dry_run", {"dag_id": "bf", "from_date": "2026-11-01", "to_date": "2026-11-03"})
    eq((st, [b["action"] for b in body["backfills"]]), (200, ["create"] * 3), f"dry run: {body}")
    st, _, body = send("POST", "/backfills", {"dag_id": "bf", "from_date": "2026-11-01", "to_date": "2026-11-03",
                                              "max_active_runs": 2, "dag_run_conf": {"k": 1}})
    eq(st, 200, f"create: {body}")
    bid = body["id"]
    st, _, body2 = send("POST", "/backfills", {"dag_id": "bf", "from_date": "2026-11-01", "to_date": "2026-11-02"})
    eq(st, 409, "one at a time")
    st, _, body2 = send("POST", "/backfills", {"dag_id": "bf", "from_date": "nope", "to_date": "2026-11-02"})
    eq(st, 400, "bad date")
    wait_until(lambda: call("GET", f"/backfills/{bid}")[2]["completed_at"], 20, "the backfill")
    out = call("GET", "/backfills?dag_id=bf")[2]
    eq(out["total_entries"], 1, "list")
    runs = call("GET", "/dags/bf/dagRuns")[2]["dag_runs"]
    eq(sorted((r["run_type"], r["state"], r["conf"]["k"]) for r in runs), [("backfill", "success", 1)] * 3, "runs")
    st, _, body = call("PUT", f"/backfills/{bid}/cancel")
    eq(st, 409, "cancel of a completed backfill")
    problem("/backfills/999", 404)


def metrics_status(port, auth=None):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code


def t_metrics():
    eq(metrics_status(PORT), 401, "/metrics needs credentials unless metrics.public")
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/metrics")
    req.add_header("Authorization", "Basic " + base64.b64encode(ADMIN.encode()).decode())
    with urllib.request.urlopen(req, timeout=30) as resp:
        text = resp.read().decode()
        expect(resp.headers.get("Content-Type").startswith("text/plain"), "metrics content type")
    for needle in ('sluice_task_instances{state="success"}', 'sluice_dag_runs{state="success"}',
                   "sluice_import_errors 1", "sluice_scheduler_loop_seconds", "sluice_db_commit_seconds",
                   'sluice_executor_slots_in_use{executor="local"}', 'sluice_task_duration_seconds_bucket{le="+Inf"}',
                   "sluice_task_duration_seconds_count"):
        expect(needle in text, f"{needle} missing from:\n{text}")
    for line in text.splitlines():
        expect(line.startswith("#") or re.match(r'^[a-z_]+(\{[^}]*\})? -?[0-9.e+-]+$', line), f"bad line: {line}")
    # Tries are counted as they end (no table scan per scrape): the runs so far show up.
    ok = int(re.search(r'^sluice_tries_total\{state="success"\} (\d+)$', text, re.M).group(1))
    count = int(re.search(r'^sluice_task_duration_seconds_count (\d+)$', text, re.M).group(1))
    expect(ok >= 1 and count >= ok, f"tries counted: {ok} success, {count} in the histogram")


def sse(path, last_id=None, until=None, limit=200, timeout=20):
    import http.client
    import time as _t
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    headers = {"Authorization": "Basic " + base64.b64encode(ADMIN.encode()).decode()}
    if last_id:
        headers["Last-Event-ID"] = str(last_id)
    conn.request("GET", "/api/v1" + path, headers=headers)
    resp = conn.getresponse()
    eq(resp.status, 200, "events status")
    eq(resp.getheader("Content-Type"), "text/event-stream", "events content type")
    events, cur = [], {}
    deadline = _t.monotonic() + timeout
    while _t.monotonic() < deadline and len(events) < limit:
        line = resp.fp.readline().decode()
        if not line:
            break
        line = line.rstrip("\n")
        if line == "":
            if "data" in cur:
                cur["data"] = json.loads(cur["data"])
                events.append(cur)
                if until and until(cur):
                    break
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(": ")
            cur[k] = v
    conn.close()
    return events


def t_events_and_tailing():
    import threading
    home.write_dag("tail.lua", 'local d = dag { id = "tail" }\n'
                               'd:task "t" { cmd = "for i in 1 2 3 4 5 6; do echo line$i; sleep 0.5; done" }\nreturn d\n')
    wait_until(lambda: call("GET", "/dags/tail")[0] == 200, 10, "the daemon to see tail")
    got = {}

    def listen():
        got["events"] = sse("/events?dag_id=tail",
                            until=lambda e: e["event"] == "dag_run" and e["data"]["state"] in ("success", "failed"))
    th = threading.Thread(target=listen)
    th.start()
    import time as _t
    _t.sleep(0.5)
    st, _, body = send("POST", "/dags/tail/dagRuns", {"dag_run_id": "tailing"})
    eq(st, 200, f"trigger: {body}")
    token, content, chunks = None, "", 0
    for _ in range(200):  # bounded: the task takes about 3 s
        path = "/dags/tail/dagRuns/tailing/taskInstances/t/logs/1" + (f"?token={token}" if token else "")
        st, _, body = call("GET", path)
        if st == 404:  # the first try has not started yet
            _t.sleep(0.1)
            continue
        eq(st, 200, "log tail")
        if body["content"]:
            chunks += 1
            content += body["content"]
        token = body["continuation_token"]
        if "line6" in content:
            break
        _t.sleep(0.15)
    expect(chunks >= 2, f"the log came in pieces while the task ran ({chunks})")
    expect(all(f"line{i}" in content for i in range(1, 7)), content)
    th.join(timeout=30)
    events = got.get("events", [])
    kinds = [(e["event"], e["data"].get("task_id"), e["data"]["state"]) for e in events]
    expect(("task_instance", "t", "running") in kinds and ("task_instance", "t", "success") in kinds, kinds)
    expect(kinds[-1] == ("dag_run", None, "success"), kinds)
    ids = [int(e["id"]) for e in events]
    eq(ids, sorted(ids), "ids increase")
    # resume: everything after the first event is replayed
    again = sse("/events?dag_id=tail", last_id=ids[0], limit=len(ids) - 1, timeout=10)
    eq([int(e["id"]) for e in again], ids[1:], "Last-Event-ID resumes the stream")


def served_routes():
    """Every (method, path) under /api/v1 in the route tables of web/*.c (metrics.c's table is
    served from the root, outside the API document)."""
    out = []
    for name in sorted(os.listdir(os.path.join(ROOT, "web"))):
        if not name.endswith(".c") or name == "metrics.c":
            continue
        with open(os.path.join(ROOT, "web", name)) as f:
            src = f.read()
        macros = dict(re.findall(r'#define (\w+) "([^"]*)"', src))
        for method, macro, path in re.findall(r'\{"(GET|POST|PUT|PATCH|DELETE)", (?:(\w+)(?: |(?=,)))?(?:"([^"]*)")?,', src):
            out.append([method, macros.get(macro, "") + path])
    return out


def t_openapi():
    req = urllib.request.Request(f"http://127.0.0.1:{PORT}/api/v1/openapi.yaml")
    with urllib.request.urlopen(req, timeout=30) as resp:
        eq(resp.status, 200, "openapi status")
        eq(resp.headers.get("Content-Type"), "application/yaml", "openapi content type")
        text = resp.read().decode()
    doc = os.path.join(home.dir, "openapi.yaml")
    with open(doc, "w") as f:
        f.write(text)
    routes = os.path.join(home.dir, "routes.json")
    with open(routes, "w") as f:
        json.dump(served_routes(), f)
    expect(len(served_routes()) >= 40, f"only {len(served_routes())} routes found in web/*.c")
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "api", "openapi.mjs"), doc, routes],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    print("     " + p.stdout.strip().replace("\n", "\n     "))
    eq(p.returncode, 0, "the OpenAPI document is valid and covers every route")


def t_clear_running_run():
    flag = os.path.join(home.dir, "cr-fixed")
    home.write_dag("cr.lua", 'local d = dag { id = "cr" }\n'
                             'd:task "slow" { cmd = "sleep 3" }\n'
                             f'local f = d:task "flaky" {{ cmd = "test -e {flag}" }}\n'
                             'local a = d:task "after" { cmd = "true" }\nd:flow(f >> a)\nreturn d\n')
    wait_until(lambda: call("GET", "/dags/cr")[0] == 200, 10, "the daemon to see cr")
    st, _, body = send("POST", "/dags/cr/dagRuns", {"dag_run_id": "cr1"})
    eq(st, 200, f"trigger: {body}")

    def states():
        return {t["task_id"]: t["state"] for t in call("GET", "/dags/cr/dagRuns/cr1/taskInstances")[2]["task_instances"]}
    wait_until(lambda: states().get("after") == "upstream_failed", 10, "flaky to fail")
    eq(states()["slow"], "running", "slow still runs")
    st, _, body = send("POST", "/dags/cr/clearTaskInstances", {"dag_run_id": "cr1"})
    eq((st, sorted(t["task_id"] for t in body["task_instances"])), (200, ["after", "flaky"]), f"dry run: {body}")
    eq(states()["flaky"], "failed", "the dry run changed nothing")
    with open(flag, "w"):
        pass
    st, _, body = send("POST", "/dags/cr/clearTaskInstances", {"dag_run_id": "cr1", "dry_run": False})
    eq((st, sorted(t["task_id"] for t in body["task_instances"])), (200, ["after", "flaky"]), f"clear: {body}")
    recorded.append({"name": "clear in a running run", "schema": "TaskInstanceReferenceCollection", "body": body})
    wait_until(lambda: call("GET", "/dags/cr/dagRuns/cr1")[2]["state"] in ("success", "failed"), 20, "the run to end")
    eq(call("GET", "/dags/cr/dagRuns/cr1")[2]["state"], "success", "the run succeeds after the clear")
    tis = {t["task_id"]: t for t in call("GET", "/dags/cr/dagRuns/cr1/taskInstances")[2]["task_instances"]}
    eq((tis["flaky"]["try_number"], tis["after"]["try_number"], tis["slow"]["try_number"]), (2, 1, 1), "tries")
    eq(tis["flaky"]["max_tries"], 1, "retries available again")


def t_mark_a_running_run_failed():
    home.write_dag("stop.lua", 'local d = dag { id = "stop" }\nd:task "slow" { cmd = "sleep 62.5" }\nreturn d\n')
    wait_until(lambda: call("GET", "/dags/stop")[0] == 200, 10, "the daemon to see stop")
    eq(send("POST", "/dags/stop/dagRuns", {"dag_run_id": "s1"})[0], 200, "trigger")
    wait_until(lambda: call("GET", "/dags/stop/dagRuns/s1")[2]["state"] == "running", 10, "s1 to run")
    st, _, body = send("PATCH", "/dags/stop/dagRuns/s1", {"state": "failed"})
    eq(st, 200, f"PATCH failed on a running run: {body}")
    recorded.append({"name": "PATCH a running run failed", "schema": "DAGRun", "body": body})
    wait_until(lambda: call("GET", "/dags/stop/dagRuns/s1")[2]["state"] == "failed", 15, "the run to fail")
    ti = call("GET", "/dags/stop/dagRuns/s1/taskInstances/slow")[2]
    eq((ti["state"], ti["try_number"]), ("failed", 1), "its try was stopped")
    st, _, body = send("PATCH", "/dags/stop/dagRuns/s1", {"state": "failed"})
    eq(st, 200, "an ended run takes the state asked for, as before")


def t_mark_a_running_try_failed():
    home.write_dag("killme.lua", 'local d = dag { id = "killme" }\nd:task "slow" { cmd = "sleep 64.5", retries = 3 }\n'
                                 'return d\n')
    wait_until(lambda: call("GET", "/dags/killme")[0] == 200, 10, "the daemon to see killme")
    eq(send("POST", "/dags/killme/dagRuns", {"dag_run_id": "k1"})[0], 200, "trigger")
    ti = "/dags/killme/dagRuns/k1/taskInstances/slow"
    wait_until(lambda: call("GET", ti)[2].get("state") == "running", 10, "the try to run")
    st, _, body = send("PATCH", ti, {"new_state": "failed"})
    eq(st, 200, f"PATCH new_state=failed of a running try: {body}")
    wait_until(lambda: call("GET", ti)[2].get("state") == "failed", 15, "the try to fail")
    eq(call("GET", ti)[2]["try_number"], 1, "without a retry")


def t_validate():
    expect(os.path.exists(SPEC), f"Airflow's API spec is not at {SPEC} (shared/ must sit beside the "
                                 "repository, or set SLUICE_AIRFLOW_SPEC)")
    path = os.path.join(home.dir, "responses.json")
    with open(path, "w") as f:
        json.dump(recorded, f)
    p = subprocess.run(["node", os.path.join(ROOT, "tests", "api", "validate.mjs"), SPEC, path],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    print("     " + (p.stdout + p.stderr).strip().replace("\n", "\n     "))
    eq(p.returncode, 0, "responses valid against the Airflow spec")
    expect(len(recorded) >= 20, f"only {len(recorded)} responses recorded")


def t_host_and_origin():
    body = json.dumps({"is_paused": False}).encode()
    # DNS rebinding: the attacker's name for 127.0.0.1; CSRF: another site's page posting here.
    for headers, why in (({"Host": f"evil.example:{PORT}"}, "rebound host"),
                         ({"Host": f"127.0.0.1:{PORT + 1}"}, "another port"),
                         ({"Origin": "http://evil.example"}, "foreign origin"),
                         ({"Origin": "null"}, "opaque origin"),
                         ({"Origin": f"http://localhost:{PORT}"}, "origin of another host name")):
        st, ctype, out = call("PATCH", "/dags/d", body=body, headers=headers)
        eq(st, 403, f"{why}: {out}")
        eq(ctype, "application/problem+json", why)
        recorded.append({"name": f"PATCH with {why}", "schema": "Error", "body": out})
    for headers in ({}, {"Origin": f"http://127.0.0.1:{PORT}"}, {"Host": f"localhost:{PORT}",
                                                                 "Origin": f"http://localhost:{PORT}"}):
        st, _, out = call("PATCH", "/dags/d", body=body, headers=headers)
        eq(st, 200, f"same origin {headers}: {out}")
    # Reads with credentials are not a browser's business to forge: they go on.
    st, _, out = call("GET", "/dags/d", headers={"Host": f"evil.example:{PORT}"})
    eq(st, 200, f"GET under another name: {out}")


def t_no_auth_checks_every_request():
    h = Home()
    h.write_dag("d.lua", 'local d = dag { id = "d" }\nd:task "a" { cmd = "true" }\nreturn d\n')
    dm2 = Daemon(h, "--no-auth").start()
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", dm2.output()).group(1))
        st, _, out = call("GET", "/dags", auth=None, port=port, headers={"Host": f"evil.example:{port}"})
        eq(st, 403, f"without auth, a rebound GET: {out}")
        st, _, out = call("POST", "/dags/d/dagRuns", auth=None, port=port, body=b'{"conf": {}}',
                          headers={"Origin": "http://evil.example", "Content-Type": "text/plain"})
        eq(st, 403, f"without auth, a cross-site text/plain POST: {out}")
        st, _, out = call("GET", "/dags", auth=None, port=port)
        eq(st, 200, f"without auth, a local client: {out}")
    finally:
        dm2.stop()
        h.cleanup()


def t_metrics_public():
    h = Home()
    os.environ["SLUICE__METRICS__PUBLIC"] = "true"
    try:
        dm3 = Daemon(h).start()
    finally:
        del os.environ["SLUICE__METRICS__PUBLIC"]
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)", dm3.output()).group(1))
        eq(metrics_status(port), 200, "metrics.public = true: /metrics for a scraper without credentials")
        eq(call("GET", "/pools", auth=None, port=port)[0], 401, "the rest still needs credentials")
    finally:
        dm3.stop()
        h.cleanup()


def t_no_auth_only_on_loopback():
    p = home.run("serve", "--bind", "0.0.0.0", "--port", "0", "--no-auth", timeout=20)
    eq(p.returncode, 1, "refused")
    expect("loopback" in p.stderr, p.stderr)


try:
    check("health and version are public", t_public)
    check("auth: none, wrong, Basic, Bearer token, viewer user", t_auth)
    check("NUL and malformed %-escapes in a path are 400, not a cut-off id", t_nul_and_bad_escapes)
    check("failed logins: a back-off per user, 429 with Retry-After, reset by a success", t_login_back_off)
    check("revoked tokens, changed roles and passwords, deleted users: in effect at once", t_revocation_is_immediate)
    check("pools, import errors, dag runs, task instances", t_resources)
    check("pagination, 400, 404, 405, 413", t_pagination_and_errors)
    check("dags: list and filters, get, details, tasks, source", t_dags)
    check("PATCH /dags/{id}: pause through the scheduler; viewers get 403", t_pause)
    check("POST /dags/{id}/dagRuns: trigger, 409, 400, 404, 403; the run succeeds", t_trigger)
    check("run_id: traversal, '.', '..', 100,000 bytes and other characters get 400; nothing written outside",
          t_run_id_traversal)
    check("pools: create, 409, 400, PATCH with update_mask, 403, DELETE", t_pools_crud)
    check("logs (JSON with continuation token, text/plain), tries, xcomEntries", t_logs_tries_xcom)
    check("clearTaskInstances, updateTaskInstancesState, run clear/PATCH/DELETE, dagStats, list", t_run_ops)
    check("order_by, PATCH of a task instance", t_order_and_patch_ti)
    check("clearTaskInstances inside a running run (the engine clears in memory)", t_clear_running_run)
    check("backfills: dry run, create, 409, 400, completion, cancel", t_backfills_api)
    check("Host and Origin: rebound names, other ports and foreign origins get 403 on changes", t_host_and_origin)
    check("/metrics in Prometheus text format, behind credentials", t_metrics)
    check("SSE events (filtered, resumable) and log tailing while a task runs", t_events_and_tailing)
    check("/openapi.yaml: valid (swagger-parser) and covering every route of the server", t_openapi)
    check("PATCH state=failed of a running run stops its tries (Airflow's mark failed)", t_mark_a_running_run_failed)
    check("PATCH new_state=failed of a running try stops it without a retry", t_mark_a_running_try_failed)
    check("every response validates against Airflow's REST API schemas (ajv)", t_validate)
finally:
    dm.stop()
check("--no-auth is refused off loopback", t_no_auth_only_on_loopback)
check("--no-auth: every request is checked for Host and Origin", t_no_auth_checks_every_request)
check("metrics.public = true opens /metrics and nothing else", t_metrics_public)
home.cleanup()
finish()
