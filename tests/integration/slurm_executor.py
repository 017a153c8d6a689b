"""The slurm executor against a real single-node Slurm that this test starts: its own munged (own
key and socket), slurmctld -D and slurmd -D with a generated slurm.conf (own ports, state and
spool folders, the machine's real CPUs and memory, proctrack/linuxproc, task/none, no
accounting: the scontrol path). The Slurm clients find it through SLURM_CONF, which the daemon
passes on to them. [slurm] bin_dir points at wrappers that log every call and exec the real
command, so the test counts squeue calls."""
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from harness import Daemon, Home, alive, api_call, check, eq, expect, expect_config_errors, expect_import_errors, finish, free_port, task_states, tis, wait_run, wait_until  # noqa: E402

COMMANDS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")
POLL = 0.5


def mem_mb():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    return 1024


MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
SLURMDBD = shutil.which("slurmdbd") or "/usr/sbin/slurmdbd"


class Slurm:
    """munged + slurmctld + slurmd, all in the foreground, under base/slurm; with accounting,
    also a MariaDB server of its own (own datadir, socket, port) and slurmdbd."""

    def __init__(self, base, accounting=False):
        self.dir = d = os.path.join(base, "slurm")
        self.accounting = accounting
        for sub in ("munge", "state", "spool", "log", "bin", "db"):
            os.makedirs(os.path.join(d, sub), mode=0o700)
        self.sock = os.path.join(d, "munge", "munge.socket")
        self.key = os.path.join(d, "munge", "munge.key")
        with open(self.key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(self.key, 0o600)
        self.conf = os.path.join(d, "slurm.conf")
        mem = max(256, mem_mb() - 512)
        self.db_port, self.dbd_port = free_port(), free_port()
        if accounting:
            acct = f"AccountingStorageType=accounting_storage/slurmdbd\nAccountingStorageHost=localhost\n" \
                   f"AccountingStoragePort={self.dbd_port}\nAccountingStoragePass={self.sock}\n"
            dbd = os.path.join(d, "slurmdbd.conf")  # next to slurm.conf: where slurmdbd looks
            with open(dbd, "w") as f:
                f.write(f"""AuthType=auth/munge
AuthInfo=socket={self.sock}
DbdHost=localhost
DbdPort={self.dbd_port}
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=slurm
StoragePass=sluice
StorageLoc=slurm_acct_db
PidFile={d}/slurmdbd.pid
LogFile={d}/log/slurmdbd.log
""")
            os.chmod(dbd, 0o600)
        else:
            acct = "AccountingStorageType=accounting_storage/none\n"
        with open(self.conf, "w") as f:
            f.write(f"""ClusterName=sluicetest
SlurmctldHost=localhost
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
AuthInfo=socket={self.sock}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
{acct}JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=5
InactiveLimit=0
MessageTimeout=5
SchedulerParameters=sched_interval=1
NodeName=localhost CPUs={os.cpu_count()} RealMemory={mem} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:16
""")
        # Wrappers that log each call (name and time) and exec the real command.
        self.bin = os.path.join(d, "bin")
        self.calls = os.path.join(d, "calls.log")
        for c in COMMANDS:
            real = shutil.which(c) or "/usr/bin/" + c
            path = os.path.join(self.bin, c)
            with open(path, "w") as f:
                f.write(f'#!/bin/sh\necho "{c} $(date +%s.%N)" >> {self.calls}\nexec {real} "$@"\n')
            os.chmod(path, 0o755)
        # The same, with a squeue that lists nothing: every job looks as if it had left the queue.
        self.blind = os.path.join(d, "bin_blind")
        shutil.copytree(self.bin, self.blind)
        with open(os.path.join(self.blind, "squeue"), "w") as f:
            f.write(f'#!/bin/sh\necho "squeue $(date +%s.%N)" >> {self.calls}\n'
                    f'{shutil.which("squeue") or "/usr/bin/squeue"} "$@" >/dev/null\n')
        self.procs = {}

    def _start(self, name, argv):
        err = open(os.path.join(self.dir, "log", name + ".err"), "a")
        self.procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err,
                                            env=dict(os.environ, SLURM_CONF=self.conf))
        err.close()

    def start(self):
        self._start("munged", ["munged", "-F", "-f", "--socket", self.sock, "--key-file", self.key,
                               "--pid-file", os.path.join(self.dir, "munge", "munged.pid"),
                               "--log-file", os.path.join(self.dir, "log", "munged.log"),
                               "--seed-file", os.path.join(self.dir, "munge", "seed")])
        wait_until(lambda: os.path.exists(self.sock), 10, "munged's socket", interval=0.05)
        if self.accounting:
            self.start_dbd()
        self.start_ctld()
        self._start("slurmd", ["slurmd", "-D", "-f", self.conf])
        wait_until(lambda: self.cmd("sinfo", "-h", "-o", "%T").stdout.strip() == "idle", 30,
                   "the node to be idle", interval=0.3)
        return self

    def start_dbd(self):
        data, sock = os.path.join(self.dir, "db", "data"), os.path.join(self.dir, "db", "sock")
        p = subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}", "--user=root",
                            "--auth-root-authentication-method=normal", "--skip-test-db"],
                           capture_output=True, text=True, timeout=120)
        expect(p.returncode == 0, "mariadb-install-db: " + p.stdout + p.stderr)
        self._start("mariadbd", [MARIADBD, "--no-defaults", f"--datadir={data}", "--user=root", f"--socket={sock}",
                                 f"--port={self.db_port}", "--bind-address=127.0.0.1", "--skip-name-resolve",
                                 f"--pid-file={self.dir}/db/pid", f"--log-error={self.dir}/log/mariadb.log",
                                 "--innodb-buffer-pool-size=16M"])
        wait_until(lambda: os.path.exists(sock), 30, "mariadbd's socket", interval=0.1)
        sql = "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'sluice'; GRANT ALL ON *.* TO 'slurm'@'127.0.0.1';"
        wait_until(lambda: subprocess.run(["mariadb", "--no-defaults", "-S", sock, "-u", "root", "-e", sql],
                                          capture_output=True, timeout=30).returncode == 0, 30, "mariadb to answer")
        self._start("slurmdbd", [SLURMDBD, "-D"])

        def registered():
            self.cmd("sacctmgr", "-i", "add", "cluster", "sluicetest")
            p = self.cmd("sacctmgr", "-n", "-P", "show", "cluster", "format=cluster")
            self.last_sacctmgr = p.stdout + p.stderr
            return p.stdout.split() == ["sluicetest"]
        wait_until(registered, 30, "slurmdbd to register the cluster", interval=0.3)

    def start_ctld(self):
        self._start("slurmctld", ["slurmctld", "-D", "-i", "-f", self.conf])
        wait_until(lambda: self.cmd("sinfo", "-h").returncode == 0, 30, "slurmctld to answer", interval=0.3)

    def stop_ctld(self):
        p = self.procs.pop("slurmctld", None)
        if p and p.poll() is None:
            p.terminate()
            p.wait(timeout=30)

    def cmd(self, *argv, timeout=30):
        return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=dict(os.environ, SLURM_CONF=self.conf))

    def jobs(self, name_part=""):
        """{job name: state} of the jobs slurmctld knows."""
        p = self.cmd("squeue", "-h", "--states=all", "-o", "%j|%T")
        return {n: s for n, s in (line.split("|") for line in p.stdout.split()) if name_part in n}

    def count_calls(self, name, since=0.0):
        if not os.path.exists(self.calls):
            return []
        with open(self.calls) as f:
            return [float(t) for c, t in (line.split() for line in f) if c == name and float(t) >= since]

    def stop(self):
        # slurmstepd processes outlive slurmd: those of this cluster (its SLURM_CONF) go too.
        mark = f"SLURM_CONF={self.conf}".encode()
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    mine = mark in f.read().split(b"\0")
                with open(f"/proc/{pid}/comm") as f:
                    stepd = f.read().strip() == "slurmstepd"
            except OSError:
                continue
            if mine and stepd:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            p = self.procs.pop(name, None)
            if p and p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


