"""gemini.dcp: torch.distributed.checkpoint through Gemini's memory. DTensors
saved by 4 ranks load bit-exactly into 2 ranks (DCP's planner reshards, the
reader serves byte ranges from the saving ranks' shards); an exported
iteration loads with stock dcp.load; a tampered value cannot run code."""
import os
import subprocess

import pytest
import torch

from conftest import PYTHON, helper


def torchrun(agent, world, *args):
    r = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc-per-node={world}", helper("dcp_reshard.py"), *args],
                       capture_output=True, text=True, timeout=240,
                       env=agent.env(GEMINI_JOB="dcp"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout.strip().splitlines()[-1]


STOCK_LOAD = r"""
import sys, zlib, torch
import torch.distributed.checkpoint as dcp
sys.path.insert(0, sys.argv[2])
from dcp_reshard import full_state, crc
full = full_state()
sd = {"model": {k: torch.zeros_like(v) for k, v in full.items()},
      "extra": {"step": -1, "note": ""}, "plain": torch.zeros(5, dtype=torch.int64)}
dcp.load(sd, checkpoint_id=sys.argv[1], no_dist=True)
assert "gemini" not in sys.modules, "stock dcp.load imported gemini"
print(f"step - extra {sd['extra']['step']} {sd['extra']['note']} " +
      " ".join(f"{k}:{crc(sd['model'][k]):08x}" for k in sorted(full)))
"""


def test_dtensors_saved_by_four_ranks_load_into_two_and_export(agent, tmp_path):
    saved = torchrun(agent, 4, "save", "7")
    loaded = torchrun(agent, 2, "load")
    assert loaded == saved, (saved, loaded)
    assert loaded.startswith("step 7 extra 7 hello")
    # Exported as a stock DCP directory, read by a process that never imports gemini.
    out = tmp_path / "exported"
    r = subprocess.run([PYTHON, "-m", "gemini.dcp", "export", "--job", "dcp", str(out)],
                       capture_output=True, text=True, timeout=120, env=agent.env())
    assert r.returncode == 0, r.stdout + r.stderr
    assert (out / ".metadata").exists()
    r = subprocess.run([PYTHON, "-c", STOCK_LOAD, str(out), os.path.dirname(helper("x"))],
                       capture_output=True, text=True, timeout=120,
                       env=dict(agent.env(), PYTHONPATH=""))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().split(" ", 2)[2] == saved.split(" ", 2)[2]


class Planted:
    """A value whose unpickling would run code (writes a marker file)."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_value_that_would_run_code_is_refused(agent, tmp_path):
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException

    from gemini.dcp import MemoryReader, MemoryWriter

    marker = tmp_path / "code-ran"
    sd = {"w": torch.ones(3), "evil": Planted(str(marker))}
    dcp.save(sd, storage_writer=MemoryWriter(3, job="evil", socket=agent.socket), no_dist=True)
    assert not marker.exists()
    target = {"w": torch.zeros(3), "evil": None}
    # DCP wraps the reader's GeminiError in its CheckpointException.
    with pytest.raises(CheckpointException, match="not plain data .refused, nothing run.: "
                                                  "Weights.*Unsupported global.*open"):
        dcp.load(target, storage_reader=MemoryReader(job="evil", socket=agent.socket),
                 no_dist=True)
    assert not marker.exists(), "unpickling the planted value ran code"
    # Plain values still load.
    sd = {"w": torch.full((3,), 2.0), "cfg": {"lr": 0.1, "name": "x"}}
    dcp.save(sd, storage_writer=MemoryWriter(5, job="plain", socket=agent.socket), no_dist=True)
    target = {"w": torch.zeros(3), "cfg": {"lr": 0.0, "name": ""}}
    dcp.load(target, storage_reader=MemoryReader(job="plain", socket=agent.socket), no_dist=True)
    assert torch.equal(target["w"], torch.full((3,), 2.0)) and target["cfg"] == sd["cfg"]
