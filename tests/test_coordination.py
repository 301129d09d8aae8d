"""Coordination at scale, small: `gemini bench coordination` runs simulated
agents (real etcd connections, leases, mirrors, root election, completion
reports over the authenticated peer protocol) against a real etcd, crashes
some, and recovers. What must hold at any size and on any machine: every
iteration becomes complete, every crashed agent is detected and replaced, the
job runs again and completes iterations afterwards, and an agent's etcd
requests in steady state are about its heartbeat, not its iterations. No
timing is asserted: timings belong to the benchmark's output."""
import json
import subprocess

from conftest import GEMINI


def test_bench_coordination_detects_replaces_and_completes():
    r = subprocess.run([GEMINI, "bench", "coordination", "--agents", "24", "--rates", "1,5",
                        "--kills", "1,3", "--lease-ttl", "3", "--phase-s", "6", "--json"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    b = json.loads(r.stdout)
    assert b["ok"] and b["agents"] == 24
    assert b["idle"]["etcd_requests_per_s_per_agent"] > 0
    for phase in b["steady"]:
        assert phase["never_complete"] == 0, phase
        assert phase["iterations"] > 0 and phase["complete_ms_p99"] > 0
        # The heartbeat is one keepalive per TTL/3 (1/s here). Five times the
        # iterations costs about the same: reports go to the root, not etcd.
        assert phase["etcd_requests_per_s_per_agent"] < 3, phase
        assert phase["requests_ratio_vs_idle"] > 0, phase
    for kill in b["kills"]:
        assert kill["detected"] == kill["killed"] > 0, kill
        assert kill["recover_s"] > 0 and kill["completes_after"], kill
    assert b["detect_s_max"] > 0 and b["plan_s_max"] >= 0