def slurm_home(sl, extra=""):
    home = Home()
    os.makedirs(home.home, mode=0o700)
    home.work = os.path.join(home.dir, "shared")
    with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
        f.write(f"[slurm]\npoll_interval = {int(POLL * 1000)}ms\nwork_dir = {home.work}\nbin_dir = {sl.bin}\n"
                f"command_timeout = 20s\n{extra}")
    return home


def try_log(home, dag_id, run_id, task, n=1):
    path = os.path.join(home.home, "logs", dag_id, run_id, task, "-1", f"{n}.log")
    return open(path).read() if os.path.exists(path) else ""


def stop_clean(d):
    """Stops a daemon; its log must hold no sanitizer report (the ASan build runs this too)."""
    d.stop()
    out = d.output()
    expect("Sanitizer" not in out and "runtime error:" not in out, out[-4000:])


def t_success_outputs(sl):
    home = slurm_home(sl)
    home.write_dag("s.lua", '''
local d = dag { id = "s", default_args = { executor = "slurm", slurm = { partition = "debug" } } }
local a = d:task "a" { cmd = "echo hello-$SLUICE_TASK_ID-$SLUICE_TRY_NUMBER job=$SLURM_JOB_ID; "
                          .. "echo answer=42 >> $SLUICE_OUTPUT; echo err >&2",
                       slurm = { cpus = 1, mem = "100M", time = "5m", extra = { comment = "from-sluice" } } }
local b = d:task "b" { cmd = { "sh", "-c", "echo \\"$GREETING\\" got {{ outputs.a.answer }}; pwd" },
                       env = { GREETING = "hi there 'quoted'" }, cwd = "/tmp" }
local c = d:task "c" { cmd = "echo local {{ outputs.a.answer }}", executor = "local" }
d:flow(a >> b >> c)
return d
''')
    out = home.test_run("s", expect_state="success")
    log = home.log("s", out["run_id"], "a")
    expect(re.search(r"hello-a-1 job=\d+", log) and "err" in log, log)
    expect(re.search(r"submitted as job \d+ \(sluice\.s\.[^ ]+\.a\.-1\.1\.[0-9a-f]{16}\)", log), log)
    logb = home.log("s", out["run_id"], "b")
    expect("hi there 'quoted' got 42" in logb and "\n/tmp\n" in logb, logb)
    expect("local 42" in home.log("s", out["run_id"], "c"), "the output reached a local task")
    eq(os.listdir(home.work), [], "the tries' folders are removed")
    home.cleanup()


