"""What the daemon does for its web UI, over HTTP against a real daemon: the embedded bundle
(cache headers, gzip, ETag revalidation, history routing, API errors that stay problem JSON),
login sessions (cookie flags, the CSRF guard, logout, sessions that end with a new password or a
deleted user, the same answer for a wrong user as for a wrong password), and the compact routes the
views use (the grid, the DAG list's summaries, the log's tail and windows)."""
import base64
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import SLUICE, Daemon, Home, check, eq, expect, finish, wait_until  # noqa: E402


def port_of(d):
    return int(re.search(r"127\.0\.0\.1:(\d+)", d.output()).group(1))


class Client:
    """One browser's worth of HTTP: keeps the session cookie a login sets."""

    def __init__(self, port):
        self.port = port
        self.cookie = None
        self.csrf = None

    def req(self, method, path, body=None, headers=None, raw=False):
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=20)
        h = {"Host": f"127.0.0.1:{self.port}"}
        if self.cookie:
            h["Cookie"] = self.cookie
        if body is not None:
            body = json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        c.request(method, path, body=body, headers=h)
        resp = c.getresponse()
        data = resp.read()
        hdrs = {k.lower(): v for k, v in resp.getheaders()}
        c.close()
        if raw:
            return resp.status, hdrs, data
        text = data.decode(errors="replace")
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = text
        return resp.status, hdrs, doc

    def login(self, user, password):
        st, h, doc = self.req("POST", "/api/v1/auth/login", {"username": user, "password": password})
        if st == 200:
            self.cookie = h["set-cookie"].split(";")[0]
            self.csrf = doc["csrf_token"]
        return st, h, doc


def admin_password(home):
    with open(os.path.join(home.home, "admin_password.txt")) as f:
        return f.read().strip()


def start(home):
    d = Daemon(home).start()
    return d, port_of(d)


DAG = '''local d = dag { id = "ui", description = "for the UI", schedule = "0 3 * * *", timezone = "Europe/Berlin",
  start_date = "2030-01-01", catchup = false }
local a = d:task "a" { cmd = "echo line-a" }
local b = d:task "b" { cmd = "for i in $(seq 1 3000); do echo log-line-$i; done" }
local m = d:map "m" { over = {"x", "y", "z"}, cmd = "echo {{ item }}" }
d:flow(a >> { b, m })
return d
'''


def t_bundle_is_served_with_cache_headers_and_gzip():
    home = Home()
    home.write_dag("ui.lua", DAG)
    d, port = start(home)
    try:
        c = Client(port)
        st, h, body = c.req("GET", "/", raw=True)
        eq(st, 200, "GET /")
        expect(h["content-type"].startswith("text/html"), f"index.html is HTML: {h['content-type']}")
        eq(h.get("cache-control"), "no-cache", "index.html is revalidated")
        expect("frame-ancestors 'none'" in h.get("content-security-policy", ""), "CSP sent")
        html = body.decode()
        assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', html)
        expect(assets, f"index.html names hashed assets: {html[:300]}")
        expect(not re.search(r'(src|href)="(https?:)?//', html), "index.html loads nothing from elsewhere")
        st, h, _ = c.req("GET", "/", headers={"If-None-Match": h["etag"]}, raw=True)
        eq(st, 304, "an unchanged index.html is not sent again")
        js = [a for a in assets if a.endswith(".js")][0]
        st, h, body = c.req("GET", js, headers={"Accept-Encoding": "gzip, br"}, raw=True)
        eq(st, 200, js)
        expect("immutable" in h["cache-control"] and "max-age=31536000" in h["cache-control"], h["cache-control"])
        eq(h.get("content-encoding"), "gzip", "gzip when accepted")
        plain = gzip.decompress(body)
        st, h2, body2 = c.req("GET", js, raw=True)
        expect("content-encoding" not in h2 and body2 == plain, "the same bytes, plain, when gzip is not accepted")
        for route in ("/dags/ui", "/dags/ui/runs/manual__x.y/tasks/b", "/pools", "/login"):
            st, h, body = c.req("GET", route, raw=True)
            eq((st, h["content-type"].split(";")[0]), (200, "text/html"), f"history route {route}")
        st, h, doc = c.req("GET", "/assets/gone-1234.js")
        eq(st, 404, "a missing asset is a 404")
        st, h, doc = c.req("GET", "/api/v1/nothing/here")
        eq((st, h["content-type"]), (404, "application/problem+json"), "API errors stay problem JSON")
        expect(isinstance(doc, dict) and doc.get("status") == 404, f"problem document: {doc}")
        st, _, _ = c.req("POST", "/dags/ui", body={})
        expect(st in (404, 405), f"POST to a UI route is not served the app: {st}")
    finally:
        d.stop()
        home.cleanup()


