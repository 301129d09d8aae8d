"""scripts/cluster: hosts as network namespaces on a bridge.

Brings clusters up under names unique to this test run, checks that hosts
reach each other over TCP, that --rate caps throughput, that remove kills a
host's processes, and that down leaves no namespace, link or state behind.
Needs root (skipped otherwise). Run: .venv/bin/python -m pytest tests/test_cluster.py
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLUSTER = str(ROOT / "scripts" / "cluster")
PY = sys.executable

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="scripts/cluster needs root"),
    pytest.mark.skipif(not (shutil.which("ip") and shutil.which("tc")), reason="needs iproute2"),
]

SERVER = r"""
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(8)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    c, _ = s.accept()
    total = 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        if total == 0 and b == b"ping":
            c.sendall(b)  # echo a ping; count everything else
        total += len(b)
    c.close()
"""

CLIENT = r"""
import socket, sys, time
n = int(sys.argv[3])
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
if n == 0:
    c.sendall(b"ping")
    assert c.recv(4) == b"ping"
    c.shutdown(socket.SHUT_WR)
    c.recv(1)
else:
    t = time.monotonic()
    c.sendall(b"x" * n)
    c.shutdown(socket.SHUT_WR)
    c.recv(1)  # returns once the server has read everything and closed
    print(n * 8 / (time.monotonic() - t))
