#!/usr/bin/env python3
"""bench/ssh.py - the ssh executor's overhead per task, next to the local executor.

    python3 bench/ssh.py [BUILD_DIR]          # BUILD_DIR defaults to "build"

Starts its own sshd on 127.0.0.1 (generated keys and config, as tests/integration/ssh_executor.py
does), then times `sluice dags test` of one DAG of N independent `true` tasks (argv commands, no
shell) twice per round: every task on the local executor, and every task on that ssh host over
one multiplexed connection (the ControlMaster and the agent session of the backend). Both use the
same home (one logical date per run, so the master connection of the first run is reused, as in a
daemon that runs all day); a warm-up round comes first. Prints the medians and

    overhead per task = (wall of the ssh run - wall of the local run) / N

and the ratio ssh / local. The sshd runs on the same machine, so its CPU (and the remote
supervisors') is billed to the ssh rows: on a machine with few cores that is most of the figure.

Knobs (environment): N=1000 RUNS=3 SLOTS=8 ([ssh] slots of the host) PARALLELISM=32
([core] parallelism, both rows). Not part of `make test`.
"""
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build"))
os.environ.setdefault("SLUICE_BIN", os.path.join(BUILD, "cli", "sluice"))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import Home  # noqa: E402
from ssh_executor import SSHD, Sshd  # noqa: E402

N = int(os.environ.get("N", "1000"))
RUNS = int(os.environ.get("RUNS", "3"))
SLOTS = int(os.environ.get("SLOTS", "8"))
PAR = int(os.environ.get("PARALLELISM", "32"))


def main():
    if not os.path.exists(os.environ["SLUICE_BIN"]):
        sys.exit(f"bench: {os.environ['SLUICE_BIN']} not found; build first: meson setup {BUILD} && ninja -C {BUILD}")
    if not os.path.exists(SSHD):
        sys.exit("bench: no sshd (apt-get install openssh-server openssh-client; scripts/deps.sh does)")
    base = Home()
    sshd = Sshd(base.dir).start()
    home = Home()
    try:
        os.makedirs(home.home, mode=0o700)
        with open(os.path.join(home.home, "sluice.cfg"), "w") as f:
            f.write(f"[core]\nparallelism = {PAR}\n\n[ssh]\nconfig_file = {sshd.client_config}\n"
                    f"remote_dir = {os.path.join(home.dir, 'remote')}\nconnect_timeout = 10s\n\n"
                    f"[ssh.host.good]\nslots = {SLOTS}\n")
        for name, extra in (("bench_local", ""), ("bench_ssh", ', executor = "ssh", host = "good"')):
            home.write_dag(name + ".lua", f'local d = dag {{ id = "{name}", max_active_tasks = {N + 1} }}\n'
                                          f'for i = 1, {N} do d:task("t" .. i) {{ cmd = {{ "true" }}{extra} }} end\n'
                                          'return d\n')
        day = [0]

        def timed(dag):
            day[0] += 1
            t0 = time.monotonic()
            out = home.json("dags", "test", dag, "--json", "--logical-date", f"2026-01-01T00:{day[0] // 60:02d}:{day[0] % 60:02d}Z",
                            ok_codes=(0, 1), timeout=1200)
            took = time.monotonic() - t0
            if out["state"] != "success":
                sys.exit(f"bench: {dag} ended {out['state']}")
            return took

        print(f"bench/ssh.py: {N} `true` tasks, core.parallelism {PAR}, ssh host slots {SLOTS}, sshd on 127.0.0.1, "
              f"{RUNS} rounds after a warm-up", flush=True)
        timed("bench_local")
        timed("bench_ssh")
        local, ssh = [], []
        for r in range(RUNS):
            local.append(timed("bench_local"))
            ssh.append(timed("bench_ssh"))
            print(f"  round {r + 1}: local {local[-1] * 1000:.0f} ms, ssh {ssh[-1] * 1000:.0f} ms", flush=True)
        ml, ms = statistics.median(local), statistics.median(ssh)
        print(f"| executor | wall ms (median of {RUNS}) | per task ms |")
        print("|---|---:|---:|")
        print(f"| local | {ml * 1000:.0f} | {ml * 1000 / N:.2f} |")
        print(f"| ssh (1 host, {SLOTS} slots) | {ms * 1000:.0f} | {ms * 1000 / N:.2f} |")
        print(f"ssh executor overhead per task: {(ms - ml) * 1000 / N:.2f} ms ((ssh - local) / {N}); "
              f"ssh / local = {ms / ml:.2f}")
    finally:
        sshd.stop()
        home.cleanup()
        base.cleanup()


if __name__ == "__main__":
    main()
