"""The k8s executor against tests/k8s/server.mjs, a faithful stand-in for the Kubernetes API server
(no real cluster can run here): HTTPS with a throwaway CA (openssl), a bearer token, every Job body
validated against the Kubernetes OpenAPI schema, each Job's command run as a local process. The
daemon reaches it through a YAML kubeconfig (certificate-authority-data, token)."""
import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Home, ROOT, api_call, check, eq, expect, finish, tis, wait_run, wait_until  # noqa: E402

SERVER = os.path.join(ROOT, "tests", "k8s", "server.mjs")
TOKEN = "sluice-test-token"


class ApiServer:
    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="sluice-k8s-")
        self.cert, self.key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                        "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=30)
        # A client certificate signed by the server's (self-signed, CA:TRUE) certificate.
        self.ccert, self.ckey = os.path.join(self.dir, "client.pem"), os.path.join(self.dir, "client-key.pem")
        csr = os.path.join(self.dir, "client.csr")
        subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-keyout", self.ckey, "-out", csr, "-subj", "/CN=robot"], check=True, capture_output=True,
                       timeout=30)
        subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key, "-CAcreateserial",
                        "-out", self.ccert, "-days", "1"], check=True, capture_output=True, timeout=30)
        portf = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(["node", SERVER, "--port-file", portf, "--token", TOKEN, "--tls-cert", self.cert,
                                      "--tls-key", self.key, "--client-ca", self.cert, "--workdir", self.dir],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)
        wait_until(lambda: os.path.exists(portf) and open(portf).read() or self.proc.poll() is not None, 20,
                   "the test API server to listen", interval=0.05)
        expect(self.proc.poll() is None, "server exited: " + open(self.log.name).read())
        self.port = int(open(portf).read())
        self.url = f"https://127.0.0.1:{self.port}"
        self.ctx = ssl.create_default_context(cafile=self.cert)

    def kubeconfig(self, path, token=TOKEN):
        ca = base64.b64encode(open(self.cert, "rb").read()).decode()
        with open(path, "w") as f:
            f.write(f"""# written by k8s_executor.py
apiVersion: v1
kind: Config
current-context: test
clusters:
- name: stand-in
  cluster:
    server: {self.url}
    certificate-authority-data: {ca}
contexts:
- context:
    cluster: stand-in
    namespace: sluice-test
    user: robot
  name: test
users:
- name: robot
  user:
    token: "{token}"
""")
        return path

    def control(self, what, body=None):
        req = urllib.request.Request(f"{self.url}/_control/{what}", method="POST",
                                     data=json.dumps(body or {}).encode())
        with urllib.request.urlopen(req, timeout=10, context=self.ctx) as r:
            return json.loads(r.read())

    def stats(self):
        return self.control("stats")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def k8s_home(api, extra="", token=TOKEN):
    home = Home()
    os.makedirs(home.home, mode=0o700)
    kc = api.kubeconfig(os.path.join(home.dir, "kubeconfig.yaml"), token)
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[k8s]\nkubeconfig = {kc}\npending_timeout = 5s\n{extra}")
    home.kubeconfig = kc
    return home


def jobs_of(api, dag_id):
    return [j for j in api.stats()["jobs"] if j["metadata"]["annotations"].get("sluice.dev/dag-id") == dag_id]


def no_rejections(api):
    rej = api.stats()["rejected"]
    expect(not rej, "the server refused bodies: " + json.dumps(rej)[:2000])


