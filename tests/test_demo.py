"""`gemini demo` end to end (short run): the resumed losses equal the uninterrupted run's."""
import json
import subprocess

from conftest import GEMINI


def test_demo_resumes_bit_for_bit():
    out = subprocess.run([GEMINI, "demo", "--hosts", "1", "--iterations", "10", "--kill-at", "6",
                          "--json"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout[out.stdout.index("{"):])
    assert report["resumed_from"] in (5, 6)  # The copy of 6 may not have committed at the kill.
    assert report["losses_compared"] >= 4
    assert report["loss_mismatches"] == 0


def test_demo_on_four_namespace_hosts():
    from cluster_fixture import have_cluster_support
    if not have_cluster_support():
        import pytest
        pytest.skip("needs root, iproute2 and etcd-server")
    out = subprocess.run([GEMINI, "demo", "--hosts", "4", "--iterations", "10", "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out.stdout)
    assert report["same_final_state"]
    (ev,) = report["failure"]["events"]
    assert ev["kind"] == "hardware" and ev["source"] == "peer"
    assert "where each shard lives" in out.stderr
