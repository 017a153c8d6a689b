"""The ssh executor against a real sshd on 127.0.0.1 that this test starts: a throwaway host key and
user key (ssh-keygen), its own sshd_config on a free port, an ssh_config with the aliases
`good` and `good2` (both that sshd), `bad` (a closed port) and `ghost` (a name that does not
resolve), and a known_hosts file checked strictly. The remote folder is under the test's temp
folder, so the test can look at the remote side."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Home, alive, api_call, check, eq, expect, expect_config_errors, expect_import_errors, finish, free_port, task_states, tis, wait_run, wait_until  # noqa: E402
from ssh_netns import NetnsHosts  # noqa: E402

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


class Sshd:
    """A real sshd -D on 127.0.0.1:PORT with generated keys, for the user running the test."""

    def __init__(self, base):
        self.dir = os.path.join(base, "sshd")
        os.makedirs(self.dir, mode=0o700)
        self.port = free_port()
        self.user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True,
                                                             text=True).stdout.strip()
        for name in ("host_key", "id_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", os.path.join(self.dir, name)],
                           check=True, timeout=30)
        shutil.copy(os.path.join(self.dir, "id_ed25519.pub"), os.path.join(self.dir, "authorized_keys"))
        with open(os.path.join(self.dir, "host_key.pub")) as f:
            hostkey = " ".join(f.read().split()[:2])
        with open(os.path.join(self.dir, "known_hosts"), "w") as f:
            f.write(f"[127.0.0.1]:{self.port} {hostkey}\n")
        self.config = os.path.join(self.dir, "sshd_config")
        with open(self.config, "w") as f:
            f.write(f"""ListenAddress 127.0.0.1
HostKey {self.dir}/host_key
AuthorizedKeysFile {self.dir}/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
PidFile none
MaxSessions 200
MaxStartups 100:30:200
LogLevel ERROR
""")
        self.client_config = os.path.join(self.dir, "ssh_config")
        bad = free_port()
        with open(self.client_config, "w") as f:
            for alias, port in (("good", self.port), ("good2", self.port), ("bad", bad)):
                f.write(f"""Host {alias}
  HostName 127.0.0.1
  Port {port}
  User {self.user}
  IdentityFile {self.dir}/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile {self.dir}/known_hosts
  StrictHostKeyChecking yes