def t_success_outputs(api):
    home = k8s_home(api)
    home.write_dag("s.lua", '''
local d = dag { id = "s", default_args = { executor = "k8s",
  k8s = { image = "busybox:1.36", cpu = "250m", memory = "64Mi", env = { FROM_K8S = "yes" } } } }
local a = d:task "a" { cmd = "echo hello-$SLUICE_TASK_ID-$SLUICE_TRY_NUMBER $FROM_K8S; echo answer=42 >> $SLUICE_OUTPUT; echo err >&2",
                       execution_timeout = "90s" }
local b = d:task "b" { cmd = { "sh", "-c", "echo \\"$GREETING\\" got {{ outputs.a.answer }}" },
                       env = { GREETING = "hi 'quoted'" },
                       k8s = { image = "alpine:3.20", gpu = 1, node_selector = { ["kubernetes.io/os"] = "linux" },
                               tolerations = { { key = "gpu", operator = "Exists", effect = "NoSchedule" } },
                               image_pull_policy = "IfNotPresent", service_account = "runner",
                               pod_template = { spec = { volumes = { { name = "scratch", emptyDir = {} } },
                                 containers = { { name = "task", args = {},
                                                  volumeMounts = { { name = "scratch", mountPath = "/scratch" } } } } } } } }
local c = d:task "c" { cmd = "echo local -{{ outputs.a.answer }}", executor = "local" }
d:flow(a >> b >> c)
return d
''')
    api.control("throttle", {"count": 3})  # the first requests get 429: the client backs off and retries
    out = home.test_run("s", expect_state="success")
    la = home.log("s", out["run_id"], "a")
    expect("hello-a-1 yes" in la and "err" in la, la)
    expect("created Job sluice-test/s-a-1-" in la, la)
    expect("hi 'quoted' got 42" in home.log("s", out["run_id"], "b"), home.log("s", out["run_id"], "b"))
    expect("local -42" in home.log("s", out["run_id"], "c"), "outputs reached a local task")
    no_rejections(api)
    js = {j["metadata"]["annotations"]["sluice.dev/task-id"]: j for j in jobs_of(api, "s")}
    a, b = js["a"], js["b"]
    eq(a["spec"]["backoffLimit"], 0, "backoffLimit")
    eq(a["spec"]["activeDeadlineSeconds"], 90, "activeDeadlineSeconds")
    eq(a["spec"]["ttlSecondsAfterFinished"], 3600, "ttl")
    ps = a["spec"]["template"]["spec"]
    eq(ps["restartPolicy"], "Never", "restartPolicy")
    c = ps["containers"][0]
    eq(c["command"][:2], ["/bin/sh", "-c"], "a shell string through /bin/sh -c")
    eq(c["resources"], {"requests": {"cpu": "250m", "memory": "64Mi"}, "limits": {"memory": "64Mi"}}, "resources")
    env = {e["name"]: e["value"] for e in c["env"]}
    eq(env["SLUICE_OUTPUT"], "/sluice/output", "outputs on the emptyDir")
    eq(env["SLUICE_RUN_ID"], out["run_id"], "SLUICE_RUN_ID")
    eq(c["terminationMessagePath"], "/sluice/output", "the outputs come back as the termination message")
    labels = a["metadata"]["labels"]
    eq(labels["app.kubernetes.io/managed-by"], "sluice", "label")
    eq(a["metadata"]["annotations"]["sluice.dev/run-id"], out["run_id"], "annotation")
    expect(len(a["metadata"]["name"]) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", a["metadata"]["name"]),
           a["metadata"]["name"])
    bc = b["spec"]["template"]["spec"]
    eq(bc["containers"][0]["command"][:2], ["sh", "-c"], "argv as given")
    eq(bc["containers"][0]["resources"]["limits"], {"memory": "64Mi", "nvidia.com/gpu": "1"},
       "gpu, and default_args' memory under the task's own k8s fields")
    eq(bc["nodeSelector"], {"kubernetes.io/os": "linux"}, "nodeSelector")
    eq(bc["tolerations"], [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}], "tolerations")
    eq(bc["serviceAccountName"], "runner", "service account")
    eq(bc["volumes"], [{"name": "scratch", "emptyDir": {}}, {"name": "sluice-output", "emptyDir": {}}],
       "the template's volume ({} from Lua is an object here) and sluice's")
    eq([m["mountPath"] for m in bc["containers"][0]["volumeMounts"]], ["/scratch", "/sluice"], "mounts")
    expect("args" not in bc["containers"][0], "an empty list is dropped")
    statuses = [r.get("status") for r in api.stats()["requests"]]
    expect(statuses.count(429) >= 3, "the 429s were answered")
    if shutil.which("kubectl"):  # the stand-in answers kubectl too
        p = subprocess.run(["kubectl", "--kubeconfig", home.kubeconfig, "get", "jobs", "-o", "json"],
                           capture_output=True, text=True, timeout=60)
        eq(p.returncode, 0, p.stderr)
        names = [j["metadata"]["name"] for j in json.loads(p.stdout)["items"]]
        expect(a["metadata"]["name"] in names, names)
    home.cleanup()