def t_failure_retries(sl):
    home = slurm_home(sl)
    home.write_dag("f.lua", '''
local d = dag { id = "f" }
d:task "t" { cmd = "echo try $SLUICE_TRY_NUMBER; exit 3", executor = "slurm", retries = 1, retry_delay = 0 }
d:task "skip" { cmd = "exit 99", executor = "slurm" }
d:task "badpart" { cmd = "true", executor = "slurm", slurm = { partition = "nosuch" }, retries = 0 }
return d
''')
    out = home.test_run("f", expect_state="failed")
    t = tis(out)
    eq(t["t"]["state"], "failed", "state")
    eq(t["t"]["try_number"], 2, "two tries")
    eq(t["t"].get("exit_code"), 3, "the job's exit code")
    eq(t["skip"]["state"], "skipped", "exit 99 skips, as locally")
    for n in (1, 2):
        expect(f"try {n}" in home.log("f", out["run_id"], "t", try_number=n), f"log of try {n}")
    log = home.log("f", out["run_id"], "badpart")
    expect("sbatch refused the job" in log and "partition" in log, log)
    home.cleanup()


def t_timeout(sl):
    home = slurm_home(sl)
    pidf = os.path.join(home.dir, "job.pid")
    home.write_dag("to.lua", f'''
local d = dag {{ id = "to" }}
d:task "t" {{ cmd = "echo $$ > {pidf}; exec sleep 120", executor = "slurm", execution_timeout = "4s", retries = 0 }}
return d
''')
    t0 = time.monotonic()
    out = home.test_run("to", expect_state="failed")
    took = time.monotonic() - t0
    log = home.log("to", out["run_id"], "t")
    expect("execution_timeout of 4s exceeded" in log, log)
    expect(took < 20, f"took {took:.1f}s")
    pid = int(open(pidf).read())
    wait_until(lambda: not alive(pid), 2, "the job's process to be gone", interval=0.1)
    # The process is gone at once; Slurm may show the job COMPLETING while slurmd cleans up
    # (slower on a loaded machine), never RUNNING or PENDING again.
    def settled():
        j = sl.jobs("sluice.to.")
        if not j:
            return {"(left squeue)": "CANCELLED"}
        return j if all(s not in ("RUNNING", "PENDING", "COMPLETING") for s in j.values()) else None
    jobs = wait_until(settled, 15, "the job to leave the queue")
    expect(all(s in ("CANCELLED", "TIMEOUT", "FAILED") or s.startswith("CANCELLED") for s in jobs.values()), f"{jobs}")
    home.cleanup()


