"""Checkpoint state on torch 2.x: no pickle on the load path (a planted pickle
cannot run code), every torch dtype, the optimizer hooked rather than replaced."""
import os
import pickle
import random
import subprocess
import warnings

import numpy as np
import pytest
import torch

from conftest import GEMINI, PYTHON

import gemini
import gemini.torch as gt
from gemini import codec


def test_codec_round_trips_training_state():
    torch.manual_seed(3)
    value = {
        "step": 7, "lr": 1e-3, "nan": float("nan"), "inf": float("-inf"), "none": None,
        "tuple": (1, "a", (2.5, True)), "bytes": b"\x00\xff", "int_keys": {0: "a", (1, "b"): 2},
        "dunder": {"__t": 1}, "python_rng": random.getstate(), "numpy_rng": np.random.get_state(),
        "array": np.arange(6, dtype=np.uint32).reshape(2, 3), "np_scalar": np.float32(2.5),
        "tensor": torch.randn(3, 2).to(torch.bfloat16), "dtype": torch.float16,
    }
    back = codec.loads(codec.dumps(value))
    assert back["step"] == 7 and back["lr"] == 1e-3 and back["none"] is None
    assert np.isnan(back["nan"]) and back["inf"] == float("-inf")
    assert back["tuple"] == (1, "a", (2.5, True)) and back["bytes"] == b"\x00\xff"
    assert back["int_keys"] == {0: "a", (1, "b"): 2} and back["dunder"] == {"__t": 1}
    assert back["python_rng"] == random.getstate()
    random.setstate(back["python_rng"])
    np.random.set_state(back["numpy_rng"])
    assert np.array_equal(back["array"], value["array"]) and back["array"].dtype == np.uint32
    assert back["np_scalar"] == 2.5
    assert torch.equal(back["tensor"], value["tensor"]) and back["dtype"] is torch.float16


def test_codec_refuses_objects_and_malformed_input():
    class Custom:
        pass
    with pytest.raises(TypeError, match="state.x: a value of type .*Custom"):
        codec.dumps({"x": Custom()})
    for bad in [b"\x80\x04K\x01.", b"{", b'{"__nd": ["O", [1], "AA=="]}',
                b'{"__tensor": ["float32", [4], "AA=="]}', b'{"__b": 5}', b'{"__x": 1}',
                b'{"__d": [[[1], 2]]}']:
        with pytest.raises(ValueError):
            codec.loads(bad)


class Planted:
    """Unpickling this runs a command: what a tampered checkpoint would carry."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_planted_pickle_in_metadata_cannot_run_code(agent, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    t = {"w": torch.arange(4.0)}
    ckpt = gt.Checkpointer(tensors=t, job="planted", socket=agent.socket, rng=False)
    # The attacker's shard: a valid store entry whose metadata is a pickle.
    monkeypatch.setattr(gt.codec, "dumps", lambda meta: pickle.dumps(Planted(marker)))
    ckpt.save(1)
    ckpt.wait()
    monkeypatch.undo()
    # A fresh trainer restores it in another process: an error, and no code ran.
    code = ("import torch, gemini.torch as gt\n"
            f"c = gt.Checkpointer(tensors={{'w': torch.zeros(4)}}, job='planted', "
            f"socket={agent.socket!r}, rng=False)\n"
            "try:\n"
            "    c.load_latest()\n"
            "except gt.GeminiError as e:\n"
            "    print('refused:', e)\n")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("refused:") and "metadata" in out.stdout, out.stdout
    assert not marker.exists()


def all_dtypes():
    out = [torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64, torch.float16,
           torch.bfloat16, torch.float32, torch.float64, torch.bool, torch.complex64,
           torch.complex128]
    for name in ["uint16", "uint32", "uint64", "float8_e4m3fn", "float8_e5m2",
                 "float8_e4m3fnuz", "float8_e5m2fnuz", "complex32", "float8_e8m0fnu"]:
        if hasattr(torch, name):
            out.append(getattr(torch, name))
    return out


def test_every_dtype_round_trips(agent):
    g = torch.Generator().manual_seed(5)
    src = {}
    for d in all_dtypes():
        raw = torch.randint(0, 256, (48,), dtype=torch.uint8, generator=g)
        src[str(d)] = (raw % 2 if d == torch.bool else raw).view(d)  # Any (valid) bit pattern.
    ckpt = gt.Checkpointer(tensors=src, job="dtypes", socket=agent.socket, rng=False)
    ckpt.save(1)
    ckpt.wait()
    dst = {k: torch.zeros_like(v) for k, v in src.items()}
    back = gt.Checkpointer(tensors=dst, job="dtypes", socket=agent.socket, rng=False)
    assert back.load_latest() == 1
    for k in src:
        assert dst[k].dtype == src[k].dtype
        assert torch.equal(dst[k].view(torch.uint8), src[k].view(torch.uint8)), k


def test_optimizer_is_hooked_not_replaced(agent):
    model = torch.nn.Linear(8, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    step = opt.step
    ckpt = gt.Checkpointer(model, opt, socket=agent.socket, job="hook")
    assert opt.step == step  # The optimizer's own step stays (a pre-hook waits for the copy).
    sched = torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)  # Built after the checkpointer.
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "lr_scheduler.step() before optimizer.step()"
        for s in range(1, 5):
            model(torch.ones(2, 8)).sum().backward()
            opt.step()
            opt.zero_grad()
            sched.step()
            ckpt.save(s)
    ckpt.wait()
    assert sched.last_epoch == 4 and opt.param_groups[0]["lr"] == pytest.approx(0.025)
    ckpt.close()


class Counter:
    """A user's Stateful object (the torch.distributed.checkpoint convention)."""
    def __init__(self):
        self.seen, self.order = 0, []

    def state_dict(self):
        return {"seen": self.seen, "order": list(self.order)}

    def load_state_dict(self, sd):
        self.seen, self.order = sd["seen"], list(sd["order"])


