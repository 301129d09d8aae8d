"""gemini.torch.Checkpointer restored onto another world size (gemini.reshard):
DDP state saved by 4 ranks and FSDP2 shards saved by 4 ranks restore bit for
bit into 2 ranks (FSDP2 then into 3: uneven shards); saves go on into this
world's generation of the job (gemini.generations) and the older generation
is dropped once superseded. Forged or inconsistent DTensor metadata is refused
with a GeminiError and nothing is restored."""
import re
import subprocess

import pytest
import torch

from conftest import PYTHON, helper


def torchrun(agent, world, kind, last):
    """Runs tests/helpers/reshard_train.py: {"restored"/"saved": (step, crc, store job)}."""
    r = subprocess.run([PYTHON, "-m", "torch.distributed.run", "--standalone",
                        f"--nproc-per-node={world}", helper("reshard_train.py"), kind, str(last)],
                       capture_output=True, text=True, timeout=120, env=agent.env())
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    found = re.findall(r"^(restored|saved) (\d+) crc (\w+) into (\S+)$", r.stdout, re.M)
    return {what: (int(step), crc, job) for what, step, crc, job in found}


def jobs(agent):
    return {j["job"]: (j["world_size"], j["complete_iteration"]) for j in agent.status()["jobs"]}


def test_ddp_four_ranks_to_two_and_on(agent):
    first = torchrun(agent, 4, "ddp", 3)
    assert first["restored"][0] == 0 and first["saved"][:1] == (3,)
    assert jobs(agent) == {"ddp": (4, 3)}
    second = torchrun(agent, 2, "ddp", 5)
    # Restored bit for bit: the whole model and optimizer state's CRC as saved.
    assert second["restored"] == (3, first["saved"][1], "ddp.world2")
    # Two ranks saved into their generation; once it held a complete iteration
    # newer than the restored one, the 4-rank generation was dropped.
    assert jobs(agent) == {"ddp.world2": (2, 5)}
    third = torchrun(agent, 2, "ddp", 6)
    assert third["restored"] == (5, second["saved"][1], "ddp.world2")


def test_fsdp2_four_ranks_to_two_to_three(agent):
    first = torchrun(agent, 4, "fsdp", 3)
    second = torchrun(agent, 2, "fsdp", 5)
    assert second["restored"] == (3, first["saved"][1], "fsdp.world2")
    assert jobs(agent) == {"fsdp.world2": (2, 5)}
    # 3 ranks: uneven shards (40 rows: 14/14/12, 5 rows: 2/2/1). The bare name
    # is free again, so the 3-rank generation is "fsdp".
    third = torchrun(agent, 3, "fsdp", 6)
    assert third["restored"] == (5, second["saved"][1], "fsdp")
    # One checkpoint after the restore: the 2-rank generation stays until this
    # one's is complete at a newer step, so a crash meanwhile loses nothing.
    assert jobs(agent) == {"fsdp": (3, 6), "fsdp.world2": (2, 5)}


# -------------------------------------------- forged or inconsistent metadata
FULL = torch.arange(12, dtype=torch.float32).reshape(4, 3)


class Model(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(4, 3))


def save_chunks(agent, job, chunks, extra=None):
    """Iteration 5 of `job`, saved by len(chunks) ranks, each holding model.w's
    chunk (global shape, offset, rows) described as a DTensor chunk in its meta."""
    from gemini import _gemini, codec
    from gemini.state import entry

    client = _gemini.Client(agent.socket)
    for rank, (gshape, offset, rows) in enumerate(chunks):
        local = FULL[rows[0]:rows[1]].clone()
        meta = {"step": 5, "dtensor": {"model.w": [gshape, offset]}, **(extra or {})}
        blob = torch.frombuffer(bytearray(codec.dumps(meta)), dtype=torch.uint8)
        client.save(job, rank, len(chunks), 5, [entry("r/model.w", local),
                                                 entry("r/meta", blob)])


def restore(agent, job):
    import gemini.torch as gt

    model = Model()
    ckpt = gt.Checkpointer(model, job=job, socket=agent.socket, rng=False, interleave=False)
    try:
        return ckpt.load_latest(), model.w.detach()
    finally:
        ckpt.close()


def test_chunks_saved_by_two_ranks_assemble_into_one(agent):
    save_chunks(agent, "halves", [([4, 3], [0, 0], (0, 2)), ([4, 3], [2, 0], (2, 4))])
    step, w = restore(agent, "halves")
    assert step == 5 and torch.equal(w, FULL)
    # Chunks saved alike along a replicated mesh dimension are used once.
    save_chunks(agent, "replicas", [([4, 3], [0, 0], (0, 4)), ([4, 3], [0, 0], (0, 4))])
    step, w = restore(agent, "replicas")
    assert step == 5 and torch.equal(w, FULL)