def t_cancel_api(sl):
    home = slurm_home(sl)
    pidf = os.path.join(home.dir, "job.pid")
    home.write_dag("c.lua", f'''
local d = dag {{ id = "c" }}
d:task "t" {{ cmd = "echo $$ > {pidf}; sleep 120", executor = "slurm" }}
return d
''')
    d = Daemon(home).start()
    try:
        home.run("dags", "trigger", "c", "--run-id", "r")
        wait_until(lambda: os.path.exists(pidf) and open(pidf).read().strip(), 40, "the job to start")
        pid = int(open(pidf).read())
        expect(alive(pid), "running")
        t0 = time.monotonic()
        eq(api_call(home, d, "PATCH", "/dags/c/dagRuns/r", {"state": "failed"})[0], 200, "PATCH dagRun")
        wait_until(lambda: not alive(pid), 15, "the job's process to be gone", interval=0.1)
        gone_in = time.monotonic() - t0
        run = wait_run(home, "c", "r", timeout=90)
        eq(run["state"], "failed", "the run is failed")
        log = try_log(home, "c", "r", "t")
        expect("cancelling job" in log, log)
        jobs = sl.jobs("sluice.c.")
        expect(jobs and all(s == "CANCELLED" for s in jobs.values()), f"scancel'd: {jobs}")
        print(f"     the job's process was gone {gone_in:.1f}s after the cancel")
        stop_clean(d)
    finally:
        d.stop()
        home.cleanup()


def t_kill9_streaming(sl):
    """Log streaming while the job runs, then a daemon kill -9: each try runs once."""
    home = slurm_home(sl)
    counter = os.path.join(home.dir, "counter")
    home.write_dag("k.lua", f'''
local d = dag {{ id = "k", max_active_tasks = 8 }}
for i = 1, 3 do
  d:task("a" .. i) {{ cmd = "echo start-$SLUICE_TASK_ID >> {counter}; for i in 1 2 3 4 5 6 7 8; do echo line-$i; "
                         .. "sleep 0.5; done; echo v=$SLUICE_TASK_ID >> $SLUICE_OUTPUT; echo end >> {counter}",
                     executor = "slurm", retries = 2, retry_delay = 0 }}
end
d:task "b" {{ cmd = "echo got {{{{ outputs.a1.v }}}}", executor = "slurm", after = {{ "a1", "a2", "a3" }} }}
-- Its batch script is SIGKILLed: no exit status; it leaves squeue while the daemon is down.
d:task "z" {{ cmd = "sleep 5; kill -9 $PPID", executor = "slurm", retries = 0 }}
return d
''')
    d = Daemon(home).start()
    since = time.time()
    try:
        home.run("dags", "trigger", "k", "--run-id", "r")
        wait_until(lambda: "line-2" in try_log(home, "k", "r", "a1"), 40, "the job's output in the try log")
        st = task_states(home, "k", "r")
        eq(st["a1"]["state"], "running", "streamed while running")
        d.kill()
        # The jobs end while the daemon is down and leave squeue (MinJobAge=5): the restarted
        # daemon finds their exit status in work_dir.
        wait_until(lambda: not sl.jobs("sluice.k.r."), 40, "the jobs to leave squeue", interval=0.5)
        d = Daemon(home).start()
        run = wait_run(home, "k", "r", timeout=90)
        eq(run["state"], "failed", "the run ends after the restart (z failed)")
        lines = open(counter).read().split()
        eq(sorted(x for x in lines if x.startswith("start")), ["start-a1", "start-a2", "start-a3"], "each ran once")
        eq(lines.count("end"), 3, "each ended once")
        st = task_states(home, "k", "r")
        for i in (1, 2, 3):
            eq(st[f"a{i}"]["try_number"], 1, "not retried")
        text = try_log(home, "k", "r", "a1")
        for i in range(1, 9):
            eq(text.count(f"line-{i}\n"), 1, f"line-{i} once in the log: {text}")
        expect("got a1" in try_log(home, "k", "r", "b"), "the output came back after the re-attach")
        eq(st["b"]["state"], "success", "b")
        eq(st["z"]["state"], "failed", "z")
        log = try_log(home, "k", "r", "z")
        # Gone from squeue: sacct still knows it (FAILED) when accounting is on, else nothing does.
        want = "ended FAILED without writing" if sl.accounting else "known neither to squeue nor to scontrol"
        expect(want in log, log)
        expect(len(sl.count_calls("sacct", since)) >= 1, "sacct asked about the jobs squeue dropped")
        stop_clean(d)
    finally:
        d.stop()
        home.cleanup()