def t_failure_retries_oom(api):
    home = k8s_home(api)
    api.control("images", {"oom": ["oom:1"], "evict": ["evict:1"]})
    home.write_dag("f.lua", '''
local d = dag { id = "f", default_args = { executor = "k8s", k8s = { image = "busybox:1.36" } } }
d:task "t" { cmd = "echo try $SLUICE_TRY_NUMBER; exit 3", retries = 2, retry_delay = 0 }
d:task "oom" { cmd = "sleep 20", k8s = { image = "oom:1" } }
d:task "ev" { cmd = "sleep 20", k8s = { image = "evict:1" } }
return d
''')
    out = home.test_run("f", expect_state="failed")
    t = tis(out)
    eq(t["t"]["try_number"], 3, "three tries")
    eq(t["t"]["exit_code"], 3, "the container's exit code")
    for n in (1, 2, 3):
        expect(f"try {n}" in home.log("f", out["run_id"], "t", try_number=n), f"log of try {n}")
    names = {j["metadata"]["name"] for j in jobs_of(api, "f") if j["metadata"]["annotations"]["sluice.dev/task-id"] == "t"}
    eq(len(names), 3, "one Job per try")
    eq(t["oom"]["exit_code"], 137, "OOMKilled exit code")
    expect("OOMKilled" in home.log("f", out["run_id"], "oom"), home.log("f", out["run_id"], "oom"))
    lev = home.log("f", out["run_id"], "ev")
    expect("was evicted: The node was low on resource: memory." in lev, lev)
    eq(t["ev"]["state"], "failed", "evicted")
    home.cleanup()


def t_timeout_deletes_job(api):
    home = k8s_home(api)
    home.write_dag("to.lua", '''
local d = dag { id = "to" }
d:task "t" { cmd = "echo started; sleep 30", executor = "k8s", k8s = { image = "busybox:1.36" },
             execution_timeout = "2s" }
return d
''')
    t0 = time.monotonic()
    out = home.test_run("to", expect_state="failed")
    took = time.monotonic() - t0
    log = home.log("to", out["run_id"], "t")
    expect("execution_timeout of 2s exceeded" in log and "deleted Job" in log, log)
    expect(took < 12, f"took {took:.1f}s")
    dels = [d for d in api.stats()["deletes"] if d["name"].startswith("to-t-1-")]
    eq([d["policy"] for d in dels], ["Foreground"], "deleted once, Foreground")
    expect(not jobs_of(api, "to"), "the Job is gone")
    home.cleanup()


def pod_phase(api, dag_id):
    for p in api.stats()["pods"]:
        if p["metadata"]["annotations"].get("sluice.dev/dag-id") == dag_id:
            return p["status"]["phase"]
    return None


def t_cancel_streaming(api):
    home = k8s_home(api)
    home.write_dag("c.lua", '''
local d = dag { id = "c" }
d:task "t" { cmd = "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo line-$i; sleep 0.5; done",
             executor = "k8s", k8s = { image = "busybox:1.36" } }
return d
''')
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "c", "--run-id", "r")
        log = os.path.join(home.home, "logs", "c", "r", "t", "-1", "1.log")
        # Streamed while the pod runs (follow=true), not at the end.
        wait_until(lambda: os.path.exists(log) and "line-3" in open(log).read(), 30, "the log to stream")
        eq(pod_phase(api, "c"), "Running", "the pod still runs")
        t0 = time.monotonic()
        eq(api_call(home, d, "PATCH", "/dags/c/dagRuns/r", {"state": "failed"})[0], 200, "cancel through REST")
        wait_until(lambda: pod_phase(api, "c") is None, 10, "the pod to be deleted", interval=0.1)
        gone = time.monotonic() - t0
        run = wait_run(home, "c", "r")
        eq(run["state"], "failed", "cancelled")
        text = open(log).read()
        expect("cancelled: deleting Job" in text and "deleted Job" in text, text)
        expect("line-20" not in text, "the command was stopped")
        expect(gone < 5, f"gone {gone:.1f}s after the cancel")
        eq([x["policy"] for x in api.stats()["deletes"] if x["name"].startswith("c-t-1-")], ["Foreground"], "policy")
    finally:
        d.stop()
        home.cleanup()


