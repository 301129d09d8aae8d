"""Multi-machine replication on real namespace hosts with a real etcd."""
import signal
import subprocess
import time

import pytest

from cluster_fixture import Cluster, have_cluster_support
from conftest import GEMINI, PYTHON, helper

pytestmark = pytest.mark.skipif(not have_cluster_support(),
                                reason="needs root, iproute2 and etcd-server")


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path, hosts=4, replicas=2)
    yield c
    c.down()


def save_all(cluster, first, last, sleep=0.0, hosts=None):
    """Rank i saves on host i; returns the processes (already started)."""
    procs = []
    for h in hosts if hosts is not None else range(cluster.n):
        procs.append(subprocess.Popen(
            cluster.exec_args(h) + [PYTHON, helper("rank_saver.py"), str(h), str(cluster.n),
                                    str(first), str(last), str(sleep)],
            env=cluster.env(h), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    cluster.procs += procs
    return procs


def wait_all(procs, timeout=120):
    for p in procs:
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err


def test_replicas_on_holders_then_owner_host_dies(cluster):
    wait_all(save_all(cluster, 1, 5))
    assert cluster.wait_complete(5)
    st = cluster.status()["cluster"]
    for rank in range(4):
        r = st["ranks"][str(rank)]
        held = {h["host"]: h["iterations"] for h in r["held_by"]}
        assert sorted(held) == r["holders"], (rank, r)  # Exactly the placement's holders.
        assert all(5 in its for its in held.values()), (rank, held)
    # Host 2 dies (hardware failure): rank 2's shard of iteration 5 survives on host 3 only.
    # Every shard of 5 can still be fetched, from a live holder, into a host that
    # did not hold it, and is bit-identical.
    cluster.remove_host(2)
    for rank in range(4):
        into = 3 if rank in (0, 1) else 0
        out = subprocess.run([GEMINI, "fetch", "--socket", cluster.socket(into), "--job", "job",
                              "--rank", str(rank), "--iteration", "5"],
                             capture_output=True, text=True)
        assert out.returncode == 0, (rank, out.stderr)
        check = subprocess.run([PYTHON, helper("rank_loader.py"), str(rank), "5"],
                               env=cluster.env(into), cwd=helper(""), capture_output=True,
                               text=True)
        assert check.stdout.strip() == "identical", (rank, check.stdout + check.stderr)


def test_hostile_peers_during_replication(cluster):
    st = cluster.status()["cluster"]
    targets = [h["address"].rsplit(":", 1) for h in st["hosts"]]
    attackers = [subprocess.Popen(
        cluster.exec_args(3) + [PYTHON, helper("hostile_peer.py"), addr, port,
                                str(cluster.secret), "job", "6"],
        stdout=subprocess.PIPE, text=True) for addr, port in targets]
    cluster.procs += attackers
    wait_all(save_all(cluster, 1, 30, sleep=0.1), timeout=180)
    counts = [int(a.communicate(timeout=60)[0].split()[1]) for a in attackers]
    assert all(c > 10 for c in counts), counts
    assert cluster.wait_complete(30)
    assert all(p.poll() is None for p in cluster.agents.values())  # Every agent still serves.
    for rank in range(4):  # Holder replicas are bit-identical.
        holder = rank ^ 1
        check = subprocess.run([PYTHON, helper("rank_loader.py"), str(rank), "30"],
                               env=cluster.env(holder), cwd=helper(""),
                               capture_output=True, text=True)
        assert check.stdout.strip() == "identical", (rank, check.stdout + check.stderr)


def test_complete_never_runs_ahead_of_a_delayed_holder(cluster):
    wait_all(save_all(cluster, 1, 3))
    assert cluster.wait_complete(3)
    slow = cluster.agents[1]
    slow.send_signal(signal.SIGSTOP)  # Host 1 holds rank 0's replica and owns rank 1.
    try:
        procs = save_all(cluster, 4, 6, hosts=[0, 2, 3])
        time.sleep(3)
        # Rank 0's replicas of 4.. cannot be on host 1, and rank 1 saved nothing new.
        assert cluster.complete(host=2) == 3
    finally:
        slow.send_signal(signal.SIGCONT)
    wait_all(save_all(cluster, 4, 6, hosts=[1]))
    wait_all(procs)
    assert cluster.wait_complete(6)
