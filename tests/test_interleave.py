"""Traffic interleaving end to end: `gemini bench interleave` on namespace hosts, small model.

No timing is asserted (timings belong to the benchmark); what must hold in any
mode: every rank's checkpoint of every iteration has the same CRC in modes
none, naive and interleave; no replica due before a step or an iteration was
late or failed; no checkpoint was skipped; interleave mode profiled the
training traffic, measured the link and placed chunks in idle spans.
"""
import json
import subprocess

import pytest

from cluster_fixture import have_cluster_support
from conftest import GEMINI


def test_modes_keep_checkpoints_identical_and_interleave_uses_spans():
    if not have_cluster_support():
        pytest.skip("needs root, iproute2 and etcd-server")
    out = subprocess.run([GEMINI, "bench", "interleave", "--iterations", "20", "--measure", "3",
                          "--warmup", "5", "--dim", "256", "--layers", "3", "--batch", "512",
                          "--rate", "200mbit", "--modes", "none,naive,interleave", "--json"],
                         capture_output=True, text=True, timeout=900)
    r = json.loads(out.stdout) if out.stdout.lstrip().startswith("{") else {}
    assert out.returncode == 0, (r.get("checks", {}).get("problems"), r.get("every_k"), r.get("logs"), out.stderr[-2000:])
    assert r["checks"]["ok"], r["checks"]
    assert r["checks"]["checkpoints_compared"] >= 3 * 4 * 12
    assert set(r["iter_s"]) == {"none", "naive", "interleave"}
    agent = r["modes"]["interleave"]["agent"]
    assert agent["schedule"]["ready"], agent["schedule"]
    assert agent["gated_chunks"] > 0
    assert agent["link"]["bandwidth_Bps"] > 0
    assert agent["profiler"]["profile"]["ops"], "the DDP hook reported no allreduce"
    assert r["every_k"] >= 1 and r["idle_s_per_iter"] > 0
    assert r["modes"]["none"]["agent"]["mode"] == "none"


def test_cuda_without_a_gpu_is_a_clear_error():
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU (scripts/gpu-check --interleave runs it)")
    out = subprocess.run([GEMINI, "bench", "interleave", "--device", "cuda"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 2, out.stderr
    assert "sees no CUDA device" in out.stderr, out.stderr
