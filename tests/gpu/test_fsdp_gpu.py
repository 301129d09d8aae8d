"""FSDP2 (fully_shard) on every GPU (at least 2): save with gemini.fsdp, perturb,
load, check bit-exact equality of every local shard and optimizer state."""
import json
import os
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
    pytest.skip("needs 2 CUDA devices", allow_module_level=True)
pytest.importorskip("gemini._gemini_cuda")

HELPER = os.path.join(os.path.dirname(__file__), "helpers", "fsdp_roundtrip.py")


def test_fsdp_save_perturb_load_bit_exact(agent, tmp_path):
    n = torch.cuda.device_count()
    env = agent.env(NCCL_NVLS_ENABLE="0", TORCH_SYMM_MEM_DISABLE_MULTICAST="1",
                    GEMINI_TEST_OUT=tmp_path)
    out = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                          f"--nproc_per_node={n}", HELPER],
                         env=env, capture_output=True, text=True, timeout=300)
    results = [json.load(open(tmp_path / f"rank{r}.json")) for r in range(n)
               if (tmp_path / f"rank{r}.json").exists()]
    print(json.dumps(results, indent=1))
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len(results) == n
    for r in results:
        assert r["restored_step"] == 3 and not r["mismatched"] and r["lr_restored"]
        assert r["changed_by_perturbation"] > 0
