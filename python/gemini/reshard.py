"""gemini.reshard: restoring a Checkpointer checkpoint onto another world size.

At save time (``chunk_of``) every DTensor local shard a Checkpointer stores
(FSDP2 parameters and buffers, their optimizer state, DTensors given as
``tensors=``) is described in the checkpoint's meta:
``meta["dtensor"] = {entry name: [global shape, global offset of this rank's chunk]}``.

``restore`` builds, on each rank of the new world, the ``tensors`` dict and
meta that ``Checkpointer._restore`` takes, reading the saved ranks' shards one
at a time (memory: one saved shard plus this rank's own state):

- replicated state (``s/``, DDP: each saved rank stored 1/W of the bytes) is
  assembled whole from the byte ranges of all W saved shards;
- DTensor chunks: this rank's target chunk comes from its own tensor's mesh
  and placements (optimizer state ``optim.<pid>.<k>``: from parameter ``pid``
  of the optimizer's param_groups, with the saved global shape); the overlap
  of every saved chunk with it is copied, chunks saved alike by several ranks
  (replicated mesh dimensions) once, and the copied elements must cover the
  target exactly;
- everything else that is rank-local (step, optimizer hyper-parameters,
  scheduler, RNG, Statefuls, values, ``tensors=``, 0-dim optimizer ``step``
  tensors) comes from saved rank r for new rank r < W, else from saved rank 0:
  ranks beyond the old world continue like rank 0 (its RNG streams, its
  dataloader position); jobs whose rank-local state must differ per rank have
  to re-derive it after a world change.

ZeroRedundancyOptimizer state (a per-rank partition) cannot be resharded.
Every byte is CRC32C-checked when read; malformed or inconsistent metadata is
a GeminiError, raised before anything is restored.
"""
import math

from ._torch_version import require_supported_torch

torch = require_supported_torch()

from torch.distributed.tensor._utils import compute_local_shape_and_global_offset  # noqa: E402

from . import _gemini, codec, shards  # noqa: E402
from .state import DTYPES, DTensor, nbytes  # noqa: E402

GeminiError = _gemini.GeminiError


# ------------------------------------------------------------------ saving
def chunk_of(cache, name, t):
    """[global shape, global offset] of DTensor t's local chunk, cached per entry
    name (recomputed only when the local shape changes: save() runs every
    iteration)."""
    local = t._local_tensor.shape if hasattr(t, "_local_tensor") else t.to_local().shape
    hit = cache.get(name)
    if hit is None or hit[0] != local:
        _, offset = compute_local_shape_and_global_offset(t.shape, t.device_mesh, t.placements)
        hit = cache[name] = (local, [list(t.shape), [int(o) for o in offset]])
    return hit[1]


# --------------------------------------------------------------- restoring
def restore(ckpt, job, iteration, world):
    """(tensors, meta) for ckpt._restore from iteration `iteration` of store job
    `job`, saved by `world` ranks (another world size than ckpt's)."""
    where = f"iteration {iteration} of job {job!r} (saved by {world} ranks)"
    if ckpt._zero:
        raise GeminiError(f"rank {ckpt.rank}: {where}: ZeroRedundancyOptimizer state is "
                          f"partitioned per rank and cannot be resharded onto {ckpt.world} "
                          f"ranks; restore with {world} ranks")
    src = ckpt.rank if ckpt.rank < world else 0
    targets = _Targets(ckpt, where)
    out, shared, chunked, meta = {}, {}, {}, None
    for r in range(world):
        man, buf = shards.read(ckpt.client, job, r, iteration, ckpt.copy_threads)
        what = f"rank {r}'s shard of {where}"
        if (man.get("rank"), man.get("world_size"), man.get("iteration")) != (r, world, iteration):
            raise _bad(what, f"its manifest says rank {man.get('rank')}, world "
                             f"{man.get('world_size')}, iteration {man.get('iteration')}")
        pieces = _pieces(buf, man, what)
        shard_meta = _meta(pieces, what)
        if shard_meta.get("zero"):
            raise GeminiError(f"{where}: saved with ZeroRedundancyOptimizer, whose state is "
                              f"partitioned per rank and cannot be resharded; restore with "
                              f"{world} ranks")
        dt = _dtensor_map(shard_meta, pieces, what)
        for name, (dtype, shape, toff, data) in pieces.items():
            if name.startswith("s/"):
                if name not in shared:
                    shared[name] = _Shared(name, dtype, shape)
                shared[name].add(dtype, shape, toff, data, what)
            elif name[2:] in dt:
                gshape, offset = dt[name[2:]]
                if name not in chunked:
                    local, toff_g = targets.chunk(name[2:], gshape)
                    chunked[name] = _Chunked(name, dtype, gshape, local, toff_g)
                chunked[name].add(dtype, gshape, offset, _whole(name, dtype, shape, toff, data,
                                                                what), what)
            elif r == src and name != "r/meta":
                out[name] = _whole(name, dtype, shape, toff, data, what).clone()
        if r == src:
            meta = shard_meta
        del buf, pieces
    for name, s in shared.items():
        out[name] = s.finish(where)
    for name, c in chunked.items():
        out[name] = c.finish(where)
    if not isinstance(meta.get("step"), int):
        raise _bad(f"rank {src}'s shard of {where}", "its meta has no step")
    targets.check_model(out)
    return out, meta


