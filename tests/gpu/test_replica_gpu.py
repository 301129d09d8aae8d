"""gemini.gpu_replica on 2 GPUs, one agent each: per-iteration FSDP2 checkpoints
replicated over NCCL in the naive, overlap and interleave modes (CRCs by the
GPU kernel) and in overlap with CRCs on host threads; every checkpoint committed
locally and as a replica (the holder's CRCs equal the owner's); the newest restores bit-exact from the rank's own agent and from the
replica the other rank's agent holds; interleave gated chunks on idle spans."""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
    pytest.skip("needs 2 CUDA devices", allow_module_level=True)
pytest.importorskip("gemini._gemini_cuda")

from conftest import Agent  # noqa: E402

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "replica_roundtrip.py")


def test_replicated_checkpoints_restore_from_both_holders(tmp_path):
    agents = [Agent(tmp_path, budget="1GiB") for _ in range(2)]
    try:
        env = agents[0].env(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
                            GEMINI_TEST_OUT=tmp_path,
                            GEMINI_SOCKETS=",".join(a.socket for a in agents))
        out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                              "--nproc_per_node=2", HELPER],
                             env=env, capture_output=True, text=True, timeout=300)
        results = [json.load(open(tmp_path / f"rank{r}.json")) for r in range(2)
                   if (tmp_path / f"rank{r}.json").exists()]
        print(json.dumps(results, indent=1))
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
        assert len(results) == 2
        for r in results:
            for mode, m in r.items():
                c = m["counters"]
                assert m["chunks"] >= 3, mode  # several chunks: sub-buffers are reused
                assert m["restored"] == m["saved"], mode
                assert not m["local_mismatched"] and not m["replica_mismatched"], mode
                assert c["saves"] == 8 and c["committed"] == 8, mode
                assert c["replicas_committed"] == 8 and c["crc_mismatch"] == 0, mode
            assert r["interleave"]["counters"]["plan"] is not None
            assert r["interleave"]["counters"]["gated_chunks"] > 0
    finally:
        for a in agents:
            a.stop()
