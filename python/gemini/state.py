"""Training state <-> named tensors, and splitting replicated state over ranks.

A captured state is a list of ``(name, tensor)`` pairs plus a small
``meta`` dict (gemini.codec values) for everything that is not a tensor (optimizer hyper-parameters,
scheduler state, RNG state, the step). Names are prefixed:

- ``s/...`` replicated tensors (identical on every data-parallel rank): each
  rank stores only its contiguous 1/world byte range of their concatenation.
- ``r/...`` rank-local tensors, stored whole by their rank.
"""
import math

from ._torch_version import require_supported_torch

torch = require_supported_torch()

# Every torch dtype with a fixed element size, by the name the native store
# knows it by (src/store/manifest.h); names this torch lacks are skipped.
DTYPE_NAMES = {getattr(torch, n): n for n in [
    "uint8", "int8", "int16", "int32", "int64", "float16", "bfloat16", "float32", "float64",
    "bool", "uint16", "uint32", "uint64", "complex32", "complex64", "complex128",
    "float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu",
] if hasattr(torch, n)}
DTYPES = {v: k for k, v in DTYPE_NAMES.items()}


from torch.distributed.tensor import DTensor  # noqa: E402


def local_part(t):
    """A DTensor's local shard (FSDP2, tensor parallel); any other tensor itself."""
    if isinstance(t, DTensor):
        local = getattr(t, "_local_tensor", None)  # No autograd view: cheap every iteration.
        return local if local is not None else t.to_local()
    return t


def as_dtensor_like(local, like):
    """`local` as the shard of a DTensor shaped and placed like `like`."""
    return DTensor.from_local(local, like.device_mesh, like.placements, run_check=False,
                              shape=like.shape, stride=like.stride())


def as_cpu_contiguous(t):
    """The tensor (a DTensor's local shard) itself when it already is a contiguous
    CPU tensor, else a copy."""
    t = local_part(t).detach()
    if t.device.type != "cpu":
        t = t.cpu()
    return t if t.is_contiguous() else t.contiguous()


def nbytes(t):
    return t.numel() * t.element_size()


def entry(name, t, offset=0, length=None):
    """A native save entry for bytes [offset, offset+length) of tensor t."""
    length = nbytes(t) - offset if length is None else length
    return (name, DTYPE_NAMES[t.dtype], list(t.shape), t.data_ptr() + offset, length, offset)


def split_entries(named, rank, world):
    """Entries for rank's 1/world byte range of the concatenated tensors."""
    total = sum(nbytes(t) for _, t in named)
    lo, hi = total * rank // world, total * (rank + 1) // world
    out, pos = [], 0
    for name, t in named:
        n = nbytes(t)
        a, b = max(lo, pos), min(hi, pos + n)
        if a < b or (n == 0 and rank == 0):
            out.append(entry(name, t, a - pos if a < b else 0, max(b - a, 0)))
        pos += n
    return out


def views(buf, entries):
    """Per-entry (name, dtype, shape, tensor_offset, uint8 view) of a loaded shard."""
    out = []
    for name, dtype, shape, offset, length, toff in entries:
        out.append((name, DTYPES[dtype], tuple(shape), toff, buf[offset:offset + length]))
    return out


def assemble(pieces):
    """Whole tensors from (name, dtype, shape, tensor_offset, bytes) pieces.

    A tensor stored whole in one piece becomes a view of the loaded bytes (no
    copy: restoring a large sharded state needs no second buffer); tensors
    split over pieces (replicated state split by rank) are assembled."""
    whole = {}
    for name, dtype, shape, toff, data in pieces:
        if name not in whole and toff == 0 and data.numel():
            elem = torch.empty((), dtype=dtype).element_size()
            if (data.numel() == math.prod(shape) * elem and
                    data.storage_offset() % elem == 0):
                whole[name] = (data.view(dtype).reshape(shape), None, data.numel())
                continue
        if name not in whole:
            t = torch.empty(shape, dtype=dtype)
            whole[name] = (t, t.view(-1).view(torch.uint8) if t.numel() else None, 0)
        t, flat, got = whole[name]
        if flat is None and data.numel():
            raise RuntimeError(f"checkpoint holds tensor {name!r} twice")
        if data.numel():
            flat[toff:toff + data.numel()].copy_(data)
        whole[name] = (t, flat, got + data.numel())
    for name, (t, _, got) in whole.items():
        if got != nbytes(t):
            raise RuntimeError(f"checkpoint is missing bytes of tensor {name!r} "
                               f"({got} of {nbytes(t)})")
    return {name: t for name, (t, _, _) in whole.items()}