def _bad(what, why):
    return GeminiError(f"{what} has inconsistent checkpoint metadata (refused, nothing "
                       f"restored): {why}")


def _pieces(buf, man, what):
    """{name: (dtype, shape, tensor_offset, uint8 view)} of a shard's entries."""
    out = {}
    try:
        for name, dtype, shape, offset, length, toff in man["entries"]:
            if dtype not in DTYPES or name in out or offset + length > buf.numel():
                raise ValueError(f"entry {name!r}: unknown dtype, repeated, or outside the data")
            out[name] = (DTYPES[dtype], tuple(int(s) for s in shape), int(toff),
                         buf[offset:offset + length])
    except (KeyError, TypeError, ValueError) as e:
        raise _bad(what, e) from None
    return out


def _meta(pieces, what):
    if "r/meta" not in pieces:
        raise _bad(what, "no r/meta entry")
    try:
        meta = codec.loads(pieces["r/meta"][3].numpy().tobytes())
    except (TypeError, ValueError) as e:
        raise _bad(what, f"r/meta: {e}") from None
    if not isinstance(meta, dict):
        raise _bad(what, "r/meta is not a dict")
    return meta


def _ints(v):
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0
                                       for x in v)


def _dtensor_map(meta, pieces, what):
    """{entry name: (global shape, offset)} of a shard's DTensor chunks, validated
    against the shapes its manifest gives them."""
    dt = meta.get("dtensor", {})
    if not isinstance(dt, dict):
        raise _bad(what, "meta['dtensor'] is not a dict")
    out = {}
    for name, v in dt.items():
        if not (isinstance(v, list) and len(v) == 2 and _ints(v[0]) and _ints(v[1])):
            raise _bad(what, f"dtensor {name!r}: expected [global shape, global offset] as "
                             f"lists of non-negative integers, got {v!r:.100}")
        if "r/" + name not in pieces:
            raise _bad(what, f"dtensor {name!r} has no r/{name} entry")
        shape = pieces["r/" + name][1]
        gshape, offset = tuple(v[0]), tuple(v[1])
        if not (len(gshape) == len(offset) == len(shape)) or any(
                o + s > g for o, s, g in zip(offset, shape, gshape)):
            raise _bad(what, f"dtensor {name!r}: chunk of shape {shape} at offset {offset} "
                             f"is outside the global shape {gshape}")
        out[name] = (gshape, offset)
    return out


def _whole(name, dtype, shape, toff, data, what):
    """A tensor an entry stores whole, as a view of the shard's bytes."""
    elem = torch.empty((), dtype=dtype).element_size()
    if toff != 0 or data.numel() != math.prod(shape) * elem:
        raise _bad(what, f"{name!r} should be stored whole ({math.prod(shape) * elem} bytes) "
                         f"but has {data.numel()} bytes at byte {toff}")
    return data.clone().view(dtype).reshape(shape) if data.storage_offset() % elem else \
        data.view(dtype).reshape(shape)


class _Shared:
    """A replicated tensor assembled from the byte ranges the saved ranks stored."""

    def __init__(self, name, dtype, shape):
        self.name, self.t = name, torch.empty(shape, dtype=dtype)
        self.flat = self.t.view(-1).view(torch.uint8)
        self.ranges = []

    def add(self, dtype, shape, toff, data, what):
        if (dtype, tuple(shape)) != (self.t.dtype, tuple(self.t.shape)):
            raise _bad(what, f"{self.name!r} is {dtype} {tuple(shape)}; other ranks saved "
                             f"{self.t.dtype} {tuple(self.t.shape)}")
        if toff < 0 or toff + data.numel() > self.flat.numel():
            raise _bad(what, f"{self.name!r}: bytes [{toff}, {toff + data.numel()}) outside its "
                             f"{self.flat.numel()} bytes")
        self.flat[toff:toff + data.numel()].copy_(data)
        self.ranges.append((toff, toff + data.numel()))

    def finish(self, where):
        pos = 0
        for a, b in sorted(self.ranges):
            if a != pos and b > a:
                raise _bad(where, f"{self.name!r}: bytes [{min(a, pos)}, {max(a, pos)}) are "
                                  f"{'missing' if a > pos else 'stored twice'}")
            pos = max(pos, b)
        if pos != nbytes(self.t):
            raise _bad(where, f"{self.name!r}: {pos} of {nbytes(self.t)} bytes saved")
        return self.t