def t_pending_timeout(api):
    home = k8s_home(api)
    api.control("images", {"bad": ["registry.invalid/nope:1"], "pending": ["huge:1"]})
    home.write_dag("p.lua", '''
local d = dag { id = "p" }
d:task "pull" { cmd = "true", executor = "k8s", k8s = { image = "registry.invalid/nope:1" } }
d:task "unsched" { cmd = "true", executor = "k8s", k8s = { image = "huge:1", cpu = "64" } }
return d
''')
    t0 = time.monotonic()
    out = home.test_run("p", expect_state="failed")
    took = time.monotonic() - t0
    expect(took < 12, f"pending_timeout 5s: took {took:.1f}s")
    lp = home.log("p", out["run_id"], "pull")
    expect("pending_timeout (5s)" in lp and ("ImagePullBackOff" in lp or "ErrImagePull" in lp), lp)
    lu = home.log("p", out["run_id"], "unsched")
    expect("pending_timeout (5s)" in lu and "Unschedulable" in lu, lu)
    expect(not jobs_of(api, "p"), "the Jobs were deleted")
    home.cleanup()


def t_watch_drop_and_410(api):
    home = k8s_home(api)
    home.write_dag("w.lua", '''
local d = dag { id = "w" }
d:task "t" { cmd = "echo one; sleep 2; echo two; sleep 2; echo v=5 >> $SLUICE_OUTPUT; echo three",
             executor = "k8s", k8s = { image = "busybox:1.36" } }
return d
''')
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "w", "--run-id", "r")
        log = os.path.join(home.home, "logs", "w", "r", "t", "-1", "1.log")
        wait_until(lambda: os.path.exists(log) and "one" in open(log).read(), 30, "the try to run")
        n = api.control("drop-watches")["dropped"]
        expect(n >= 2, f"dropped {n} watches")
        time.sleep(1)
        t410 = api.control("compact", {"drop": True})["t"]  # the next watch from an old version gets 410
        wait_until(lambda: any(g["t"] >= t410 for g in api.stats()["gone410"]), 10, "a watch to get 410 Gone")
        gone = min(g["t"] for g in api.stats()["gone410"] if g["t"] >= t410)
        relist = [x["t"] for x in api.stats()["lists"] if x["t"] >= gone and x["ns"] == "sluice-test"]
        expect(relist and relist[0] - gone <= 1000, f"re-listed {relist[:1]} after the 410 at {gone}")
        run = wait_run(home, "w", "r")
        eq(run["state"], "success", "the result was collected through the new watch")
        text = open(log).read()
        expect("one" in text and "two" in text and "three" in text, text)
        expect(text.count("one\n") == 1, "no line twice: " + text)
    finally:
        d.stop()
        home.cleanup()


def t_kill9_readopt(api):
    home = k8s_home(api)
    home.write_dag("k.lua", '''
local d = dag { id = "k", default_args = { executor = "k8s", k8s = { image = "busybox:1.36" } } }
local a = d:task "a" { cmd = "for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.5; done; echo v=7 >> $SLUICE_OUTPUT" }
local b = d:task "b" { cmd = "echo got {{ outputs.a.v }}" }
d:flow(a >> b)
return d
''')
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "k", "--run-id", "r")
        log = os.path.join(home.home, "logs", "k", "r", "a", "-1", "1.log")
        wait_until(lambda: os.path.exists(log) and "line-2" in open(log).read(), 30, "the try to stream its log")
        d.kill()
        time.sleep(1)
        d2 = Daemon(home).start()
        try:
            run = wait_run(home, "k", "r")
            eq(run["state"], "success", "collected after the restart")
            ja = [j for j in api.stats()["jobs"] if j["metadata"]["annotations"].get("sluice.dev/dag-id") == "k"]
            a_jobs = [j for j in ja if j["metadata"]["annotations"]["sluice.dev/task-id"] == "a"]
            eq(len(a_jobs), 1, "one Job for the try, never two")
            creates = [r for r in api.stats()["requests"] if r["method"] == "POST" and "/jobs" in r["path"]]
            expect(creates, "jobs were created")
            text = open(log).read()
            expect("re-attached to Job" in text and "line-6" in text, text)
            for i in range(1, 7):
                eq(text.count(f"line-{i}\n"), 1, f"line-{i} once in the log:\n{text}")
            expect("got 7" in home.log("k", "r", "b"), "the output survived the restart")
        finally:
            d2.stop()
    finally:
        d.stop()
        home.cleanup()


