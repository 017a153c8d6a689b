"""Two more ssh hosts for tests/integration/ssh_executor.py, each in a network namespace this
helper creates: a veth pair (10.231.N.0/30 and 10.231.N.4/30, inside the namespaces and their
veth peers only) and an sshd of its own inside the namespace, with the host key and the
authorized key of the test's 127.0.0.1 sshd. The hosts share this machine's file system, so a
test sees their remote folders. Needs root and iproute2; NetnsHosts.available() says why not."""
import os
import shutil
import socket
import subprocess
import time

IP = shutil.which("ip") or "/usr/sbin/ip"


def run(*args, check=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: {p.stderr.strip()}")
    return p


class NetnsHosts:
    """Hosts `na` and `nb` in namespaces sl<pid>a / sl<pid>b."""

    def __init__(self, sshd):
        self.sshd = sshd
        tag = os.getpid() % 100000
        octet = os.getpid() % 250 + 1
        self.hosts = {}
        for i, name in enumerate(("na", "nb")):
            self.hosts[name] = {
                "ns": f"sl{tag}{name[1]}", "out": f"vs{tag}{name[1]}", "in": f"vs{tag}{name[1]}i",
                "local": f"10.231.{octet}.{4 * i + 1}", "addr": f"10.231.{octet}.{4 * i + 2}", "proc": None,
            }

    @staticmethod
    def available():
        if os.geteuid() != 0:
            return "not root: network namespaces need CAP_SYS_ADMIN"
        if not os.path.exists(IP):
            return "no ip (iproute2; scripts/deps.sh installs it)"
        name = f"slprobe{os.getpid() % 100000}"
        p = run(IP, "netns", "add", name, check=False)
        if p.returncode != 0:
            return "ip netns add failed: " + p.stderr.strip()
        run(IP, "netns", "del", name, check=False)
        return None

    def start(self):
        d = self.sshd.dir
        with open(os.path.join(d, "host_key.pub")) as f:
            hostkey = " ".join(f.read().split()[:2])
        with open(os.path.join(d, "known_hosts"), "a") as kh, open(self.sshd.client_config, "a") as cc:
            for name, h in self.hosts.items():
                run(IP, "netns", "add", h["ns"])
                run(IP, "link", "add", h["out"], "type", "veth", "peer", "name", h["in"])
                run(IP, "link", "set", h["in"], "netns", h["ns"])
                run(IP, "addr", "add", h["local"] + "/30", "dev", h["out"])
                run(IP, "link", "set", h["out"], "up")
                run(IP, "-n", h["ns"], "addr", "add", h["addr"] + "/30", "dev", h["in"])
                run(IP, "-n", h["ns"], "link", "set", h["in"], "up")
                run(IP, "-n", h["ns"], "link", "set", "lo", "up")
                cfg = os.path.join(d, f"sshd_config.{name}")
                with open(self.sshd.config) as f:
                    text = f.read().replace("ListenAddress 127.0.0.1", f"ListenAddress {h['addr']}")
                with open(cfg, "w") as f:
                    f.write(text)
                h["log"] = os.path.join(d, f"sshd.{name}.log")
                h["proc"] = subprocess.Popen([IP, "netns", "exec", h["ns"], self.sshd.sshd_path, "-D", "-e",
                                              "-f", cfg, "-p", "22"],
                                             stdout=open(h["log"], "w"), stderr=subprocess.STDOUT)
                kh.write(f"{h['addr']} {hostkey}\n")
                cc.write(f"""Host {name}
  HostName {h['addr']}
  Port 22
  User {self.sshd.user}
  IdentityFile {d}/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile {d}/known_hosts
  StrictHostKeyChecking yes
""")
        for name, h in self.hosts.items():
            deadline = time.monotonic() + 15
            while True:
                try:
                    socket.create_connection((h["addr"], 22), timeout=1).close()
                    break
                except OSError:
                    if h["proc"].poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(f"sshd in {h['ns']} did not listen: " + open(h["log"]).read())
                    time.sleep(0.05)
        return self

    def link(self, name, up):
        run(IP, "link", "set", self.hosts[name]["out"], "up" if up else "down")

    def stop(self):
        for h in self.hosts.values():
            if h["proc"] and h["proc"].poll() is None:
                h["proc"].terminate()
                try:
                    h["proc"].wait(timeout=10)
                except subprocess.TimeoutExpired:
                    h["proc"].kill()
            # Deleting the namespace ends its sshd's sessions and drops the veth pair.
            pids = run(IP, "netns", "pids", h["ns"], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            run(IP, "link", "del", h["out"], check=False)
            run(IP, "netns", "del", h["ns"], check=False)