def t_broken_controller(sl):
    home = slurm_home(sl)
    home.write_dag("w.lua", '''
local d = dag { id = "w", max_active_tasks = 8 }
d:task "waits" { cmd = "echo ran", executor = "slurm", execution_timeout = "90s", retries = 0 }
d:task "gives_up" { cmd = "echo ran", executor = "slurm", execution_timeout = "5s", retries = 0 }
-- Local tries beside them: a Slurm controller that does not answer holds no task of another backend.
local l1 = d:task "local1" { cmd = "echo local" }
local l2 = d:task "local2" { cmd = "echo local" }
local l3 = d:task "local3" { cmd = "echo local" }
d:flow(l1 >> l2 >> l3)
return d
''')
    home.write_dag("rt.lua", '''
local d = dag { id = "rt" }
d:task "t" { cmd = "sleep 3; echo finished", executor = "slurm", retries = 0 }
return d
''')
    d = Daemon(home).start()
    try:
        # A job that runs when the controller stops ends without it: its exit status decides.
        home.run("dags", "trigger", "rt", "--run-id", "r")
        wait_until(lambda: "is RUNNING" in try_log(home, "rt", "r", "t"), 30, "rt's job to run")
        sl.stop_ctld()
        run = wait_run(home, "rt", "r", timeout=30)
        eq(run["state"], "success", "the job that ran through the outage")
        log = try_log(home, "rt", "r", "t")
        expect("finished" in log and "controller does not answer" in log, log)
        home.run("dags", "trigger", "w", "--run-id", "r")
        wait_until(lambda: "controller does not answer" in try_log(home, "w", "r", "waits"), 30,
                   "the note about the controller")
        wait_until(lambda: task_states(home, "w", "r")["gives_up"]["state"] == "failed", 30,
                   "gives_up to fail at its execution_timeout")
        log = try_log(home, "w", "r", "gives_up")
        expect("execution_timeout" in log and "controller" in log, log)
        st = task_states(home, "w", "r")
        eq(st["waits"]["state"], "running", "the other try still waits")
        for t in ("local1", "local2", "local3"):
            eq(st[t]["state"], "success", f"{t} (local executor) while the controller is down")
        sl.start_ctld()
        run = wait_run(home, "w", "r", timeout=90)
        st = task_states(home, "w", "r")
        eq(st["waits"]["state"], "success", "the waiting try ran once the controller was back")
        eq(st["waits"]["try_number"], 1, "without a retry")
        log = try_log(home, "w", "r", "waits")
        expect("ran\n" in log and "answers again" in log, log)
        eq(run["state"], "failed", "the run (gives_up failed)")
        stop_clean(d)
    finally:
        if "slurmctld" not in sl.procs:
            sl.start_ctld()
        d.stop()
        home.cleanup()