c.close()
"""


def cluster(*args, name, check=True):
    r = subprocess.run([CLUSTER, "--name", name, *args], capture_output=True, text=True, timeout=120)
    if check and r.returncode != 0:
        raise AssertionError(f"cluster {args} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r


def netns_names():
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def link_names():
    out = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def assert_gone(name):
    assert not [n for n in netns_names() if n.startswith(name + "-")]
    assert not [n for n in link_names() if n.startswith(name + "-")]
    assert not Path(f"/run/gemini-cluster-{name}").exists()


class Server:
    """A TCP sink/echo server inside host i, serving `conns` connections."""

    def __init__(self, name, host, port, conns=1):
        self.proc = subprocess.Popen(
            [CLUSTER, "--name", name, "exec", str(host), "--", PY, "-c", SERVER, str(port), str(conns)],
            stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def close(self):
        self.proc.wait(timeout=30)
        assert self.proc.returncode == 0


def client(name, host, addr, port, nbytes=0):
    r = cluster("exec", str(host), "--", PY, "-c", CLIENT, addr, str(port), str(nbytes), name=name)
    return float(r.stdout) if nbytes else None


@pytest.fixture
def name(request):
    """A cluster name unique to this test; torn down whatever happens."""
    names = []

    def make(tag="a"):
        n = f"p{tag}{os.getpid() % 100000}"[:8]
        names.append(n)
        return n

    yield make
    for n in names:
        cluster("down", name=n, check=False)


def test_three_hosts_talk_and_down_leaves_nothing(name):
    n = name()
    out = cluster("up", "3", name=n).stdout.split("\n")
    assert len([l for l in out if l.strip()]) == 3
    addrs = [cluster("addr", str(i), name=n).stdout.strip() for i in range(3)]
    subnet = cluster("addr", "bridge", name=n).stdout.strip().rsplit(".", 1)[0]
    assert addrs == [f"{subnet}.{10 + i}" for i in range(3)]
    assert {f"{n}-h{i}" for i in range(3)} <= netns_names()

    # Every host reaches every other one, its own loopback, and the bridge.
    srv = Server(n, 0, 7000, conns=3)
    client(n, 1, addrs[0], 7000)
    client(n, 2, addrs[0], 7000)
    client(n, 0, "127.0.0.1", 7000)
    srv.close()
    srv = Server(n, 2, 7001)
    client(n, 1, addrs[2], 7001)
    srv.close()
    # A service in the root namespace (etcd, say) listens on the bridge address.
    root_srv = subprocess.Popen([PY, "-c", SERVER, "7004", "1"], stdout=subprocess.PIPE, text=True)
    assert root_srv.stdout.readline().strip() == "ready"
    client(n, 2, f"{subnet}.1", 7004)
    assert root_srv.wait(timeout=30) == 0
    env = cluster("exec", "1", "--", "sh", "-c", "echo $GEMINI_CLUSTER_HOST", name=n).stdout.strip()
    assert env == "1"

    cluster("down", name=n)
    assert_gone(n)
    assert "nothing to remove" in cluster("down", name=n).stdout  # idempotent


def test_rate_caps_throughput(name):
    n = name()
    cluster("up", "2", "--rate", "40mbit", name=n)
    qd = cluster("exec", "0", "--", "tc", "qdisc", "show", "dev", "eth0", name=n).stdout
    assert "tbf" in qd and "40Mbit" in qd, qd
    bridge_side = subprocess.run(["tc", "qdisc", "show", "dev", f"{n}-v1"],
                                 capture_output=True, text=True, check=True).stdout
    assert "40Mbit" in bridge_side
    srv = Server(n, 1, 7002)
    bits_per_s = client(n, 0, cluster("addr", "1", name=n).stdout.strip(), 7002, nbytes=4 << 20)
    srv.close()
    # Shaping can only slow a transfer down, so this bound cannot flake on a
    # busy machine (tbf's burst allows a little over the rate).
    assert bits_per_s < 1.5 * 40e6, bits_per_s


def test_delay_or_clear_error(name):
    n = name()
    r = cluster("up", "2", "--delay", "20ms", name=n, check=False)
    if r.returncode != 0:
        assert "netem" in r.stderr, r.stderr
        assert_gone(n)  # a refused up leaves nothing behind
        pytest.skip("kernel lacks sch_netem: " + r.stderr.strip())
    qd = cluster("exec", "0", "--", "tc", "qdisc", "show", "dev", "eth0", name=n).stdout
    assert "netem" in qd and "20ms" in qd, qd


def test_two_clusters_coexist(name):
    a, b = name("a"), name("b")
    cluster("up", "2", name=a)
    cluster("up", "2", name=b)
    sa = cluster("addr", "bridge", name=a).stdout.strip()
    sb = cluster("addr", "bridge", name=b).stdout.strip()
    assert sa != sb
    cluster("down", name=a)
    assert_gone(a)
    srv = Server(b, 0, 7003)
    client(b, 1, cluster("addr", "0", name=b).stdout.strip(), 7003)
    srv.close()


def test_up_is_idempotent_add_and_remove(name):
    n = name()
    first = cluster("up", "2", name=n).stdout
    assert cluster("up", "2", name=n).stdout == first

    victim = subprocess.Popen([CLUSTER, "--name", n, "exec", "1", "--", "sleep", "1000"])
    deadline = time.monotonic() + 10
    while subprocess.run(["ip", "netns", "pids", f"{n}-h1"], capture_output=True,
                         text=True).stdout.strip() == "":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    cluster("remove", "1", name=n)
    assert victim.wait(timeout=10) != 0  # killed with its host
    assert f"{n}-h1" not in netns_names()
    r = cluster("exec", "1", "--", "true", name=n, check=False)
    assert r.returncode != 0 and "no host 1" in r.stderr

    assert cluster("add", name=n).stdout.strip() == "2"
    assert [l.split()[0] for l in cluster("list", name=n).stdout.splitlines()] == ["0", "2"]
    cluster("down", name=n)
    assert_gone(n)


def test_bad_arguments_are_clear_errors(name):
    n = name()
    r = cluster("up", "2", "--rate", "fast", name=n, check=False)
    assert r.returncode != 0 and "bad --rate" in r.stderr
    r = cluster("up", "2", name="Bad_Name!", check=False)
    assert r.returncode != 0 and "bad --name" in r.stderr
    r = cluster("addr", "0", name=n, check=False)
    assert r.returncode != 0 and "not up" in r.stderr
    assert_gone(n)


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
