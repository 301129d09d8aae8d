"""Failure recovery end to end: `gemini launch` on 4 namespace hosts (m = 2),
real etcd, real PyTorch DDP over gloo. For every scenario the run finishes in
exactly the final state of the uninterrupted run, and the state each resume
started from is bit-identical to the uninterrupted run's at that iteration."""
import json
import os
import subprocess

import pytest

from cluster_fixture import have_cluster_support
from conftest import GEMINI, PYTHON, REPO

pytestmark = pytest.mark.skipif(not have_cluster_support(),
                                reason="needs root, iproute2 and etcd-server")

ITERATIONS = 14
TTL = 3


def launch(tmp_path, name, inject="", extra=(), trainer=()):
    logs = tmp_path / name
    report = tmp_path / f"{name}.json"
    args = [GEMINI, "launch", "--hosts", "4", "--nproc-per-host", "1", "--replicas", "2",
            "--lease-ttl", str(TTL), "--timeout", "240", "--log-dir", str(logs),
            "--report", str(report), *extra]
    if inject:
        args += ["--inject", inject]
    args += ["--", PYTHON, "-m", "gemini.demo_train", "--iterations", str(ITERATIONS),
             "--state-crcs", *trainer]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(out.stdout)
    return json.loads(report.read_text()), logs


