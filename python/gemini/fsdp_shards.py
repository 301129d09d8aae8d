"""gemini.fsdp_shards: the FSDP2 shard capture that gemini.gpu_replica builds on.

Each rank checkpoints what it owns: the local shard (DTensor.to_local()) of every
parameter and of every optimizer state tensor, copied device-to-host straight
into the agent's shared memory by gemini.gpu. Small state travels as gemini.codec JSON in a
meta entry: CPU tensors of the optimizer (Adam's ``step``), its param_groups,
the step and the RNG states. Buffers are stored by every rank (FSDP2 does not
shard them). load_latest() restores everything in place on every rank from the
newest iteration all ranks hold, so the world size and sharding must be those of
the save.

Training code uses gemini.torch.Checkpointer(model, optimizer), which covers
FSDP2 (and restores onto another world size); this class is the base of
gemini.gpu_replica.ReplicatedFSDPCheckpointer's GPU-to-GPU replication.
"""
import random

from ._torch_version import require_supported_torch

require_supported_torch()  # A clear error for a missing or unsupported torch.
import torch  # noqa: E402
import torch.distributed as dist

from .gpu import GpuCheckpointer, GeminiError  # noqa: F401
from .state import local_part


def _rng_bytes(t):
    return t.cpu().numpy().tobytes()


def _rng_tensor(v):
    # Saved as bytes (deterministic checkpoint bytes) or, by older versions, as a tensor.
    return torch.frombuffer(bytearray(v), dtype=torch.uint8) if isinstance(v, bytes) else v


class ShardCheckpointer:
    """Args:
      model: the fully_shard-ed module; optimizer: its optimizer (state created lazily).
      job, socket, threads, skip_after_s, pin_restore: as gemini.gpu.GpuCheckpointer.
      rng: capture and restore torch (CPU and CUDA) and Python RNG state.
      wrap_step: make optimizer.step() wait (on the GPU) for an unfinished copy.
    """

    def __init__(self, model, optimizer, *, job=None, socket=None, threads=4, rng=True,
                 wrap_step=True, skip_after_s=2.0, pin_restore=True):
        self.model, self.optimizer, self.rng = model, optimizer, rng
        self.gpu = GpuCheckpointer(job=job, socket=socket, threads=threads,
                                   skip_after_s=skip_after_s, pin_restore=pin_restore)
        self._fqn = {id(p): n for n, p in model.named_parameters()}
        if wrap_step and optimizer is not None:
            self.gpu.wrap_step(optimizer)

    @property
    def stats(self):
        return self.gpu.stats

    def _state(self):
        """(device tensors [(name, tensor)], CPU optimizer tensors {name: tensor})."""
        dev, cpu = [], {}
        for n, p in self.model.named_parameters():
            dev.append(("param/" + n, local_part(p.detach())))
        for n, b in self.model.named_buffers():
            dev.append(("buffer/" + n, local_part(b.detach())))
        if self.optimizer is not None:
            for group in self.optimizer.param_groups:
                for p in group["params"]:
                    for k, v in sorted(self.optimizer.state.get(p, {}).items()):
                        if not torch.is_tensor(v):
                            continue
                        name = f"optim/{self._fqn[id(p)]}/{k}"
                        v = local_part(v.detach())
                        if v.is_cuda:
                            dev.append((name, v))
                        else:
                            cpu[name] = v
        return dev, cpu

    def _meta(self, step, cpu):
        # 0-dim CPU tensors (Adam's step) as plain numbers: pickling hundreds of
        # tensors every iteration costs milliseconds.
        meta = {"step": int(step),
                "cpu": {k: v.item() if v.dim() == 0 else v.clone() for k, v in cpu.items()}}
        if self.optimizer is not None:
            meta["param_groups"] = [{k: v for k, v in g.items() if k != "params"}
                                    for g in self.optimizer.param_groups]
            meta["plain"] = {f"{self._fqn[id(p)]}/{k}": v
                             for g in self.optimizer.param_groups for p in g["params"]
                             for k, v in self.optimizer.state.get(p, {}).items()
                             if not torch.is_tensor(v)}
        if self.rng:
            meta["rng"] = {"cpu": _rng_bytes(torch.get_rng_state()),
                           "cuda": _rng_bytes(torch.cuda.get_rng_state()),
                           "python": random.getstate()}
        return meta

    def save(self, step):
        """Checkpoints the state after `step` (call after optimizer.step()); returns
        once the device-to-host copies are scheduled."""
        dev, cpu = self._state()
        self.gpu.save(step, dev, self._meta(step, cpu))

    def wait(self):
        self.gpu.wait()

    def _init_optimizer_state(self):
        """Creates the optimizer's state tensors (they appear at the first step)."""
        if self.optimizer is None or self.optimizer.state:
            return
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict
        get_optimizer_state_dict(self.model, self.optimizer)  # Runs a zero-lr step.

    def load_latest(self):
        """Restores the newest iteration every rank holds; returns its step or None."""
        self.gpu.wait()
        it = self.gpu.complete_iteration()
        if it < 0:
            return None
        self._init_optimizer_state()
        dev, cpu = self._state()
        targets = dict(dev)
        for name, t in targets.items():
            if not t.is_contiguous():
                raise GeminiError(f"{name}: local shard is not contiguous; cannot restore in place")
        _, meta = self.gpu.load(targets, iteration=it)
        for name, v in cpu.items():
            saved = meta["cpu"][name]
            if torch.is_tensor(saved):
                v.copy_(saved)
            else:
                v.fill_(saved)
        if self.optimizer is not None:
            for g, saved in zip(self.optimizer.param_groups, meta["param_groups"]):
                g.update(saved)
            for g in self.optimizer.param_groups:
                for p in g["params"]:
                    st = self.optimizer.state.get(p)
                    for key, v in meta["plain"].items():
                        fqn, k = key.rsplit("/", 1)
                        if st is not None and fqn == self._fqn[id(p)]:
                            st[k] = v
        if self.rng and "rng" in meta:
            torch.set_rng_state(_rng_tensor(meta["rng"]["cpu"]))
            torch.cuda.set_rng_state(_rng_tensor(meta["rng"]["cuda"]))
            random.setstate(meta["rng"]["python"])
        if dist.is_available() and dist.is_initialized():
            dist.barrier()
        return meta["step"]

    def close(self):
        self.gpu.close()
