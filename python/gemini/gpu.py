"""gemini.gpu: checkpoint CUDA tensors into the agent's memory without a host stall.

    ckpt = gemini.gpu.GpuCheckpointer(job="train")
    ckpt.wrap_step(optimizer)                # step() first waits for the copy, on the GPU
    ...
    optimizer.step()
    ckpt.save(step, [("w", weight), ...], meta={"step": step})   # returns at once
    ...
    it, meta = ckpt.load({"w": weight})      # in place, every chunk's CRC32C checked

save() records where the current CUDA stream is and hands the rest to a native
thread (gemini._gemini_cuda, src/gpu/gpu_saver.h): the agent grants a slot, the
slot's shared memory is page-locked once, every tensor is copied device-to-host
on a dedicated stream, the CRC32C of each 4 MiB chunk is computed on the host
copy as the copies land, and the shard is committed. The shard's manifest and
CRCs are those of the CPU path: it is replicated, persisted and recovered like
any other. Before the next optimizer step, ``before_step()`` makes the step's
stream wait for the copies on the GPU, only if they have not finished.

Tensors are passed by pointer: they must not be freed or resized until the next
save() or wait() (the checkpointer holds references until then), and nothing but
the wrapped optimizer step may write them in between.
"""
import os

from ._torch_version import require_supported_torch

require_supported_torch()  # A clear error for a missing or unsupported torch.
import torch  # noqa: E402
import torch.distributed as dist

from . import _gemini, _gemini_cuda, codec
from .state import DTYPE_NAMES, DTYPES, nbytes

GeminiError = _gemini.GeminiError
CHUNK = 4 << 20


def _dist_on():
    return dist.is_available() and dist.is_initialized()


def _stream():
    return torch.cuda.current_stream().cuda_stream


class GpuCheckpointer:
    """Per-iteration checkpoints of named CUDA (or CPU) tensors of one rank.

    Args:
      job: job name (default $GEMINI_JOB or "default").
      socket: the agent's socket (default $GEMINI_SOCKET or /run/gemini/agent.sock).
      rank, world: this rank and the job's size (default: torch.distributed's, else 0/1).
      threads: host threads computing CRC32C (capture) and verifying it (load).
      skip_after_s: how long a save may wait for the previous iteration to be
        complete on every rank before the agent refuses it (then the save is
        skipped with a warning, not training).
      pin_restore: page-lock the slot before copying it back (faster copy; the
        slot stays pinned for the next load).
    """

    def __init__(self, *, job=None, socket=None, rank=None, world=None, threads=4,
                 skip_after_s=2.0, pin_restore=True):
        self.job = job or os.environ.get("GEMINI_JOB", "default")
        self.rank = rank if rank is not None else (dist.get_rank() if _dist_on() else 0)
        self.world = world if world is not None else (dist.get_world_size() if _dist_on() else 1)
        self.threads = threads
        self.skip_after_ms = int(skip_after_s * 1000)
        self.pin_restore = pin_restore
        socket = socket or _gemini.default_socket_path()
        self.saver = _gemini_cuda.Saver(socket, torch.cuda.current_device())
        self._held = None
        self.stats = {"saves": 0, "skipped": 0, "blocking_ms": [], "copy_s": []}

    # ----------------------------------------------------------------- saving
    def wrap_step(self, optimizer):
        """Makes optimizer.step() call before_step() first."""
        inner = optimizer.step

        def step(*args, **kwargs):
            self.before_step()
            return inner(*args, **kwargs)

        if getattr(inner, "_with_counter", False):
            step._with_counter = True
        optimizer.step = step
        return optimizer

    def before_step(self):
        """Orders the current stream after the in-flight copies (GPU-side wait)."""
        if self._held is not None:
            self.saver.before_step(_stream())

    def save(self, step, named, meta=None):
        """Captures [(name, tensor)] and a meta (gemini.codec values) for iteration `step`.

        Returns once the copies are scheduled; raises the previous save's error.
        """
        held, entries = [], []
        for name, t in named:
            t = t.detach()
            if not t.is_contiguous():
                t = t.contiguous()
            held.append(t)
            entries.append((name, DTYPE_NAMES[t.dtype], list(t.shape), t.data_ptr(), nbytes(t), 0))
        blob = torch.frombuffer(bytearray(codec.dumps(meta or {})), dtype=torch.uint8)
        held.append(blob)
        entries.append(("meta", "uint8", [blob.numel()], blob.data_ptr(), blob.numel(), 0))
        self._finish()  # The previous save must be committed before its slot flips.
        self._held = held
        self.saver.submit(self.job, self.rank, self.world, int(step), entries, _stream(),
                          self.threads, CHUNK, self.skip_after_ms)
        self.stats["saves"] += 1

    def _finish(self):
        if self._held is None:
            return
        try:
            self.saver.wait()
            self.stats["copy_s"].append(self.saver.last_stats()["copy_s"])
        except GeminiError as e:
            if e.code != "DEADLINE_EXCEEDED":
                raise
            self.stats["skipped"] += 1
        finally:
            self._held = None

    def wait(self):
        """Blocks until the in-flight save is committed; raises its error."""
        self._finish()

    def last_stats(self):
        return self.saver.last_stats()

    # ---------------------------------------------------------------- loading
    def complete_iteration(self):
        """Newest iteration every rank holds (agreed over torch.distributed), or -1."""
        it = self.saver.complete_iteration(self.job)
        if _dist_on() and self.world > 1:
            t = torch.tensor([it], dtype=torch.int64, device="cuda")
            dist.all_reduce(t, op=dist.ReduceOp.MIN)
            it = int(t.item())
        return it

    def load(self, targets, iteration=None, strict=True):
        """Restores the named tensors in place from `iteration` (default: the
        newest complete one); returns (iteration, meta), or (-1, None) if none.

        targets: {name: tensor} of contiguous tensors of the saved dtype and shape.
        strict: every saved tensor must have a target and vice versa.
        """
        self.wait()
        it = self.complete_iteration() if iteration is None else int(iteration)
        if it < 0:
            return -1, None
        shard = self.saver.open(self.job, self.rank, it)
        entries = {e[0]: e for e in shard.manifest["entries"]}
        pieces = []
        for name, t in targets.items():
            e = entries.get(name)
            if e is None:
                if strict:
                    raise GeminiError(f"checkpoint of iteration {it} has no tensor {name!r}")
                continue
            _, dtype, shape, offset, length, _ = e
            if not t.is_contiguous() or DTYPES[dtype] != t.dtype or tuple(shape) != tuple(t.shape):
                raise GeminiError(f"tensor {name!r}: saved {dtype}{tuple(shape)}, target "
                                  f"{t.dtype}{tuple(t.shape)} (contiguous: {t.is_contiguous()})")
            pieces.append((offset, t.data_ptr(), length))
        if strict:
            missing = set(entries) - set(targets) - {"meta"}
            if missing:
                raise GeminiError(f"no target for saved tensors {sorted(missing)[:5]}...")
        self.last_restore = self.saver.restore(shard, pieces, _stream(), self.threads,
                                               self.pin_restore)
        _, _, _, offset, length, _ = entries["meta"]
        try:
            meta = codec.loads(_gemini_cuda.Saver.read_bytes(shard, offset, length))
        except ValueError as e:
            raise GeminiError(f"iteration {it}: invalid checkpoint metadata (refused): {e}") from None
        return it, meta

    def close(self):
        self.wait()