class _Chunked:
    """This rank's chunk of a DTensor, assembled from the saved ranks' chunks."""

    def __init__(self, name, dtype, gshape, local, offset):
        self.name, self.gshape, self.offset = name, tuple(gshape), tuple(offset)
        self.t = torch.empty(local, dtype=dtype)
        self.seen, self.boxes = set(), []

    def add(self, dtype, gshape, offset, saved, what):
        if dtype != self.t.dtype or tuple(gshape) != self.gshape:
            raise _bad(what, f"{self.name!r}: {dtype} of global shape {tuple(gshape)}; other "
                             f"ranks saved {self.t.dtype} of global shape {self.gshape}")
        key = (tuple(offset), tuple(saved.shape))
        if key in self.seen:  # Saved alike by ranks along a replicated mesh dimension.
            return
        self.seen.add(key)
        lo = [max(o, t) for o, t in zip(offset, self.offset)]
        hi = [min(o + s, t + n) for o, s, t, n in
              zip(offset, saved.shape, self.offset, self.t.shape)]
        if any(a >= b for a, b in zip(lo, hi)):
            return  # No overlap with this rank's chunk.
        dst = self.t
        for d, (a, b) in enumerate(zip(lo, hi)):
            saved = saved.narrow(d, a - offset[d], b - a)
            dst = dst.narrow(d, a - self.offset[d], b - a)
        dst.copy_(saved)
        self.boxes.append((lo, hi))

    def finish(self, where):
        for i, (lo1, hi1) in enumerate(self.boxes):
            for lo2, hi2 in self.boxes[:i]:
                if all(max(a1, a2) < min(b1, b2) for a1, b1, a2, b2 in zip(lo1, hi1, lo2, hi2)):
                    raise _bad(where, f"{self.name!r}: saved chunks overlap at "
                                      f"{[max(a, b) for a, b in zip(lo1, lo2)]}")
        got = sum(math.prod(b - a for a, b in zip(lo, hi)) for lo, hi in self.boxes)
        if got != self.t.numel():
            raise _bad(where, f"{self.name!r}: the saved chunks cover {got} of the "
                              f"{self.t.numel()} elements of this rank's chunk (global shape "
                              f"{self.gshape}, offset {self.offset})")
        return self.t


class _Targets:
    """Where this rank's part of each entry lies in the whole tensor."""

    def __init__(self, ckpt, where):
        self.rank, self.where = ckpt.rank, where
        self.model = ckpt.model.state_dict() if ckpt.model is not None else {}
        opt = ckpt._local_optimizer() if ckpt.optimizer is not None else None
        self.params = [p for g in opt.param_groups for p in g["params"]] if opt else []
        self.tensors = ckpt.tensors

    def chunk(self, name, gshape):
        """(local shape, global offset) of this rank's chunk of entry `name`."""
        kind, _, key = name.partition(".")
        if kind == "optim":
            pid = key.split(".", 1)[0]
            like = self.params[int(pid)] if pid.isdigit() and int(pid) < len(self.params) else None
        else:
            like = {"model": self.model, "tensor": self.tensors}.get(kind, {}).get(key)
        if like is None:
            raise GeminiError(f"rank {self.rank}: {self.where}: the checkpoint holds {name!r}, "
                              f"which this rank has nothing to restore into (another model or "
                              f"optimizer?)")
        if kind != "optim" and tuple(like.shape) != tuple(gshape):
            raise GeminiError(f"rank {self.rank}: {self.where}: {name!r} has global shape "
                              f"{tuple(gshape)} in the checkpoint, {tuple(like.shape)} here")
        if not isinstance(like, DTensor):
            return tuple(gshape), (0,) * len(gshape)
        local, offset = compute_local_shape_and_global_offset(
            torch.Size(gshape), like.device_mesh, like.placements)
        return tuple(local), tuple(int(o) for o in offset)

    def check_model(self, out):
        """Sharded model entries restored whole must fit this rank's shard."""
        for k, v in self.model.items():
            got = out.get("r/model." + k, out.get("s/model." + k))
            if isinstance(v, DTensor) and got is not None and \
                    tuple(got.shape) != tuple(v.to_local().shape):
                raise GeminiError(f"rank {self.rank}: {self.where}: {k!r} was saved whole (not "
                                  f"as a DTensor) with shape {tuple(got.shape)}; this rank's "
                                  f"shard has shape {tuple(v.to_local().shape)}")