""")
            f.write("Host ghost\n  HostName no-such-host.invalid\n")
        self.proc = None
        self.sshd_path = SSHD

    def start(self):
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege separation folder
        self.log = os.path.join(self.dir, "sshd.log")
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", self.config, "-p", str(self.port)],
                                     stdout=open(self.log, "w"), stderr=subprocess.STDOUT)

        def up():
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                expect(self.proc.poll() is None, "sshd exited: " + open(self.log).read())
                return False
        wait_until(up, 15, "sshd to listen", interval=0.05)
        return self

    def ssh(self, cmd, timeout=20):
        return subprocess.run(["ssh", "-F", self.client_config, "-o", "BatchMode=yes", "good", cmd],
                              capture_output=True, text=True, timeout=timeout)

    def stop(self):
        """Stops the listener and the connections it forked (the daemons' masters then end)."""
        if not self.proc or self.proc.poll() is not None:
            return
        children = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        children.append(int(pid))
            except (OSError, ValueError, IndexError):
                pass
        self.proc.terminate()
        self.proc.wait(timeout=10)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass


def ssh_home(sshd, extra=""):
    home = Home()
    os.makedirs(home.home, mode=0o700)
    remote = os.path.join(home.dir, "remote")
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[ssh]\nconfig_file = {sshd.client_config}\nremote_dir = {remote}\nconnect_timeout = 5s\n{extra}")
    home.remote = remote
    return home


def t_success_outputs_log(sshd):
    home = ssh_home(sshd)
    home.write_dag("s.lua", '''
local d = dag { id = "s", default_args = { executor = "ssh", host = "good" } }
local a = d:task "a" { cmd = "echo hello-$SLUICE_TASK_ID-$SLUICE_TRY_NUMBER from $(hostname); "
                          .. "echo answer=42 >> $SLUICE_OUTPUT; echo err >&2" }
local b = d:task "b" { cmd = { "sh", "-c", "echo \\"$GREETING\\" got {{ outputs.a.answer }}; pwd" },
                       env = { GREETING = "hi there 'quoted'" }, cwd = "/tmp" }
local c = d:task "c" { cmd = "echo local {{ outputs.a.answer }}", executor = "local" }
d:flow(a >> b >> c)
return d
''')
    out = home.test_run("s", expect_state="success")
    log = home.log("s", out["run_id"], "a")
    expect("hello-a-1 from" in log and "err" in log, log)
    expect("running on host good" in log, log)
    logb = home.log("s", out["run_id"], "b")
    expect("hi there 'quoted' got 42" in logb and "\n/tmp\n" in logb, logb)
    expect("local 42" in home.log("s", out["run_id"], "c"), "the output reached a local task")
    # The remote folders of finished tries are removed (batched, after the result is safe).
    wait_until(lambda: not os.path.isdir(home.remote) or not os.listdir(home.remote), 10, "remote clean-up")
    home.cleanup()


def t_failure_retries(sshd):
    home = ssh_home(sshd)
    home.write_dag("f.lua", '''
local d = dag { id = "f" }
d:task "t" { cmd = "echo try $SLUICE_TRY_NUMBER; exit 3", executor = "ssh", hosts = { "good" },
             retries = 2, retry_delay = 0 }
d:task "skip" { cmd = "exit 99", executor = "ssh", host = "good" }
return d
''')
    out = home.test_run("f", expect_state="failed")
    t = tis(out)
    eq(t["t"]["state"], "failed", "state")
    eq(t["t"]["try_number"], 3, "three tries")
    eq(t["t"].get("exit_code"), 3, "the remote exit code")
    eq(t["skip"]["state"], "skipped", "exit 99 skips, as locally")
    for n in (1, 2, 3):
        expect(f"try {n}" in home.log("f", out["run_id"], "t", try_number=n), f"log of try {n}")
    home.cleanup()


def pid_dag(sshd, dag_id, cmd, fields=""):
    """A home with one ssh task "t" whose cmd ({pidf} filled in) writes a remote pid to pidf."""
    home = ssh_home(sshd)
    pidf = os.path.join(home.dir, "remote.pid")
    cmd = cmd.replace("{pidf}", pidf)
    home.write_dag(f"{dag_id}.lua", f'local d = dag {{ id = "{dag_id}" }}\n'
                                    f'd:task "t" {{ cmd = "{cmd}", executor = "ssh", host = "good", {fields} }}\n'
                                    'return d\n')
    return home, pidf


def t_timeout_kills_remote(sshd):
    home, pidf = pid_dag(sshd, "to", "sh -c 'echo $$ > {pidf}; exec sleep 60' & wait",
                         'execution_timeout = "2s", retries = 0')
    t0 = time.monotonic()
    out = home.test_run("to", expect_state="failed")
    took = time.monotonic() - t0
    pid = int(open(pidf).read())
    wait_until(lambda: not alive(pid), 2, "the remote sleep to be gone", interval=0.05)
    log = home.log("to", out["run_id"], "t")
    expect("execution_timeout of 2s exceeded" in log, log)
    expect(took < 15, f"took {took:.1f}s")
    home.cleanup()


def t_cancel_kills_remote(sshd):
    home, pidf = pid_dag(sshd, "c", "echo $$ > {pidf}; sleep 60")
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "c", "--run-id", "r")
        wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(), 30, "the remote try to start")
        pid = int(open(pidf).read())
        expect(alive(pid), "running")
        t0 = time.monotonic()
        p = home.run("runs", "cancel", "c", "r")
        eq(p.returncode, 0, p.stderr)
        wait_until(lambda: not alive(pid), 5, "the remote process to be gone", interval=0.05)
        killed_in = time.monotonic() - t0
        run = wait_run(home, "c", "r")
        eq(run["state"], "failed", "a cancelled run fails")
        expect(killed_in < 3, f"gone {killed_in:.2f}s after the cancel")
        log = open(os.path.join(home.home, "logs", "c", "r", "t", "-1", "1.log")).read()
        expect("supervisor received SIGTERM" in log, log)
    finally:
        d.stop()
        home.cleanup()


