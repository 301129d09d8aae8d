"""A real multi-host Gemini cluster for tests: network-namespace hosts
(scripts/cluster), a real etcd on the bridge, one `gemini agent` per host in
multi-machine mode. Everything is torn down by the ids it was created with."""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid

from conftest import GEMINI, PYTHON, REPO, free_port

CLUSTER = os.path.join(REPO, "scripts", "cluster")


def have_cluster_support():
    return os.geteuid() == 0 and shutil.which("ip") and os.path.exists("/usr/bin/etcd")


class Cluster:
    def __init__(self, tmp_path, hosts=4, replicas=2, rate=None, job="job"):
        self.name = "t" + uuid.uuid4().hex[:6]
        self.tmp = tmp_path
        self.n, self.replicas, self.job = hosts, replicas, job
        self.procs, self.agents, self.etcd = [], {}, None
        args = [CLUSTER, "up", str(hosts), "--name", self.name] + (["--rate", rate] if rate else [])
        subprocess.run(args, check=True, capture_output=True)
        try:  # A failed start leaves no namespace, etcd or agent behind.
            self.bridge = self._out("addr", "bridge")
            self.addrs = [self._out("addr", str(i)) for i in range(hosts)]
            self.secret = tmp_path / "secret"
            self.secret.write_text(uuid.uuid4().hex * 2)
            os.chmod(self.secret, 0o600)
            self._start_etcd()
            for i in range(hosts):
                self.start_agent(i)
        except BaseException:
            self.down()
            raise

    def _out(self, *args):
        return subprocess.run([CLUSTER, *args, "--name", self.name], check=True,
                              capture_output=True, text=True).stdout.strip()

    def exec_args(self, host):
        return [CLUSTER, "exec", str(host), "--name", self.name, "--"]

    def _start_etcd(self):
        port, peer = free_port(), free_port()
        self.etcd_url = f"http://{self.bridge}:{port}"
        log = open(self.tmp / "etcd.log", "wb")
        self.etcd = subprocess.Popen(
            ["/usr/bin/etcd", "--name", "t", "--data-dir", str(self.tmp / "etcd"),
             "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"t=http://127.0.0.1:{peer}",
             "--heartbeat-interval", "50", "--election-timeout", "500",
             # As every etcd Gemini starts (src/coord/etcd_process.h): bounded history.
             "--auto-compaction-mode", "periodic", "--auto-compaction-retention", "5m",
             "--quota-backend-bytes", str(4 << 30)],
            stdout=log, stderr=log)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                with socket.create_connection((self.bridge, port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("etcd did not start")

    def socket(self, host):
        return str(self.tmp / f"agent-{host}.sock")

    def start_agent(self, host):
        log = open(self.tmp / f"agent-{host}.log", "ab")
        p = subprocess.Popen(self.exec_args(host) + [
            GEMINI, "agent", "--socket", self.socket(host), "--budget", "1GiB",
            "--shm-prefix", f"gemini-{self.name}-{host}", "--etcd", self.etcd_url,
            "--job", self.job, "--host-id", str(host), "--hosts", str(self.n),
            "--replicas", str(self.replicas), "--advertise", self.addrs[host],
            "--secret-file", str(self.secret)], stderr=log)
        self.agents[host] = p
        deadline = time.time() + 10
        while not os.path.exists(self.socket(host)):
            assert p.poll() is None, open(self.tmp / f"agent-{host}.log").read()
            assert time.time() < deadline
            time.sleep(0.05)

    def env(self, host, **extra):
        env = dict(os.environ, GEMINI_SOCKET=self.socket(host), GEMINI_JOB=self.job,
                   OMP_NUM_THREADS="1")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def status(self, host=0):
        out = subprocess.run([GEMINI, "status", "--json", "--socket", self.socket(host)],
                             check=True, capture_output=True, text=True).stdout
        return json.loads(out)

    def complete(self, host=0):
        return self.status(host)["cluster"]["complete_iteration"]

    def wait_complete(self, want, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.complete() >= want:
                return True
            time.sleep(0.1)
        return False

    def remove_host(self, host):
        """A hardware failure: every process of the host killed, the host deleted."""
        subprocess.run([CLUSTER, "remove", str(host), "--name", self.name], check=True,
                       capture_output=True)
        p = self.agents.pop(host)
        p.wait(timeout=10)

    def down(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for p in self.agents.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if self.etcd is not None:
            self.etcd.kill()
            self.etcd.wait()
        subprocess.run([CLUSTER, "down", "--name", self.name], capture_output=True)
        for f in os.listdir("/dev/shm"):
            if f.startswith(f"gemini-{self.name}-"):
                os.unlink(os.path.join("/dev/shm", f))  # Only a killed host leaves these.