def t_lost_create_answer(api):
    """The server creates the Job but the answer is lost: the retried POST gets 409 and adopts it."""
    home = k8s_home(api)
    home.write_dag("l.lua", 'local d = dag { id = "l" }\n'
                            'd:task "t" { cmd = "sleep 2; echo ran once", executor = "k8s", k8s = { image = "b:1" } }\nreturn d\n')
    before = api.stats()["conflicts"]
    api.control("lose-creates", {"count": 1})
    out = home.test_run("l", expect_state="success")
    log = home.log("l", out["run_id"], "t")
    expect("already exists (this try was submitted before): adopted" in log and log.count("ran once") == 1, log)
    eq(api.stats()["conflicts"], before + 1, "one 409")
    eq(len(jobs_of(api, "l")), 1, "one Job")
    home.cleanup()


def t_bad_credentials(api):
    home = k8s_home(api, token="wrong-token")
    home.write_dag("b.lua", '''
local d = dag { id = "b", default_args = { executor = "k8s", k8s = { image = "busybox:1.36" } } }
for i = 1, 3 do d:task("t" .. i) { cmd = "true" } end
return d
''')
    p = home.run("dags", "test", "b", "--json")
    out = json.loads(p.stdout)
    eq(out["state"], "failed", "refused credentials fail the tries")
    log = home.log("b", out["run_id"], "t1")
    expect("refused the credentials" in log and "401" in log, log)
    eq(p.stderr.count("refused the credentials"), 1, "logged once, not per try:\n" + p.stderr)
    home.cleanup()


def t_api_server_settings(api):
    """[k8s] api_server with token_file and ca_file instead of a kubeconfig."""
    home = Home()
    os.makedirs(home.home, mode=0o700)
    tok = os.path.join(home.dir, "token")
    with open(tok, "w") as f:
        f.write(TOKEN + "\n")
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[k8s]\napi_server = {api.url}\ntoken_file = {tok}\nca_file = {api.cert}\nnamespace = other-ns\n")
    home.write_dag("a.lua", 'local d = dag { id = "as" }\n'
                            'd:task "t" { cmd = "echo via api_server", executor = "k8s", k8s = { image = "busybox:1.36" } }\n'
                            'return d\n')
    out = home.test_run("as", expect_state="success")
    expect("via api_server" in home.log("as", out["run_id"], "t"), "log")
    eq([j["metadata"]["namespace"] for j in jobs_of(api, "as")], ["other-ns"], "[k8s] namespace")
    p = home.run("config", "show")
    expect("[k8s]" in p.stdout and "qps = 20" in p.stdout and "pending_timeout = 2m" in p.stdout, p.stdout)
    home.cleanup()