def t_login_sets_a_strict_httponly_cookie_and_csrf_guards_changes():
    home = Home()
    home.write_dag("ui.lua", DAG)
    d, port = start(home)
    try:
        pw = admin_password(home)
        c = Client(port)
        st, h, doc = c.req("GET", "/api/v1/auth/session")
        eq(st, 401, "no session before login")
        eq(h.get("www-authenticate"), 'Basic realm="sluice"', "a plain client is challenged")
        st, h, doc = c.req("GET", "/api/v1/auth/session", headers={"X-Requested-With": "XMLHttpRequest"})
        eq((st, "www-authenticate" in h), (401, False),
           "the app is not challenged (the browser would pop up its own password dialog)")
        t0 = time.monotonic()
        st, _, bad_pw = c.login("admin", "wrong")
        t_bad_pw = time.monotonic() - t0
        t0 = time.monotonic()
        st2, _, bad_user = c.login("nobody", "wrong")
        t_bad_user = time.monotonic() - t0
        eq((st, st2), (401, 401), "wrong password, unknown user")
        eq(bad_pw["detail"], bad_user["detail"], "the same message whichever part was wrong")
        eq(bad_pw["detail"], "Wrong user name or password.", "the message")
        expect(t_bad_user > t_bad_pw / 4, f"an unknown user costs as much as a wrong password "
               f"({t_bad_user * 1000:.1f} ms vs {t_bad_pw * 1000:.1f} ms)")
        st, h, doc = c.login("admin", pw)
        eq(st, 200, f"login: {doc}")
        ck = h["set-cookie"]
        for flag in ("HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"):
            expect(flag in ck, f"cookie has {flag}: {ck}")
        eq((doc["username"], doc["role"]), ("admin", "admin"), "who logged in")
        expect(re.fullmatch(r"[0-9a-f]{32}", doc["csrf_token"]), f"a CSRF token: {doc}")
        expect(not os.path.exists(os.path.join(home.home, "admin_password.txt")),
               "admin's first login removes admin_password.txt")
        st, _, doc = c.req("GET", "/api/v1/auth/session")
        eq((st, doc["username"], doc["csrf_token"]), (200, "admin", c.csrf), "session")
        st, _, doc = c.req("GET", "/api/v1/dags")
        eq(st, 200, "reads with the cookie")
        st, _, doc = c.req("PATCH", "/api/v1/dags/ui", {"is_paused": True})
        eq(st, 403, f"a change with the cookie but no CSRF token: {doc}")
        expect("X-CSRF-Token" in doc["detail"], doc["detail"])
        st, _, doc = c.req("PATCH", "/api/v1/dags/ui", {"is_paused": True}, headers={"X-CSRF-Token": "0" * 32})
        eq(st, 403, "a wrong CSRF token")
        st, _, doc = c.req("PATCH", "/api/v1/dags/ui", {"is_paused": True}, headers={"X-CSRF-Token": c.csrf})
        eq((st, doc.get("is_paused")), (200, True), f"with the token: {doc}")
        st, _, doc = c.req("POST", "/api/v1/dags/ui/dagRuns", {}, headers={"X-CSRF-Token": c.csrf,
                                                                           "Origin": "http://evil.example"})
        eq(st, 403, "a foreign Origin is refused even with the token")
        # The audit log names the session's user.
        basic = "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode()
        st, _, doc = Client(port).req("GET", "/api/v1/eventLogs?event=dag.edit", headers={"Authorization": basic})
        expect(any(e["owner"] == "admin" for e in doc["event_logs"]), f"audit owner: {doc}")
        st, _, doc = Client(port).req("GET", "/api/v1/eventLogs?event=login", headers={"Authorization": basic})
        expect(doc["total_entries"] >= 3, f"logins are audited: {doc['total_entries']}")
        expect(all("wrong" not in json.dumps(e) and pw not in json.dumps(e) for e in doc["event_logs"]),
               "no password in the audit log")
        # Logout ends the session for good: the old cookie no longer works.
        old = c.cookie
        st, h, _ = c.req("POST", "/api/v1/auth/logout", headers={"X-CSRF-Token": c.csrf})
        eq(st, 204, "logout")
        expect("Max-Age=0" in h["set-cookie"], "the cookie is cleared")
        c.cookie = old
        st, _, doc = c.req("GET", "/api/v1/dags")
        eq(st, 401, f"the old cookie after logout: {doc}")
        expect("log in again" in doc["detail"], doc["detail"])
    finally:
        d.stop()
        home.cleanup()