def trainer_events(logs):
    with open(logs / "trainer-0.log") as f:
        return [json.loads(l) for l in f if l.startswith("{")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    report, logs = launch(tmp_path_factory.mktemp("ref"), "reference")
    crcs = {e["iteration"]: e["state_crc"] for e in trainer_events(logs)
            if e["event"] == "iteration"}
    return report, crcs


def check(reference, report, logs, kind, source, detect_within=TTL + 1):
    ref_report, ref_crcs = reference
    assert report["final_iteration"] == ITERATIONS
    assert report["final_state_crc"] == ref_report["final_state_crc"]
    starts = [e for e in trainer_events(logs) if e["event"] == "start" and e["resumed_from"]]
    assert starts, "training never resumed"
    for s in starts:  # The resumed state is exactly the uninterrupted run's at that iteration.
        assert s["state_crc"] == ref_crcs[s["resumed_from"]], s
    (ev,) = report["events"]
    assert ev["kind"] == kind and ev["source"] == source, ev
    assert ev["detect_s"] <= detect_within, ev
    assert ev["resumed_iteration"] <= ev["injected_at_iteration"]
    print("EVENT", json.dumps(ev))
    return ev


def test_a_kill_a_trainer(reference, tmp_path):
    report, logs = launch(tmp_path, "a", "kill-trainer:1@5")
    check(reference, report, logs, "software", "local")


def test_b_kill_a_host(reference, tmp_path):
    report, logs = launch(tmp_path, "b", "kill-host:2@5", ["--standby-hosts", "1"])
    ev = check(reference, report, logs, "hardware", "peer")
    print(f"kill-host: detected in {ev['detect_s']:.1f} s, resumed in {ev['resume_s']:.1f} s")


def test_c_kill_two_hosts_of_a_group(reference, tmp_path):
    report, logs = launch(tmp_path, "c", "kill-host:2@6,kill-host:3@6",
                          ["--standby-hosts", "2", "--persist-every", "2"])
    _, ref_crcs = reference
    report["events"] = report["events"][:1]  # Both kills are one failure.
    ev = check(reference, report, logs, "group_lost", "persistent")
    assert ev["resumed_iteration"] % 2 == 0


def test_d_kill_the_root_host(reference, tmp_path):
    report, logs = launch(tmp_path, "d", "kill-root@5", ["--standby-hosts", "1"])
    check(reference, report, logs, "root", "peer")


def test_e_stop_etcd(reference, tmp_path):
    report, logs = launch(tmp_path, "e", "stop-etcd:10@4")
    ref_report, _ = reference
    assert report["final_iteration"] == ITERATIONS
    assert report["final_state_crc"] == ref_report["final_state_crc"]
    (ev,) = report["events"]
    assert ev["kind"] == "etcd" and "completion_resumed_s" in ev, ev
    print("EVENT", json.dumps(ev))


def test_f_freeze_a_host_past_its_lease(reference, tmp_path):
    # Host 2 stalls (every process stopped) well past its lease: the standby
    # replaces it. When it comes back it sees itself declared lost and stands
    # down (fenced): one agent per host id, and training ends as the
    # uninterrupted run does.
    report, logs = launch(tmp_path, "f", "freeze-host:2:8@5", ["--standby-hosts", "1"])
    # A stopped agent still accepts TCP connections (the kernel does) but never
    # answers: each of the two probes that declare it lost waits 700 ms.
    ev = check(reference, report, logs, "hardware", "peer", detect_within=TTL + 3)
    assert ev["inject"] == "freeze-host:2:8@5"
    fenced = [p for p in logs.glob("agent-*.log") if "fenced" in p.read_text()]
    assert len(fenced) == 1, [p.name for p in logs.glob("agent-*.log")]
    # Its node's `gemini launch` saw its agent stand down, and said so.
    fenced_nodes = [p for p in logs.glob("node-*.log") if "fenced: this node" in p.read_text()]
    assert len(fenced_nodes) == 1, [p.name for p in logs.glob("node-*.log")]


def test_g_garbage_and_forged_values_in_etcd(reference, tmp_path):
    # A hostile writer puts garbage into the keys every agent reads, a config
    # asking to run a command, a plan that is not JSON, and provider requests
    # for live hosts. No agent crashes, nothing runs, no host is duplicated,
    # and training ends exactly as the uninterrupted run does.
    report, logs = launch(tmp_path, "g", "forge-etcd@4")
    ref_report, _ = reference
    assert report["final_iteration"] == ITERATIONS
    assert report["final_state_crc"] == ref_report["final_state_crc"]
    assert not (logs / "forged-command-ran").exists()
    nodes = {p.name: p.read_text() for p in logs.glob("node-*.log")}
    assert len(nodes) == 4, nodes.keys()  # No replacement machine was started.
    for name, text in nodes.items():
        assert "the job finished" in text and "agent exited" not in text, (name, text[-2000:])
    agents = "".join(p.read_text() for p in logs.glob("agent-*.log"))
    assert "restored epoch" in agents  # The root put the plan back.


def test_h_an_etcd_member_dies_then_a_host(reference, tmp_path):
    # A 3-member etcd loses the member every client talks to first; later a
    # host dies. Training, completion records and recovery go on through the
    # other two members, and nothing is lost.
    report, logs = launch(tmp_path, "h", "kill-etcd-member:0@4,kill-host:2@8",
                          ["--etcd-members", "3", "--standby-hosts", "1"])
    member = report["events"][0]
    assert member["kind"] == "etcd_member" and member["detect_s"] is None, member
    report["events"] = report["events"][1:]
    ev = check(reference, report, logs, "hardware", "peer")
    assert ev["injected_at_iteration"] >= 8


def test_i_a_lost_host_with_no_replacement_leaves_the_job(reference, tmp_path):
    # `--nnodes 3:4` and no standby: the job goes on with the 3 hosts left.
    # Every trainer restarts with world size 3 and reshards the newest
    # complete iteration of the 4-rank world from the agents' memory (the
    # lost host's shard from its replica): the restored state is bit for bit
    # the uninterrupted run's at that iteration. Replication and completion
    # go on over the 3 members (each holds its own shard and one replica).
    report, logs = launch(tmp_path, "i", "kill-host:2@5", ["--min-hosts", "3"])
    _, ref_crcs = reference
    assert report["final_iteration"] == ITERATIONS
    (ev,) = report["events"]
    assert ev["plan_kind"] == "shrink", ev
    assert ev["detect_s"] <= TTL + 1, ev
    # Nothing older than the newest complete iteration when the host died.
    assert ev["injected_at_iteration"] - 1 <= ev["resumed_iteration"] <= ev["injected_at_iteration"]
    starts = [e for e in trainer_events(logs) if e["event"] == "start" and e["resumed_from"]]
    assert starts and starts[-1]["world"] == 3, starts
    for s in starts:
        assert s["state_crc"] == ref_crcs[s["resumed_from"]], s
    assert starts[-1]["resumed_from"] == ev["resumed_iteration"]
    nodes = {p.name: p.read_text() for p in logs.glob("node-*.log")}
    assert len(nodes) == 4, nodes.keys()  # No machine was asked for or started.
    memory = report["memory"]["hosts"]
    assert sorted(h["host"] for h in memory) == [0, 1, 3], memory
    # Shards differ by a few bytes between ranks: about 2x, not exactly.
    assert all(h["own_bytes"] > 0 and h["factor"] > 1.9 for h in memory), memory
    print("EVENT", json.dumps(ev), "MEMORY", json.dumps(memory))


def test_j_a_shrunk_job_grows_back_when_a_machine_comes(reference, tmp_path):
    # As test_i, then a new machine joins as a standby (`gemini launch
    # --standby`): it takes back host id 2, and all 4 hosts reshard the newest
    # complete iteration of the 3-rank world onto 4 ranks. Each restored state
    # is bit for bit the state that world had at that iteration.
    # Iterations of 0.5 s at least, so that the new machine (a few seconds to
    # start and register) comes while there is training left.
    report, logs = launch(tmp_path, "j", "kill-host:2@3,add-standby@5", ["--min-hosts", "3"],
                          trainer=["--sleep", "0.5"])
    _, ref_crcs = reference
    assert report["final_iteration"] == ITERATIONS
    shrink, grow = report["events"]
    assert shrink["plan_kind"] == "shrink" and grow["plan_kind"] == "grow", report["events"]
    assert grow["resumed_iteration"] >= grow["injected_at_iteration"] - 1, grow
    events = trainer_events(logs)
    starts = [(i, e) for i, e in enumerate(events) if e["event"] == "start" and e["resumed_from"]]
    assert [e["world"] for _, e in starts][-2:] == [3, 4], starts
    (_, small), (at, big) = starts[-2], starts[-1]
    assert small["state_crc"] == ref_crcs[small["resumed_from"]], small
    assert big["resumed_from"] == grow["resumed_iteration"]
    seen = [e for e in events[:at] if e["event"] == "iteration"
            and e["iteration"] == big["resumed_from"]]
    assert seen and seen[-1]["state_crc"] == big["state_crc"], (seen, big)
    memory = report["memory"]["hosts"]
    assert sorted(h["host"] for h in memory) == [0, 1, 2, 3], memory
    assert all(h["own_bytes"] > 0 and h["factor"] > 1.9 for h in memory), memory
    print("EVENTS", json.dumps(report["events"]), "MEMORY", json.dumps(memory))


def test_k_a_lost_group_with_no_replacement_shrinks_from_the_persistent_tier(reference, tmp_path):
    # Hosts 2 and 3, a whole copies:2 group, die at once; no standby, and
    # `--nnodes 2:4`: memory lost their shards, so the 2 hosts left reshard
    # the newest complete persisted iteration of the 4-rank world.
    report, logs = launch(tmp_path, "k", "kill-host:2@6,kill-host:3@6",
                          ["--min-hosts", "2", "--persist-every", "2"])
    _, ref_crcs = reference
    assert report["final_iteration"] == ITERATIONS
    ev = report["events"][0]  # Both kills are one failure.
    assert ev["plan_kind"] == "shrink" and ev["source"] == "persistent", ev
    assert ev["resumed_iteration"] % 2 == 0 and ev["resumed_iteration"] > 0, ev
    starts = [e for e in trainer_events(logs) if e["event"] == "start" and e["resumed_from"]]
    assert starts[-1]["world"] == 2 and starts[-1]["resumed_from"] == ev["resumed_iteration"]
    for s in starts:
        assert s["state_crc"] == ref_crcs[s["resumed_from"]], s
    memory = report["memory"]["hosts"]
    assert sorted(h["host"] for h in memory) == [0, 1], memory
    print("EVENT", json.dumps(ev))