def t_one_squeue_per_poll(sl):
    home = slurm_home(sl, "max_submit_per_second = 4\n")
    n = 10
    marks = os.path.join(home.dir, "marks")
    os.makedirs(marks)
    home.write_dag("p.lua", f'''
local d = dag {{ id = "p", max_active_tasks = 16 }}
for i = 1, {n} do d:task("t" .. i) {{ cmd = "sleep 4; date +%s.%N > {marks}/$SLUICE_TASK_ID", executor = "slurm" }} end
return d
''')
    t0 = time.time()
    out = home.test_run("p", expect_state="success")
    t1 = time.time()
    # A finished job is noticed within two poll intervals (its end as the job wrote it vs the try's).
    from datetime import datetime
    lag = max(datetime.fromisoformat(ti["end_date"]).timestamp() - float(open(os.path.join(marks, ti["task_id"])).read())
              for ti in out["task_instances"])
    expect(lag <= 2 * POLL + 0.3, f"a job's end noticed {lag:.2f}s after it (poll interval {POLL}s)")
    sq = sl.count_calls("squeue", t0)
    sb = sl.count_calls("sbatch", t0)
    eq(len(sb), n, "one sbatch per try")
    polls = (t1 - t0) / POLL
    expect(len(sq) <= polls + 2, f"{len(sq)} squeue calls in {t1 - t0:.1f}s at a {POLL}s poll interval")
    gaps = [b - a for a, b in zip(sq, sq[1:])]
    expect(min(gaps) >= POLL * 0.8, f"never two squeue calls within one interval: {min(gaps):.2f}s")
    # Submissions are rate-limited: 4 per second (a bucket of 4 at the start).
    sb.sort()
    expect(sb[-1] - sb[0] >= (n - 4) / 4 - 0.3, f"sbatch spread: {sb[-1] - sb[0]:.2f}s for {n} jobs at 4/s")
    print(f"     {n} jobs: {len(sq)} squeue calls in {t1 - t0:.1f}s ({polls:.0f} poll intervals), "
          f"sbatch spread over {sb[-1] - sb[0]:.1f}s, an end noticed {lag:.2f}s after it at most")
    home.cleanup()


def t_left_squeue(sl):
    """Jobs squeue does not list (as after MinJobAge): sacct or scontrol answer for them, and a
    job one of them knows is never declared lost."""
    for acc in (("auto", "no") if sl.accounting else ("no",)):
        home = Home()
        os.makedirs(home.home, mode=0o700)
        home.work = os.path.join(home.dir, "shared")
        with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
            f.write(f"[slurm]\npoll_interval = {int(POLL * 1000)}ms\nwork_dir = {home.work}\nbin_dir = {sl.blind}\n"
                    f"accounting = {acc}\n")
        home.write_dag("l.lua", '''
local d = dag { id = "l", max_active_tasks = 4 }
d:task "t" { cmd = "sleep 3; echo done", executor = "slurm", retries = 0 }
d:task "z" { cmd = "sleep 1; kill -9 $PPID", executor = "slurm", retries = 0 }
return d
''')
        t0 = time.time()
        out = home.test_run("l", expect_state="failed")
        t = tis(out)
        eq(t["t"]["state"], "success", f"accounting = {acc}: a running job squeue does not list is not lost")
        eq(t["z"]["state"], "failed", "z")
        log = home.log("l", out["run_id"], "z")
        expect("ended FAILED without writing" in log, log)
        used, unused = ("sacct", "scontrol") if acc == "auto" else ("scontrol", "sacct")
        expect(len(sl.count_calls(used, t0)) >= 2, f"accounting = {acc}: {used} answered")
        calls = sl.count_calls(used, t0)
        expect(min(b - a for a, b in zip(calls, calls[1:])) >= POLL * 0.8, f"at most one {used} per poll interval")
        eq(len(sl.count_calls(unused, t0)), 0, f"accounting = {acc}: no {unused}")
        home.cleanup()