def t_sessions_end_with_the_user_and_viewers_cannot_change():
    home = Home()
    home.write_dag("ui.lua", DAG)
    d, port = start(home)
    try:
        def cli(*args, input=None):
            return subprocess.run([SLUICE, "--home", home.home, *args], capture_output=True, text=True, timeout=60,
                                  input=input)
        r = cli("users", "create", "vic", "--role", "viewer", "--password-stdin", input="pw-vic-123\n")
        eq(r.returncode, 0, r.stderr)
        v = Client(port)
        st, _, doc = v.login("vic", "pw-vic-123")
        eq((st, doc["role"]), (200, "viewer"), f"viewer login: {doc}")
        st, _, doc = v.req("PATCH", "/api/v1/dags/ui", {"is_paused": True}, headers={"X-CSRF-Token": v.csrf})
        eq(st, 403, "a viewer may not change, even with the CSRF token")
        r = cli("users", "passwd", "vic", "--password-stdin", input="pw-vic-456\n")
        eq(r.returncode, 0, r.stderr)
        st, _, _ = v.req("GET", "/api/v1/dags")
        eq(st, 401, "a new password ends the session")
        st, _, _ = v.login("vic", "pw-vic-456")
        eq(st, 200, "log in with the new password")
        r = cli("users", "delete", "vic")
        eq(r.returncode, 0, r.stderr)
        st, _, _ = v.req("GET", "/api/v1/dags")
        eq(st, 401, "deleting the user ends the session")
        # Sessions survive a daemon restart (they live in the database).
        a = Client(port)
        eq(a.login("admin", admin_password(home))[0], 200, "admin login")
        d.stop()
        d = Daemon(home).start()
        a.port = port_of(d)
        st, _, _ = a.req("GET", "/api/v1/auth/session")
        eq(st, 200, "the session after a restart")
    finally:
        d.stop()
        home.cleanup()


def basic_client(home, port):
    c = Client(port)
    pw = admin_password(home)
    c.auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{pw}".encode()).decode()}
    return c


