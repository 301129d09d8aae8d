"""Reed-Solomon redundancy: `gemini placement --redundancy rs:K+F` prints the
exact recovery probability, `gemini bench erasure` round-trips a shard through
K+F fragments with data fragments lost, and `gemini launch --redundancy rs:4+2`
on 6 namespace hosts survives two hosts killed at once: the replacements
rebuild their shards from the fragments the other four hold, and training ends
bit-identical to an uninterrupted run."""
import json
import subprocess
from math import comb

import pytest

from cluster_fixture import have_cluster_support
from conftest import GEMINI, PYTHON


def gemini(*args):
    r = subprocess.run([GEMINI, *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_placement_rs_probability_is_exact():
    rc, out, err = gemini("placement", "-n", "12", "--redundancy", "rs:4+2", "-k", "3", "--json")
    assert rc == 0, err
    p = json.loads(out)
    assert p["redundancy"] == "rs:4+2" and p["tolerates"] == 2 and p["memory_factor"] == 1.5
    assert p["groups"] == [list(range(6)), list(range(6, 12))]
    # Lost only when all 3 failures hit one group of 6.
    assert abs(p["recovery_probability"] - (1 - 2 * comb(6, 3) / comb(12, 3))) < 1e-12
    rc, _, err = gemini("placement", "-n", "12", "--redundancy", "rs:4+0")
    assert rc == 2 and "F (parity fragments) must be 1 or more" in err


def test_bench_erasure_round_trips():
    rc, out, err = gemini("bench", "erasure", "--bytes", "4MiB", "--redundancy", "rs:3+2",
                          "--repeats", "1", "--json")
    assert rc == 0, err
    b = json.loads(out)
    assert b["verified"] and b["lost_data_fragments"] == 2
    assert b["bytes_sent_per_checkpoint"] < b["bytes_sent_copies_same_tolerance"]
    assert b["encode_ratio"] > 0 and b["decode_ratio"] > 0


def launch(tmp_path, name, redundancy, extra=()):
    logs, report = tmp_path / name, tmp_path / f"{name}.json"
    args = [GEMINI, "launch", "--hosts", "6", "--nproc-per-host", "1", "--redundancy", redundancy,
            "--lease-ttl", "3", "--timeout", "240", "--log-dir", str(logs), "--report",
            str(report), *extra, "--", PYTHON, "-m", "gemini.demo_train", "--iterations", "12",
            "--state-crcs"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    print(out.stdout)
    with open(logs / "trainer-0.log") as f:  # Rank 0 reports for the job.
        events = [json.loads(l) for l in f if l.startswith("{")]
    return json.loads(report.read_text()), events


@pytest.mark.skipif(not have_cluster_support(), reason="needs root, iproute2 and etcd-server")
def test_rs_4_2_survives_two_hosts_killed_at_once(tmp_path):
    # Reference: uninterrupted, with copies:3 (which also survives any two losses).
    ref, ref_events = launch(tmp_path, "copies3", "copies:3")
    ref_crcs = {e["iteration"]: e["state_crc"] for e in ref_events if e["event"] == "iteration"}
    got, events = launch(tmp_path, "rs42", "rs:4+2",
                         ["--standby-hosts", "2", "--inject", "kill-host:2@5,kill-host:3@5"])
    assert got["final_iteration"] == 12
    assert got["final_state_crc"] == ref["final_state_crc"]
    # Every rank resumed; each holds 1/6 of the replicated state, so rank 0's
    # state includes the bytes of ranks 2 and 3 that their replacements
    # rebuilt from fragments: bit-identical to the uninterrupted run's.
    starts = [e for e in events if e["event"] == "start" and e["resumed_from"]]
    assert len(starts) == 1, starts
    assert starts[0]["state_crc"] == ref_crcs[starts[0]["resumed_from"]], starts
    kinds = {(ev["kind"], ev["source"]) for ev in got["events"]}
    assert kinds == {("hardware", "peer")}, got["events"]
    assert all(ev["iterations_lost"] == 0 for ev in got["events"]), got["events"]
    # Memory: a host keeps its own shard whole and a quarter of each of the
    # other five (2.25x); copies:3 keeps two whole replicas of others (3x).
    rs_factor, copies_factor = got["memory"]["factor_max"], ref["memory"]["factor_max"]
    print(f"checkpoint memory per host: rs:4+2 {rs_factor:.3f}x, copies:3 {copies_factor:.3f}x")
    assert abs(copies_factor - 3) < 0.01
    assert abs(rs_factor - 2.25) < 0.01


@pytest.mark.skipif(not have_cluster_support(), reason="needs root, iproute2 and etcd-server")
def test_bench_replicate_measures_copies_and_fragments():
    rc, out, err = gemini("bench", "replicate", "--bytes", "8MiB", "--repeats", "1", "--json")
    assert rc == 0, err
    b = json.loads(out)
    copies, rs = b["schemes"]
    assert (copies["redundancy"], copies["hosts"]) == ("copies:2", 2)
    assert (rs["redundancy"], rs["hosts"]) == ("rs:4+2", 6)
    assert copies["bytes_sent_per_checkpoint"] == 8 << 20
    assert rs["bytes_sent_per_checkpoint"] == 5 * (2 << 20)  # A quarter to each of 5 holders.
    for s in (copies, rs):
        assert s["ratio"] > 0 and s["latency_ratio"] > 0 and len(s["fetch_seconds"]) == 1
    assert b["ratio"] == min(copies["ratio"], rs["ratio"])
    assert b["decode_vs_single_peer_fetch"] > 0