def t_client_cert_and_tls(api):
    """kubeconfig with a client certificate (no token); insecure-skip-tls-verify only when it says so."""
    def b64(path):
        return base64.b64encode(open(path, "rb").read()).decode()
    dag = 'local d = dag {{ id = "{id}" }}\nd:task "t" {{ cmd = "echo {id}", executor = "k8s", k8s = {{ image = "b:1" }} }}\nreturn d\n'
    # 1. client-certificate-data / client-key-data, CA from a file next to the kubeconfig (relative path)
    home = Home()
    os.makedirs(home.home, mode=0o700)
    shutil.copy(api.cert, os.path.join(home.dir, "ca.crt"))
    kc = os.path.join(home.dir, "kc.yaml")
    with open(kc, "w") as f:
        f.write(f"""apiVersion: v1
clusters:
  - cluster: {{"server": "{api.url}", "certificate-authority": "ca.crt"}}
    name: c
contexts:
  - name: x
    context: {{cluster: c, user: u}}
current-context: x
users:
  - name: u
    user:
      client-certificate-data: {b64(api.ccert)}
      client-key-data: {b64(api.ckey)}
""".replace("{cluster: c, user: u}", '{"cluster": "c", "user": "u"}'))
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[k8s]\nkubeconfig = {kc}\n")
    home.write_dag("cc.lua", dag.format(id="cc"))
    out = home.test_run("cc", expect_state="success")
    expect("\ncc\n" in home.log("cc", out["run_id"], "t"), home.log("cc", out["run_id"], "t"))
    users = {r.get("user") for r in api.stats()["requests"] if "/namespaces/default/" in r["path"]}
    eq(users, {"cert:robot"}, "authenticated by the client certificate")
    # 2. no CA at all: refused by TLS verification, unless the cluster says insecure-skip-tls-verify
    for insecure, want in ((False, "failed"), (True, "success")):
        with open(kc, "w") as f:
            f.write(f"apiVersion: v1\nclusters:\n- name: c\n  cluster:\n    server: {api.url}\n"
                    + ("    insecure-skip-tls-verify: true\n" if insecure else "")
                    + f"contexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n"
                    f"users:\n- name: u\n  user:\n    token: {TOKEN}\n")
        name = "insecure" if insecure else "verified"
        home.write_dag(f"{name}.lua", dag.format(id=name))
        out = home.test_run(name, expect_state=want)
        if not insecure:
            log = home.log(name, out["run_id"], "t")
            expect("cannot reach the API server" in log and ("SSL" in log or "certificate" in log), log)
    home.cleanup()


def t_pod_template_file(api):
    """pod_template as a YAML file: merged under sluice's own fields, and the result passes the schema."""
    home = k8s_home(api)
    tmpl = os.path.join(home.dir, "pod.yaml")
    with open(tmpl, "w") as f:
        f.write("""# a PodTemplate-style document
metadata:
  labels:
    team: data
  annotations:
    note: "from the template"
spec:
  securityContext:
    runAsNonRoot: false
  containers:
  - name: task
    image: 'template-image:2'
    env:
    - name: FROM_TEMPLATE
      value: "yes"
    - name: SLUICE_TASK_ID
      value: overridden-by-sluice
  - name: sidecar
    image: busybox:1.36
    command: [\"sh\", \"-c\", \"exit 0\"]
""")
    home.write_dag("pt.lua", f'''
local d = dag {{ id = "pt" }}
d:task "t" {{ cmd = "echo $FROM_TEMPLATE $SLUICE_TASK_ID", executor = "k8s", k8s = {{ pod_template = "{tmpl}" }} }}
return d
''')
    out = home.test_run("pt", expect_state="success")
    expect("yes t" in home.log("pt", out["run_id"], "t"), home.log("pt", out["run_id"], "t"))
    no_rejections(api)
    (job,) = jobs_of(api, "pt")
    t = job["spec"]["template"]
    eq(t["metadata"]["labels"]["team"], "data", "the template's label stays")
    eq(t["metadata"]["annotations"]["note"], "from the template", "annotation")
    eq(t["spec"]["securityContext"], {"runAsNonRoot": False}, "securityContext")
    names = [c["name"] for c in t["spec"]["containers"]]
    eq(names, ["task", "sidecar"], "the sidecar stays")
    eq(t["spec"]["containers"][0]["image"], "template-image:2", "the template's image")
    home.cleanup()