def t_grid_summaries_and_log_windows():
    home = Home()
    home.write_dag("ui.lua", DAG.replace('"echo line-a"', '"echo line-a {{ conn.store.password }} {{ ds }}"'))
    home.run("connections", "add", "store", "--uri", "postgres://u:s3cret-pw@db.example/x")
    d, port = start(home)
    try:
        c = basic_client(home, port)
        runs = []
        for i in range(3):
            st, _, doc = c.req("POST", "/api/v1/dags/ui/dagRuns",
                               {"dag_run_id": f"r{i}", "logical_date": f"2024-01-0{i + 1}T00:00:00+00:00"},
                               headers=c.auth)
            eq(st, 200, f"trigger: {doc}")
            runs.append(doc["dag_run_id"])
        st, _, doc = c.req("PATCH", "/api/v1/dags/ui", {"is_paused": False}, headers=c.auth)

        def done():
            st, _, doc = c.req("GET", "/api/v1/dags/ui/dagRuns", headers=c.auth)
            done.last = doc
            return all(r["state"] == "success" for r in doc["dag_runs"]) and len(doc["dag_runs"]) == 3
        try:
            wait_until(done, 60, "three runs to succeed")
        except AssertionError:
            raise AssertionError(f"runs: {done.last}\n{d.output()[-3000:]}")
        st, _, g = c.req("GET", "/api/v1/dags/ui/grid?limit=2", headers=c.auth)
        eq(st, 200, f"grid: {g}")
        eq([t["task_id"] for t in g["tasks"]][0], "a", "tasks in topological order")
        eq(sorted(t["task_id"] for t in g["tasks"]), ["a", "b", "m"], "tasks")
        m = [i for i, t in enumerate(g["tasks"]) if t["task_id"] == "m"][0]
        expect(g["tasks"][m]["mapped"], "m is mapped")
        eq([r["dag_run_id"] for r in g["runs"]], ["r2", "r1"], "newest first, one page")
        eq((g["total_runs"], g["older"]), (3, "r1"), "total and the cursor of the next page")
        eq(g["runs"][0]["states"], ["success"] * 3, "cells")
        eq(g["runs"][0]["mapped"], {"m": {"success": 3}}, "mapped counts")
        st, _, g2 = c.req("GET", "/api/v1/dags/ui/grid?limit=2&before=r1", headers=c.auth)
        eq(([r["dag_run_id"] for r in g2["runs"]], g2["older"]), (["r0"], None), "the last page")
        eq(c.req("GET", "/api/v1/dags/ui/grid?limit=0", headers=c.auth)[0], 400, "bad limit")
        eq(c.req("GET", "/api/v1/dags/ui/grid?before=nope", headers=c.auth)[0], 404, "unknown cursor")
        eq(c.req("GET", "/api/v1/dags/nope/grid", headers=c.auth)[0], 404, "unknown DAG")

        st, _, s = c.req("GET", "/api/v1/dagSummaries?recent=2", headers=c.auth)
        eq(st, 200, f"summaries: {s}")
        u = s["dags"]["ui"]
        eq([r["dag_run_id"] for r in u["recent"]], ["r2", "r1"], "recent runs")
        eq(u["timetable_description"], "At 03:00, Europe/Berlin", "schedule in words with its zone")
        expect((u["next_dagrun"] or "").startswith("2030-01-01T02:00:00"), f"next run (03:00 Berlin): {u}")
        expect((u["next_dagrun_create_after"] or "").startswith("2030-01-02T02:00:00"), f"created after: {u}")
        st, _, dag = c.req("GET", "/api/v1/dags/ui", headers=c.auth)
        eq(dag["next_dagrun"], u["next_dagrun"], "Airflow's next_dagrun in /dags too")
        eq((u["running"], u["queued"]), (0, 0), "counts")

        st, _, tries = c.req("GET", "/api/v1/dags/ui/dagRuns/r2/taskInstances/b/tries", headers=c.auth)
        eq([(t["try_number"], t["exit_code"], t["executor"]) for t in tries["task_instances"]], [(1, 0, "local")],
           f"each try's exit code and executor (the task panel shows them): {tries}")
        st, _, ti = c.req("GET", "/api/v1/dags/ui/dagRuns/r2/taskInstances/b", headers=c.auth)
        eq(ti["exit_code"], 0, "the task instance's exit code")
        st, _, ti = c.req("GET", "/api/v1/dags/ui/dagRuns/r2/taskInstances/a", headers=c.auth)
        eq(ti["rendered_fields"], {"cmd": "echo line-a *** 2024-01-03"},
           "the rendered command, the connection's password masked")
        st, _, tries = c.req("GET", "/api/v1/dags/ui/dagRuns/r2/taskInstances/a/tries/1", headers=c.auth)
        eq(tries["rendered_fields"], ti["rendered_fields"], "a try's rendered command")

        base = "/api/v1/dags/ui/dagRuns/r2/taskInstances/b/logs/1"
        st, _, whole = c.req("GET", base + "?full_content=true", headers=c.auth)
        size = len(whole["content"].encode())
        st, _, t = c.req("GET", base + "?tail_bytes=100", headers=c.auth)
        eq(st, 200, f"tail: {t}")
        eq(t["size"], size, "size of the log")
        expect(t["content"].startswith("log-line-") or t["content"].startswith("["), f"starts at a line: {t!r}")
        expect(t["content"].endswith("log-line-3000\n") or "log-line-3000" in t["content"], f"tail: {t['content']!r}")
        eq(t["start"] + len(t["content"].encode()), size, "start + content = size")
        eq(int(t["continuation_token"]), size, "token follows the tail")
        st, _, w = c.req("GET", base + f"?token={t['start'] - 50}&max_bytes=50", headers=c.auth)
        eq(w["content"].encode(), whole["content"].encode()[t["start"] - 50:t["start"]], "a window before the tail")
        eq(c.req("GET", base + "?tail_bytes=0", headers=c.auth)[0], 400, "bad tail_bytes")
        st, _, plain = c.req("GET", base, headers=c.auth)
        expect("start" not in plain, "Airflow's shape unless sluice's fields are asked for")
    finally:
        d.stop()
        home.cleanup()


if __name__ == "__main__":
    check("bundle is served with cache headers and gzip", t_bundle_is_served_with_cache_headers_and_gzip)
    check("login sets a strict HttpOnly cookie and CSRF guards changes",
          t_login_sets_a_strict_httponly_cookie_and_csrf_guards_changes)
    check("sessions end with the user and viewers cannot change", t_sessions_end_with_the_user_and_viewers_cannot_change)
    check("grid, summaries and log windows", t_grid_summaries_and_log_windows)
    finish()