def t_daemon_kill9_readopts(sshd):
    home = ssh_home(sshd)
    counter = os.path.join(home.dir, "counter")
    home.write_dag("k.lua", f'''
local d = dag {{ id = "k" }}
local a = d:task "a" {{ cmd = "echo start >> {counter}; for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.5; done; "
                          .. "echo v=7 >> $SLUICE_OUTPUT; echo end >> {counter}", executor = "ssh", host = "good",
                       retries = 2, retry_delay = 0 }}
local b = d:task "b" {{ cmd = "echo got {{{{ outputs.a.v }}}}", executor = "ssh", host = "good" }}
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
        d = Daemon(home).start()
        run = wait_run(home, "k", "r")
        eq(run["state"], "success", "the run finishes after the restart")
        eq(open(counter).read().split(), ["start", "end"], "the try ran exactly once")
        text = open(log).read()
        for i in range(1, 7):
            eq(text.count(f"line-{i}\n"), 1, f"line-{i} once in the log: {text}")
        st = task_states(home, "k", "r")
        eq(st["a"]["try_number"], 1, "not retried")
        expect("got 7" in open(os.path.join(home.home, "logs", "k", "r", "b", "-1", "1.log")).read(),
               "the output came back after the re-attach")
    finally:
        d.stop()
        home.cleanup()


def t_bad_host_does_not_stall(sshd):
    home = ssh_home(sshd)
    home.write_dag("b.lua", '''
local d = dag { id = "b", max_active_tasks = 16 }
d:task "refused" { cmd = "true", executor = "ssh", host = "bad", retries = 0 }
d:task "unknown" { cmd = "true", executor = "ssh", host = "ghost", retries = 0 }
for i = 1, 4 do d:task("ok" .. i) { cmd = "sleep 0.3; echo fine", executor = "ssh", host = "good" } end
return d
''')
    t0 = time.monotonic()
    out = home.test_run("b", expect_state="failed")
    took = time.monotonic() - t0
    t = tis(out)
    for i in range(1, 5):
        eq(t[f"ok{i}"]["state"], "success", f"ok{i}")
    eq(t["refused"]["state"], "failed", "refused")
    log = home.log("b", out["run_id"], "refused")
    expect("ssh: host bad:" in log and "Connection refused" in log, log)
    log = home.log("b", out["run_id"], "unknown")
    expect("ssh: host ghost:" in log and "resolve" in log, log)
    expect(took < 20, f"took {took:.1f}s")
    home.cleanup()


def t_two_hosts_spread(sshd):
    home = ssh_home(sshd, "[ssh.host.good]\nslots = 1\n\n[ssh.host.good2]\nslots = 2\n")
    marks = os.path.join(home.dir, "marks")
    home.write_dag("sp.lua", f'''
local d = dag {{ id = "sp", max_active_tasks = 16, default_args = {{ executor = "ssh", hosts = {{ "good", "good2" }} }} }}
for i = 1, 6 do
  d:task("t" .. i) {{ cmd = "echo +$(date +%s.%N) >> {marks}; sleep 1; echo -$(date +%s.%N) >> {marks}" }}
end
return d
''')
    t0 = time.monotonic()
    out = home.test_run("sp", expect_state="success")
    took = time.monotonic() - t0
    hosts = {}
    for i in range(1, 7):
        log = home.log("sp", out["run_id"], f"t{i}")
        h = "good2" if "running on host good2" in log else "good"
        hosts[h] = hosts.get(h, 0) + 1
    eq(set(hosts), {"good", "good2"}, f"both hosts used: {hosts}")
    expect(hosts["good2"] >= hosts["good"], f"the host with more slots takes more: {hosts}")
    # At most 3 at once (1 + 2 slots), so 6 one-second tasks take two rounds.
    events = sorted((float(x[1:]), 1 if x[0] == "+" else -1) for x in open(marks).read().split())
    cur = peak = 0
    for _, e in events:
        cur += e
        peak = max(peak, cur)
    eq(peak, 3, "peak concurrency is the sum of the hosts' slots")
    expect(took < 10, f"took {took:.1f}s")
    home.cleanup()


def t_config_and_check(sshd):
    home = ssh_home(sshd, "[ssh.host.good]\nslots = 3\n")
    p = home.run("config", "show")
    eq(p.returncode, 0, p.stderr)
    for want in ("[ssh]", "config_file = " + sshd.client_config, "slots = 8", "remote_dir = ", "connect_timeout = 5s",
                 "[ssh.host.good]", "slots = 3"):
        expect(want in p.stdout, f"{want!r} in config show:\n{p.stdout}")
    expect_config_errors(home, [
        ("[ssh]\nslots = 0\n", "sluice.cfg:2: ssh.slots = 0: must be between 1 and 4096"),
        ("[ssh.host.x]\nslots = many\n", "sluice.cfg:2: ssh.host.x.slots = many: must be an integer"),
        ("[ssh.host.x]\nslot = 2\n", "sluice.cfg:2: unknown option 'ssh.host.x.slot'"),
        ("[ssh]\nconfig_file = /nonexistent/ssh_config\n",
         "sluice.cfg:2: ssh.config_file = /nonexistent/ssh_config: cannot read it"),
    ])
    cases = [
        ('d:task "t" { cmd = "true", executor = "ssh" }', 'needs host = "alias"'),
        ('d:task "t" { cmd = "true", host = "good" }', 'host is for executor = "ssh"'),
        ('d:task "t" { cmd = "true", executor = "ssh", host = "a", hosts = { "b" } }', "host or hosts, not both"),
        ('d:task "t" { cmd = "true", executor = "ssh", host = "-oProxyCommand=x" }', "must be an ssh host alias"),
        ('d:task "t" { cmd = "true", executor = "ssh", hosts = { "a", "a" } }', "names host 'a' twice"),
        ('d:task "t" { cmd = "true", executor = "ssh", hots = { "a" } }', "unknown field 'hots'"),
        ('d:task "t" { cmd = "true", executor = "ssh", host = "a", run_as = "nobody" }', "run_as cannot be used"),
    ]
    expect_import_errors(home, cases)
    home.write_dag("x.lua", 'local d = dag { id = "x", default_args = { executor = "ssh", hosts = { "a", "b" } } }\n'
                            'd:task "t" { cmd = "true" }\nd:task "l" { cmd = "true", executor = "local" }\n'
                            'd:task "o" { cmd = "true", host = "c" }\nreturn d\n')
    p = home.run("dags", "check")
    eq(p.returncode, 0, p.stdout + p.stderr)
    home.cleanup()


def t_overhead(sshd):
    """Per-task cost over one multiplexed connection vs a new connection per call (printed). On a
    host whose login shell is slow to start (a heavy ~/.bashrc) the session dominates both."""
    home = ssh_home(sshd, "[ssh.host.good]\nslots = 16\n")
    n = 32
    home.write_dag("o.lua", f'''
local d = dag {{ id = "o", max_active_tasks = 16 }}
for i = 1, {n} do d:task("t" .. i) {{ cmd = "true", executor = "ssh", host = "good" }} end
return d
''')
    home.test_run("o", "--logical-date", "2026-01-01", expect_state="success")  # warms the master up
    t0 = time.monotonic()
    home.test_run("o", "--logical-date", "2026-01-02", expect_state="success")
    per_task = (time.monotonic() - t0) / n
    sock = [f for f in os.listdir(os.path.join(home.home, "executors", "ssh")) if f.endswith(".sock")]
    expect(len(sock) == 1, f"one control socket: {sock}")
    ctl = os.path.join(home.home, "executors", "ssh", sock[0])

    def timed(args, k=5):
        t = time.monotonic()
        for _ in range(k):
            subprocess.run(["ssh", "-F", sshd.client_config, "-o", "BatchMode=yes"] + args + ["good", "true"],
                           capture_output=True, timeout=30)
        return (time.monotonic() - t) / k
    mux, plain = timed(["-S", ctl, "-o", "ControlMaster=no"]), timed(["-o", "ControlPath=none"])
    print(f"     {n} `true` tasks, 16 slots, one multiplexed connection: {per_task * 1000:.0f} ms per task "
          f"(wall / tasks); one session over the master: {mux * 1000:.0f} ms, a new connection: {plain * 1000:.0f} ms")
    home.cleanup()


def t_api_cancel_and_live_log(sshd):
    """The REST API marks a running run failed: the remote group is gone at once; meanwhile the
    API serves the try's log as the remote command writes it."""
    home, pidf = pid_dag(sshd, "ac", "echo $$ > {pidf}; i=0; while [ $i -lt 100 ]; do i=$((i+1)); "
                                     "echo line-$i; sleep 0.2; done")
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "ac", "--run-id", "r")
        wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(), 30, "the remote try to start")
        pid = int(open(pidf).read())
        path = "/dags/ac/dagRuns/r/taskInstances/t/logs/1"

        def streamed():
            code, text = api_call(home, d, "GET", path, accept="text/plain")
            return code == 200 and "line-3\n" in text and text
        text = wait_until(streamed, 10, "the log to stream through the API while the try runs")
        expect(alive(pid), "still running while its log is read")
        expect("line-99" not in text, "the log is read before the end")
        t0 = time.monotonic()
        code, body = api_call(home, d, "PATCH", "/dags/ac/dagRuns/r", {"state": "failed"})
        eq(code, 200, body)
        wait_until(lambda: not alive(pid), 2, "the remote process to be gone", interval=0.05)
        gone_in = time.monotonic() - t0
        run = wait_run(home, "ac", "r")
        eq(run["state"], "failed", "the run marked failed")
        print(f"     gone {gone_in:.2f}s after the API call")
    finally:
        d.stop()
        home.cleanup()


def t_hundred_timeouts(sshd):
    """100 tries killed by their timeout, 20 by a cancel: no remote process is left 2 s later."""
    home = ssh_home(sshd, "[ssh.host.good]\nslots = 40\n")
    pids = os.path.join(home.dir, "pids")
    home.write_dag("hto.lua", f'''
local d = dag {{ id = "hto", max_active_tasks = 200 }}
for i = 1, 100 do
  d:task("t" .. i) {{ cmd = "sh -c 'echo $$ >> {pids}; exec sleep 60' & echo $$ >> {pids}; wait",
                      executor = "ssh", host = "good", execution_timeout = "1s", retries = 0 }}
end
return d
''')
    t0 = time.monotonic()
    out = home.test_run("hto", expect_state="failed")
    took = time.monotonic() - t0
    for t in out["task_instances"]:
        eq(t["state"], "failed", t["task_id"])
    ended = time.monotonic()
    listed = [int(x) for x in open(pids).read().split()]
    eq(len(listed), 200, "every try wrote its two pids")
    left = [p for p in listed if alive(p)]
    expect(not left, f"{len(left)} remote processes left after the run: {left[:10]}")
    expect(time.monotonic() - ended < 2, "checked within 2 s")
    home.cleanup()
    # Cancels: 20 tries at once, the run cancelled.
    home = ssh_home(sshd, "[ssh.host.good]\nslots = 40\n")
    pids = os.path.join(home.dir, "pids")
    home.write_dag("hc.lua", f'''
local d = dag {{ id = "hc", max_active_tasks = 50 }}
for i = 1, 20 do
  d:task("t" .. i) {{ cmd = "sh -c 'echo $$ >> {pids}; exec sleep 60' & wait", executor = "ssh", host = "good" }}
end
return d
''')
    dm = Daemon(home).start()
    try:
        home.run("dags", "trigger", "hc", "--run-id", "r")
        wait_until(lambda: os.path.exists(pids) and len(open(pids).read().split()) == 20, 60, "20 remote tries")
        listed = [int(x) for x in open(pids).read().split()]
        c0 = time.monotonic()
        eq(home.run("runs", "cancel", "hc", "r").returncode, 0, "cancel")
        wait_until(lambda: not [p for p in listed if alive(p)], 2, "all 20 remote groups to be gone", interval=0.05)
        print(f"     100 timeouts in {took:.1f}s, none left; 20 cancels: all gone {time.monotonic() - c0:.2f}s after")
        wait_run(home, "hc", "r")
    finally:
        dm.stop()
        home.cleanup()


def ns_home(sshd, extra=""):
    return ssh_home(sshd, "[ssh.host.na]\nslots = 2\n\n[ssh.host.nb]\nslots = 2\n" + extra)


def ti_host(home, dag_id, run_id, task, try_number=1):
    log = home.log(dag_id, run_id, task, try_number=try_number)
    for h in ("na", "nb", "good"):
        if f"running on host {h} " in log:
            return h
    return None


def t_ns_spread_and_host_down(ns, sshd):
    """Two hosts in their own network namespaces: tries spread over both; then nb's link goes
    down mid-run: its tries fail (lost, retryable) within the connection deadlines and run again
    on na, and na's tries are not held up."""
    home = ns_home(sshd)
    marks = os.path.join(home.dir, "marks")
    home.write_dag("nd.lua", f'''
local d = dag {{ id = "nd", max_active_tasks = 16,
                 default_args = {{ executor = "ssh", hosts = {{ "na", "nb" }}, retries = 1, retry_delay = 0 }} }}
for i = 1, 4 do
  d:task("t" .. i) {{ cmd = "echo $SLUICE_TASK_ID-$SLUICE_TRY_NUMBER >> {marks}; sleep 6; echo fine" }}
end
return d
''')
    dm = Daemon(home).start()
    try:
        home.run("dags", "trigger", "nd", "--run-id", "r")
        wait_until(lambda: os.path.exists(marks) and len(open(marks).read().split()) == 4, 30, "4 tries running")
        hosts = {f"t{i}": ti_host(home, "nd", "r", f"t{i}") for i in range(1, 5)}
        eq(sorted(hosts.values()), ["na", "na", "nb", "nb"], f"spread by free slots: {hosts}")
        t0 = time.monotonic()
        ns.link("nb", False)
        run = wait_run(home, "nd", "r", timeout=90)
        took = time.monotonic() - t0
        eq(run["state"], "success", "the run succeeds on the host that stayed")
        st = task_states(home, "nd", "r")
        for t, h in hosts.items():
            if h == "na":
                eq(st[t]["try_number"], 1, f"{t} on na ran once, not held up")
            else:
                eq(st[t]["try_number"], 2, f"{t} on nb failed and was retried")
                log1 = home.log("nd", "r", t, try_number=1)
                expect("ssh: host nb:" in log1, log1)
                eq(ti_host(home, "nd", "r", t, try_number=2), "na", f"{t}'s retry went to the host that is up")
        expect(took < 40, f"the run ended {took:.1f}s after the link went down")
        print(f"     link down: the run ended {took:.1f}s later")
    finally:
        dm.stop()
        ns.link("nb", True)
        home.cleanup()


def t_ns_kill9_two_hosts(ns, sshd):
    """A daemon kill -9 while tries run on both namespaced hosts: each runs once, the results and
    outputs are collected after the restart."""
    home = ns_home(sshd)
    home.write_dag("nk.lua", f'''
local d = dag {{ id = "nk", max_active_tasks = 16, default_args = {{ executor = "ssh", hosts = {{ "na", "nb" }} }} }}
local ts = {{}}
for i = 1, 4 do
  ts[i] = d:task("t" .. i) {{ cmd = "echo start >> {home.dir}/c-$SLUICE_TASK_ID; echo line-a; sleep 3; echo line-b; "
                          .. "echo v=$SLUICE_TASK_ID >> $SLUICE_OUTPUT; echo end >> {home.dir}/c-$SLUICE_TASK_ID" }}
end
local s = d:task "sum" {{ cmd = "echo got {{{{ outputs.t1.v }}}} {{{{ outputs.t4.v }}}}", executor = "local" }}
d:flow(ts >> s)
return d
''')
    dm = Daemon(home).start()
    try:
        home.run("dags", "trigger", "nk", "--run-id", "r")
        wait_until(lambda: all(os.path.exists(f"{home.dir}/c-t{i}") for i in range(1, 5)), 30, "4 tries started")
        hosts = sorted(ti_host(home, "nk", "r", f"t{i}") for i in range(1, 5))
        eq(hosts, ["na", "na", "nb", "nb"], "on both hosts")
        dm.kill()
        dm = Daemon(home).start()
        run = wait_run(home, "nk", "r")
        eq(run["state"], "success", "the run finishes after the restart")
        st = task_states(home, "nk", "r")
        for i in range(1, 5):
            eq(open(f"{home.dir}/c-t{i}").read().split(), ["start", "end"], f"t{i} ran exactly once")
            eq(st[f"t{i}"]["try_number"], 1, f"t{i} not retried")
            log = home.log("nk", "r", f"t{i}")
            expect(log.count("line-a\n") == 1 and log.count("line-b\n") == 1, log)
        expect("got t1 t4" in home.log("nk", "r", "sum"), "outputs collected after the restart")
    finally:
        dm.stop()
        home.cleanup()


def t_agent_killed_reattaches(sshd):
    """The remote agent is killed mid-try (the session ends, the master stays): a new agent
    re-attaches; the try runs once and its log has every line once. Then the remote supervisor
    is killed with -9: the try is lost (with the reason) and its command's group is killed."""
    home, pidf = pid_dag(sshd, "ak", "echo $$ > {pidf}; for i in 1 2 3 4 5 6; do echo line-$i; sleep 0.5; done",
                         "retries = 0")
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "ak", "--run-id", "r")
        log = os.path.join(home.home, "logs", "ak", "r", "t", "-1", "1.log")
        wait_until(lambda: os.path.exists(log) and "line-2" in open(log).read(), 30, "the try to stream its log")
        agents = [f for f in os.listdir(home.remote) if f.startswith(".agent-")]
        eq(len(agents), 1, f"one agent: {agents}")
        os.kill(int(agents[0].rsplit("-", 1)[1]), signal.SIGKILL)
        run = wait_run(home, "ak", "r")
        eq(run["state"], "success", "the try went on and was collected by a new agent")
        text = open(log).read()
        for i in range(1, 7):
            eq(text.count(f"line-{i}\n"), 1, f"line-{i} once: {text}")
        expect("re-attaching" in text, text)
        eq(task_states(home, "ak", "r")["t"]["try_number"], 1, "ran once")
        # The supervisor killed with -9.
        os.unlink(pidf)
        home.run("dags", "trigger", "ak", "--run-id", "r2")
        wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(), 30, "the second try to start")
        job = int(open(pidf).read())
        sup = [open(os.path.join(home.remote, k, "pid")).read().split()[0] for k in os.listdir(home.remote)
               if os.path.exists(os.path.join(home.remote, k, "pid"))
               and not os.path.exists(os.path.join(home.remote, k, "status"))]
        eq(len(sup), 1, f"one running supervisor: {sup}")
        os.kill(int(sup[0]), signal.SIGKILL)
        run = wait_run(home, "ak", "r2")
        eq(run["state"], "failed", "a try whose supervisor died is lost")
        wait_until(lambda: not alive(job), 2, "the command's group to be killed", interval=0.05)
        log2 = home.log("ak", "r2", "t")
        expect("ended without writing a status" in log2, log2)
    finally:
        d.stop()
        home.cleanup()


def t_remote_dir_refused(sshd):
    """A host where the agent cannot make remote_dir: the tries fail at once with that reason."""
    home = Home()
    os.makedirs(home.home, mode=0o700)
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[ssh]\nconfig_file = {sshd.client_config}\nremote_dir = /proc/no-such-folder\nconnect_timeout = 5s\n")
    home.write_dag("rd.lua", 'local d = dag { id = "rd" }\n'
                             'd:task "t" { cmd = "true", executor = "ssh", host = "good", retries = 0 }\nreturn d\n')
    t0 = time.monotonic()
    out = home.test_run("rd", expect_state="failed")
    log = home.log("rd", out["run_id"], "t")
    expect("ssh: host good:" in log and "cannot create or enter the remote folder /proc/no-such-folder" in log, log)
    expect(time.monotonic() - t0 < 15, "fails fast")


def t_wordcount_two_hosts(sshd):
    """d:mapreduce with executor = "ssh": the same word count DAG, tries spread over two hosts
    (aliases of the loopback sshd) that share the folders, as on shared storage."""
    home = ssh_home(sshd)
    inp = os.path.join(home.dir, "corpus")
    os.makedirs(inp)
    words = ["alpha", "beta", "gamma", "delta", "caf\u00e9"]
    for i in range(4):
        with open(os.path.join(inp, f"f{i}.txt"), "w") as f:
            for j in range(3000):
                f.write(" ".join(words[(i + j * k) % 5] for k in range(1, 8)) + "\n")
    home.write_dag("wc.lua", f'''
local d = dag {{ id = "wc_ssh", max_active_tasks = 8 }}
d:mapreduce "wc" {{ kernel = "wordcount", input = "{inp}", output = "{home.dir}/out/{{{{ ds_nodash }}}}",
                    splits = 4, partitions = 2, executor = "ssh", hosts = {{ "good", "good2" }}, retries = 1 }}
return d
''')
    out = home.test_run("wc_ssh", "--logical-date", "2026-11-05", expect_state="success")
    used = set()
    for i in range(4):
        log = home.log("wc_ssh", out["run_id"], "wc.map", map_index=i)
        used.add("good2" if "running on host good2" in log else "good")
    eq(used, {"good", "good2"}, "map tries on both hosts")
    got = b""
    for p in range(2):
        with open(os.path.join(home.dir, "out", "20261105", f"part-{p:05d}.tsv"), "rb") as f:
            got += f.read()
    want = subprocess.run(f"cat {inp}/*.txt | tr -s ' \\n' '\\n' | sort | uniq -c", shell=True, capture_output=True,
                          env=dict(os.environ, LC_ALL="C"), check=True).stdout
    want = sorted(w.split()[1] + b"\t" + w.split()[0] for w in want.splitlines() if w.strip())
    eq(sorted(got.splitlines()), want, "word counts over two ssh hosts")
    home.cleanup()


def main():
    if not os.path.exists(SSHD) or not shutil.which("ssh"):
        print("SKIP: no sshd/ssh (install openssh-server openssh-client: scripts/deps.sh does)")
        return
    base = Home()
    sshd = Sshd(base.dir).start()
    try:
        p = sshd.ssh("echo ok")
        expect(p.returncode == 0 and "ok" in p.stdout, f"the test's own ssh login works: {p.stderr}")
        check("ssh: a DAG's tries run on a host; logs, env, cwd and outputs come back", lambda: t_success_outputs_log(sshd))
        check("ssh: a failing command fails with its exit code and is retried", lambda: t_failure_retries(sshd))
        check("ssh: execution_timeout kills the remote process group", lambda: t_timeout_kills_remote(sshd))
        check("ssh: runs cancel kills the remote process group at once", lambda: t_cancel_kills_remote(sshd))
        check("ssh: daemon kill -9 mid-try: re-adopted after the restart, ran once, log whole",
              lambda: t_daemon_kill9_readopts(sshd))
        check("ssh: a refused or unknown host fails its tries clearly; the good host's tries run",
              lambda: t_bad_host_does_not_stall(sshd))
        check("ssh: two hosts share the tries by free slots", lambda: t_two_hosts_spread(sshd))
        check("ssh: a d:mapreduce word count over two hosts", lambda: t_wordcount_two_hosts(sshd))
        check("ssh: config show lists [ssh]; bad config and DSL values are errors with file:line",
              lambda: t_config_and_check(sshd))
        check("ssh: per-task overhead with ControlMaster", lambda: t_overhead(sshd))
        check("ssh: the REST API serves the log while the try runs and its cancel kills the remote group",
              lambda: t_api_cancel_and_live_log(sshd))
        check("ssh: 100 timeouts and 20 cancels leave no remote process 2 s later", lambda: t_hundred_timeouts(sshd))
        check("ssh: a killed remote agent is replaced and re-attaches; a killed supervisor makes the try lost",
              lambda: t_agent_killed_reattaches(sshd))
        check("ssh: a remote_dir the host refuses fails the tries with the reason", lambda: t_remote_dir_refused(sshd))
        why = NetnsHosts.available()
        if why:
            print(f"SKIP: the network-namespace hosts: {why}")
        else:
            ns = NetnsHosts(sshd)
            try:
                ns.start()
                check("ssh netns: spread over two hosts; one host's link down mid-run: its tries are retried "
                      "on the other, which is not held up", lambda: t_ns_spread_and_host_down(ns, sshd))
                check("ssh netns: daemon kill -9 with tries on two hosts: each ran once, results collected",
                      lambda: t_ns_kill9_two_hosts(ns, sshd))
            finally:
                ns.stop()
    finally:
        sshd.stop()
        base.cleanup()
    finish()


if __name__ == "__main__":
    main()