def t_import_errors(api):
    """Bad k8s fields are import errors with file:line and the reason."""
    home = k8s_home(api)
    cases = {
        "cpu.lua": ('k8s = { image = "a", cpu = "lots" }', "k8s cpu must be a Kubernetes quantity"),
        "unknown.lua": ('k8s = { imgae = "a" }', "k8s has an unknown field 'imgae'"),
        "noimage.lua": ('k8s = { cpu = "1" }', 'executor "k8s" needs k8s = { image'),
        "ns.lua": ('k8s = { image = "a", namespace = "Bad_NS" }', "k8s namespace must be a DNS-1123 label"),
        "tol.lua": ('k8s = { image = "a", tolerations = { { key = "k", operator = "Maybe" } } }',
                    'k8s tolerations[1].operator must be "Exists" or "Equal"'),
        "pull.lua": ('k8s = { image = "a", image_pull_policy = "Sometimes" }', "k8s image_pull_policy must be"),
        "tmpl.lua": ('k8s = { image = "a", pod_template = "relative.yaml" }', "k8s pod_template must be a table or the absolute"),
    }
    for name, (field, _) in cases.items():
        home.write_dag(name, f'local d = dag {{ id = "{name[:-4]}" }}\n'
                             f'd:task "t" {{ cmd = "true", executor = "k8s", {field} }}\nreturn d\n')
    home.write_dag("other.lua", 'local d = dag { id = "other" }\n'
                                'd:task "t" { cmd = "true", k8s = { image = "a" } }\nreturn d\n')
    p = home.run("dags", "check")
    eq(p.returncode, 1, p.stdout + p.stderr)
    text = p.stdout + p.stderr
    for name, (_, msg) in cases.items():
        expect(f"{name}:2: task 't': {msg}" in text, f"{name}: {msg!r} not in\n{text}")
    expect('other.lua:2: task \'t\': k8s is for executor = "k8s"' in text, text)
    home.cleanup()


def t_rate_limit(api):
    home = k8s_home(api, "qps = 40\nburst = 20\n")
    with open(os.path.join(home.home, "sluice.cfg"), "a") as f:
        f.write("[core]\nparallelism = 64\n")
    home.write_dag("r.lua", '''
local items = {}
for i = 1, 200 do items[i] = i end
local d = dag { id = "r", max_active_tasks = 200 }
d:map "m" { over = items, cmd = "echo {{ item }}", executor = "k8s", k8s = { image = "busybox:1.36" } }
return d
''')
    api.control("reset-stats")
    t0 = time.monotonic()
    out = home.test_run("r", expect_state="success")
    took = time.monotonic() - t0
    reqs = [r["t"] for r in api.stats()["requests"]]
    creates = [r for r in api.stats()["requests"] if r["method"] == "POST"]
    eq(len(creates), 200, "one POST per try")
    reqs.sort()
    # The server stamps arrivals: the first ones wait for their TLS handshakes and the server is
    # busy starting processes, so 500 ms of slack. Without the limit the 400-odd requests come
    # within 2-3 s (150 and more a second).
    span = (reqs[-1] - reqs[0]) / 1000
    worst = {}
    for w in (1, 3):
        worst[w] = max(sum(1 for t in reqs[i:] if t < s + 1000 * w) for i, s in enumerate(reqs))
        expect(worst[w] <= 20 + 40 * (w + 0.5), f"{worst[w]} requests in {w} s (qps 40, burst 20)")
    expect(len(reqs) <= 20 + 40 * (span + 0.5), f"{len(reqs)} requests in {span:.1f}s")
    print(f"     200 tries: {len(reqs)} requests in {span:.1f}s, at most {worst[1]} in 1 s, {worst[3]} in 3 s; "
          f"run {took:.1f}s")
    no_rejections(api)
    home.cleanup()


if not shutil.which("node") or not shutil.which("openssl"):
    print("SKIP: node and openssl are needed for the test API server")
    sys.exit(77)
API = ApiServer()
try:
    check("success, outputs, job body, 429 backoff", lambda: t_success_outputs(API))
    check("failure with retries, OOMKilled, Evicted", lambda: t_failure_retries_oom(API))
    check("timeout deletes the Job", lambda: t_timeout_deletes_job(API))
    check("cancel through REST, log streaming", lambda: t_cancel_streaming(API))
    check("pending timeout (image pull, unschedulable)", lambda: t_pending_timeout(API))
    check("watch dropped and 410 Gone", lambda: t_watch_drop_and_410(API))
    check("daemon kill -9: re-adopted, no duplicate Job", lambda: t_kill9_readopt(API))
    check("lost create answer: 409, adopted", lambda: t_lost_create_answer(API))
    check("bad credentials", lambda: t_bad_credentials(API))
    check("api_server, token_file, ca_file", lambda: t_api_server_settings(API))
    check("pod_template from a YAML file", lambda: t_pod_template_file(API))
    check("client certificate, TLS verification", lambda: t_client_cert_and_tls(API))
    check("import errors of k8s fields", lambda: t_import_errors(API))
    check("rate limit under 200 tries", lambda: t_rate_limit(API))
finally:
    API.stop()
finish()