@pytest.mark.parametrize("chunks,extra,error", [
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [1, 0], (1, 4))], None, "saved chunks overlap"),
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [3, 0], (3, 4))], None, "cover 9 of the 12 elements"),
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [3, 0], (2, 4))], None, "outside the global shape"),
    ([([5, 3], [0, 0], (0, 2)), ([5, 3], [2, 0], (2, 4))], None,
     r"global shape \(5, 3\) in the checkpoint, \(4, 3\) here"),
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [2], (2, 4))], None, "outside the global shape"),
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [2, -1], (2, 4))], None,
     "lists of non-negative integers"),
    ([([4, 3], [0, 0], (0, 2)), ([4, 3], [2, 0], (2, 4))], {"zero": True},
     "ZeroRedundancyOptimizer"),
], ids=["overlap", "gap", "outside", "global-shape", "rank", "negative", "zero"])
def test_inconsistent_dtensor_metadata_is_refused(agent, chunks, extra, error):
    from gemini.torch import GeminiError

    save_chunks(agent, "forged", chunks, extra)
    with pytest.raises(GeminiError, match=error):
        restore(agent, "forged")
    # Nothing restored: the model is as it was.
    model = Model()
    assert torch.equal(model.w.detach(), torch.zeros(4, 3))


def test_generation_plan():
    from gemini.generations import plan

    # Nothing saved: saves go to the job's own name.
    p = plan("j", 2, [{}, {}])
    assert (p.source, p.iteration, p.target, p.superseded) == (None, -1, "j", {})
    # The newest complete iteration wins, whatever its world; the smallest any
    # rank's agent reports counts.
    p = plan("j", 2, [{"j": [4, 9], "j.world2": [2, 7]}, {"j": [4, 8], "j.world2": [2, 7]}])
    assert (p.source, p.source_world, p.iteration, p.target) == ("j", 4, 8, "j.world2")
    assert p.superseded == {"j": 8}
    # The same world: saves go on into the source.
    p = plan("j", 2, [{"j": [4, 3], "j.world2": [2, 7]}])
    assert (p.source, p.target, p.superseded) == ("j.world2", "j.world2", {"j": 3})
    # A world whose bare name is free takes it; unrelated jobs are not considered.
    p = plan("j", 3, [{"j.world2": [2, 7]}])
    assert (p.source, p.target) == ("j.world2", "j")
    from gemini.generations import belongs
    assert belongs("j", "j.world16") and not belongs("j", "jx") and not belongs("j", "j.world")
    from gemini.torch import GeminiError
    with pytest.raises(GeminiError, match="world size 2 on one agent and 4 on another"):
        plan("j", 2, [{"j": [2, 1]}, {"j": [4, 1]}])
    with pytest.raises(GeminiError, match="not the 4 its name says"):
        plan("j", 2, [{"j.world4": [2, 1]}])
    # `gemini launch` names the store job (the agents replicate that one):
    # after a shrink from 4 to 3 ranks, restore from "j", save into "j.world3",
    # even where "j" was already dropped and the bare name is free.
    p = plan("j", 3, [{"j": [4, 5]}], target="j.world3")
    assert (p.source, p.source_world, p.iteration, p.target) == ("j", 4, 5, "j.world3")
    p = plan("j", 2, [{"j.world3": [3, 9]}], target="j.world2")
    assert (p.source, p.target, p.superseded) == ("j.world3", "j.world2", {"j.world3": 9})
    with pytest.raises(GeminiError, match="not job 'j'"):
        plan("j", 2, [{}], target="k.world2")
    with pytest.raises(GeminiError, match="world size 3, not this world's 2"):
        plan("j", 2, [{"j.world3": [3, 9]}], target="j.world3")


def test_an_agent_holding_no_shard_of_a_job_gives_no_view_of_it():
    # Under `gemini launch` an agent knows the job before its first checkpoint
    # (its coordinator sets the complete iteration): world size 0 there.
    import json

    from gemini.generations import local_view

    class Agent:
        def status_json(self):
            return json.dumps({"jobs": [{"job": "j", "world_size": 0},
                                        {"job": "j.world2", "world_size": 2},
                                        {"job": "other", "world_size": 3}]})

        def complete_iteration(self, job):
            return {"j": 5, "j.world2": 7}[job]

    assert local_view(Agent(), "j") == {"j.world2": [2, 7]}