def test_state_dict_of_statefuls_round_trips(agent):
    def build(seed):
        torch.manual_seed(seed)
        model = torch.nn.Linear(6, 3)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        sched = torch.optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
        return {"model": model, "optim": opt, "sched": sched, "data": Counter(),
                "scaler": torch.amp.GradScaler("cpu", init_scale=1024.0),
                "ema": torch.zeros(3), "epoch": 0, "tag": ("run", 7)}

    state = build(0)
    ckpt = gt.Checkpointer(state=state, socket=agent.socket, job="stateful")
    for step in range(1, 4):
        state["model"](torch.ones(4, 6)).sum().backward()
        state["optim"].step()
        state["optim"].zero_grad()
        state["sched"].step()
        state["data"].seen += 4
        state["data"].order.append(step)
        state["scaler"].scale(torch.ones(1))  # (Creates the scale tensor.)
        state["scaler"].update(512.0 * step)
        state["ema"] += step
        state["epoch"] = step // 2
        ckpt.save(step)
    ckpt.wait()
    want = {k: v for k, v in state["model"].state_dict().items()}

    fresh = build(1)
    back = gt.Checkpointer(state=fresh, socket=agent.socket, job="stateful")
    assert back.load_latest() == 3
    for k, v in fresh["model"].state_dict().items():
        assert torch.equal(v, want[k]), k
    assert fresh["optim"].state_dict()["state"][0]["step"] == 3
    assert fresh["sched"].last_epoch == 3
    assert fresh["data"].seen == 12 and fresh["data"].order == [1, 2, 3]
    assert fresh["scaler"].get_scale() == 1536.0
    assert torch.equal(fresh["ema"], torch.full((3,), 6.0))
    assert fresh["epoch"] == 1 and fresh["tag"] == ("run", 7)


def test_state_refuses_what_it_cannot_store(agent):
    with pytest.raises(ValueError, match="a second Module"):
        gt.Checkpointer(state={"a": torch.nn.Linear(2, 2), "b": torch.nn.Linear(2, 2)},
                        socket=agent.socket)
    with pytest.raises(TypeError, match="state.nested: a value of type .* cannot be checkpointed"):
        gt.Checkpointer(state={"x": {"nested": Counter}}, socket=agent.socket)


def test_overhead_budget_checkpoints_every_kth_iteration(agent):
    # 64 MiB of state and iterations of about a millisecond: one copy per
    # iteration would cost training far more than 2%, so the checkpointer
    # picks k > 1 and says why; with no budget it checkpoints every iteration.
    state = {"w": torch.ones(16 << 20)}
    for budget, many in ((0.02, True), (0.0, False)):
        ckpt = gt.Checkpointer(tensors=state, socket=agent.socket, job=f"budget-{budget}",
                               rng=False, overhead_budget=budget)
        for step in range(1, 41):
            state["w"].add_(1)  # The training step: writes what the copy reads.
            ckpt.save(step)
        ckpt.wait()
        if many:
            assert ckpt.stats["every_k"] > 1 and ckpt.stats["not_due"] > 0
            assert "checkpointing every" in ckpt.stats["every_k_reason"]
            assert ckpt.stats["saves"] + ckpt.stats["not_due"] == 40
            # `gemini status` shows the k in use and why.
            job = next(j for j in agent.status()["jobs"] if j["job"] == "budget-0.02")
            assert job["every_k"] == ckpt.stats["every_k"]
            assert "checkpointing every" in job["ranks"][0]["every_k_reason"]
            human = subprocess.run([GEMINI, "status", "--socket", agent.socket], check=True,
                                   capture_output=True, text=True).stdout
            assert f"checkpoints every {ckpt.stats['every_k']} iterations" in human
        else:
            assert ckpt.stats["every_k"] == 1 and ckpt.stats["saves"] == 40
        ckpt.close()


def test_fsdp_checkpointer_is_a_deprecated_alias_of_the_one_class(agent):
    import gemini.fsdp
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with pytest.warns(DeprecationWarning, match="gemini.torch.Checkpointer"):
        ckpt = gemini.fsdp.FSDPCheckpointer(model, opt, job="alias", socket=agent.socket,
                                            threads=2)
    assert isinstance(ckpt, gt.Checkpointer) and ckpt.copy_threads == 2
    model(torch.ones(2, 8)).sum().backward()
    opt.step()
    ckpt.save(1)
    ckpt.wait()
    saved = model.weight.detach().clone()
    momentum = opt.state[model.weight]["momentum_buffer"].clone()
    with torch.no_grad():
        model.weight.add_(1)
    opt.state[model.weight]["momentum_buffer"].zero_()
    assert ckpt.load_latest() == 1
    assert torch.equal(model.weight, saved)
    assert torch.equal(opt.state[model.weight]["momentum_buffer"], momentum)
    ckpt.close()