def t_config_and_check(sl):
    home = slurm_home(sl)
    p = home.run("config", "show")
    eq(p.returncode, 0, p.stderr)
    for want in ("[slurm]", "poll_interval = 500ms", "max_submit_per_second = 5", "work_dir = " + home.work,
                 "bin_dir = " + sl.bin, "accounting = auto", "command_timeout = 20s"):
        expect(want in p.stdout, f"{want!r} in config show:\n{p.stdout}")
    expect_config_errors(home, [
        ("[slurm]\npoll_interval = 0s\n", "sluice.cfg:2: slurm.poll_interval = 0s: must be between"),
        ("[slurm]\naccounting = maybe\n", "slurm.accounting = maybe: must be one of auto no"),
        ("[slurm]\nmax_submit_per_second = x\n", "slurm.max_submit_per_second = x: not an integer"),
    ])
    cases = [
        ('d:task "t" { cmd = "true", executor = "slurm", slurm = { partiton = "x" } }', "unknown field 'partiton'"),
        ('d:task "t" { cmd = "true", slurm = { cpus = 2 } }', 'slurm is for executor = "slurm"'),
        ('d:task "t" { cmd = "true", executor = "slurm", slurm = { cpus = 0 } }', "cpus must be"),
        ('d:task "t" { cmd = "true", executor = "slurm", slurm = { mem = "lots" } }', "mem must be"),
        ('d:task "t" { cmd = "true", executor = "slurm", slurm = { extra = { output = "/x" } } }', "cannot set 'output'"),
        ('d:task "t" { cmd = "true", executor = "slurm", slurm = { time = "soon" } }', "time is not a valid duration"),
        ('d:task "t" { cmd = "true", executor = "slurm", run_as = "nobody" }', "run_as cannot be used"),
    ]
    expect_import_errors(home, cases)
    home.cleanup()


def main():
    missing = [c for c in ("munged", "slurmctld", "slurmd", "sbatch", "squeue") if not shutil.which(c)
               and not os.path.exists("/usr/sbin/" + c)]
    if missing:
        print(f"SKIP: no {', '.join(missing)} (install slurm-wlm munge: scripts/deps.sh does)")
        return
    if os.geteuid() != 0:
        print("SKIP: a single-node Slurm (slurmd with SlurmUser=root) needs root")
        return
    os.environ["PATH"] = "/usr/sbin:" + os.environ.get("PATH", "")
    base = Home()
    # With MariaDB and slurmdbd (scripts/deps.sh installs them) the cluster has accounting: sacct.
    accounting = os.path.exists(MARIADBD) and os.path.exists(SLURMDBD) and shutil.which("mariadb-install-db")
    if not accounting:
        print("note: no mariadbd/slurmdbd: the cluster runs without accounting (the scontrol path only)")
    sl = Slurm(base.dir, accounting=bool(accounting))
    try:
        sl.start()
        os.environ["SLURM_CONF"] = sl.conf  # for the daemon, which passes it on to the Slurm clients
        check("slurm: config show lists [slurm]; bad config and DSL values are errors with file:line",
              lambda: t_config_and_check(sl))
        check("slurm: tries run as jobs; logs, env, cwd, options and outputs come back", lambda: t_success_outputs(sl))
        check("slurm: a failing job fails with its exit code and is retried; sbatch refusals are clear",
              lambda: t_failure_retries(sl))
        check("slurm: execution_timeout scancels the job", lambda: t_timeout(sl))
        check("slurm: a run failed through the REST API scancels its job", lambda: t_cancel_api(sl))
        check("slurm: the log streams while the job runs; daemon kill -9: re-attached, each try ran once",
              lambda: t_kill9_streaming(sl))
        check("slurm: a stopped slurmctld makes tries wait (noted), then run or fail at execution_timeout; local tries go on",
              lambda: t_broken_controller(sl))
        check("slurm: one squeue per poll interval for all live jobs; sbatch rate-limited",
              lambda: t_one_squeue_per_poll(sl))
        check("slurm: jobs squeue no longer lists: sacct (accounting on) or scontrol decide, none lost",
              lambda: t_left_squeue(sl))
    finally:
        sl.stop()
        base.cleanup()
    finish()


if __name__ == "__main__":
    main()
