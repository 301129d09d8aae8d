"""gemini.codec: the restricted codec for a checkpoint's non-tensor values.

A checkpoint's small state (optimizer hyper-parameters, LR scheduler and
Stateful state, RNG states, the step) travels as JSON, never as a pickle:
decoding builds only the types listed here, so a checkpoint altered in memory,
on a peer or on disk can at worst fail to load; it cannot run code.

Encoded as themselves: None, bool, int, str, finite float, list, and dict with
str keys. Tagged (a one-key object whose key starts with "__"):

    {"__f": "nan" | "inf" | "-inf"}            non-finite float
    {"__t": [...]}                             tuple
    {"__d": [[key, value], ...]}               dict with non-str keys (or "__" keys)
    {"__b": "<base64>"}                        bytes / bytearray
    {"__nd": [dtype, shape, "<base64>"]}       numpy ndarray (numeric or bool)
    {"__tensor": [dtype, shape, "<base64>"]}   torch tensor (copied to the CPU)
    {"__dtype": "float32"}                     torch.dtype

numpy scalars become Python numbers. Anything else raises TypeError naming
where it was found: put such values in a Stateful's state_dict as the types
above.
"""
import base64
import json
import math

import numpy as np

_TAGS = ("__f", "__t", "__d", "__b", "__nd", "__tensor", "__dtype")
# numpy dtypes a checkpoint may hold (no object, no void, no strings).
_NP_KINDS = "biufc"


def _torch():
    import torch
    return torch


def _b64(data):
    return base64.b64encode(bytes(data)).decode("ascii")


def _unb64(s, path):
    if not isinstance(s, str):
        raise ValueError(f"{path}: expected base64 text")
    try:
        return base64.b64decode(s.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError) as e:
        raise ValueError(f"{path}: bad base64: {e}") from None


def _encode(v, path):
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return v if math.isfinite(v) else {"__f": "nan" if math.isnan(v) else
                                           ("inf" if v > 0 else "-inf")}
    if isinstance(v, np.generic) and v.dtype.kind in _NP_KINDS:
        return _encode(v.item(), path)
    if isinstance(v, (bytes, bytearray, memoryview)):
        return {"__b": _b64(v)}
    if isinstance(v, list):
        return [_encode(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if isinstance(v, tuple):
        return {"__t": [_encode(x, f"{path}[{i}]") for i, x in enumerate(v)]}
    if isinstance(v, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in v):
            return {k: _encode(x, f"{path}.{k}") for k, x in v.items()}
        return {"__d": [[_encode(k, f"{path}<key>"), _encode(x, f"{path}[{k!r}]")]
                        for k, x in v.items()]}
    if isinstance(v, np.ndarray):
        if v.dtype.kind not in _NP_KINDS:
            raise TypeError(f"{path}: numpy array of dtype {v.dtype} cannot be checkpointed")
        a = np.ascontiguousarray(v)
        return {"__nd": [a.dtype.str, list(a.shape), _b64(a.tobytes())]}
    torch = _torch()
    if isinstance(v, torch.dtype):
        return {"__dtype": str(v).removeprefix("torch.")}
    if torch.is_tensor(v):
        from .state import DTYPE_NAMES
        t = v.detach().cpu().contiguous()
        if t.dtype not in DTYPE_NAMES:
            raise TypeError(f"{path}: tensor of dtype {t.dtype} is not supported")
        raw = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return {"__tensor": [DTYPE_NAMES[t.dtype], list(t.shape), _b64(raw)]}
    raise TypeError(f"{path}: a value of type {type(v).__module__}.{type(v).__qualname__} "
                    f"cannot be checkpointed (gemini.codec takes None, bool, int, float, str, "
                    f"bytes, list, tuple, dict, numpy arrays and torch tensors)")


def _decode(v, path):
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, list):
        return [_decode(x, f"{path}[{i}]") for i, x in enumerate(v)]
    if not isinstance(v, dict):
        raise ValueError(f"{path}: unexpected JSON value")
    tag = next(iter(v)) if len(v) == 1 else None
    if tag not in _TAGS:
        if any(k.startswith("__") for k in v):
            raise ValueError(f"{path}: unknown tag in {sorted(v)[:3]}")
        return {k: _decode(x, f"{path}.{k}") for k, x in v.items()}
    body = v[tag]
    if tag == "__f":
        if body not in ("nan", "inf", "-inf"):
            raise ValueError(f"{path}: bad float {body!r}")
        return float(body)
    if tag == "__t":
        if not isinstance(body, list):
            raise ValueError(f"{path}: tuple must be a list")
        return tuple(_decode(x, f"{path}[{i}]") for i, x in enumerate(body))
    if tag == "__d":
        if not isinstance(body, list) or not all(isinstance(p, list) and len(p) == 2
                                                  for p in body):
            raise ValueError(f"{path}: dict must be a list of pairs")
        out = {}
        for k, x in body:
            key = _decode(k, f"{path}<key>")
            try:
                hash(key)
            except TypeError:
                raise ValueError(f"{path}: unhashable dict key") from None
            out[key] = _decode(x, f"{path}[{key!r}]")
        return out
    if tag == "__b":
        return _unb64(body, path)
    if tag in ("__nd", "__tensor"):
        if not (isinstance(body, list) and len(body) == 3 and isinstance(body[0], str)
                and isinstance(body[1], list) and all(isinstance(d, int) and d >= 0
                                                      for d in body[1])):
            raise ValueError(f"{path}: bad array header")
        dtype_name, shape, raw = body[0], body[1], _unb64(body[2], path)
        if tag == "__nd":
            try:
                dt = np.dtype(dtype_name)
            except TypeError:
                raise ValueError(f"{path}: bad numpy dtype {dtype_name!r}") from None
            if dt.kind not in _NP_KINDS:
                raise ValueError(f"{path}: numpy dtype {dtype_name!r} not allowed")
            if math.prod(shape) * dt.itemsize != len(raw):
                raise ValueError(f"{path}: {len(raw)} bytes do not fill shape {shape}")
            return np.frombuffer(raw, dtype=dt).reshape(shape).copy()
        torch = _torch()
        from .state import DTYPES
        if dtype_name not in DTYPES:
            raise ValueError(f"{path}: unknown tensor dtype {dtype_name!r}")
        t = torch.empty(shape, dtype=DTYPES[dtype_name])
        if t.numel() * t.element_size() != len(raw):
            raise ValueError(f"{path}: {len(raw)} bytes do not fill shape {shape}")
        if raw:
            t.view(-1).view(torch.uint8).copy_(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
        return t
    # "__dtype"
    from .state import DTYPES
    if body not in DTYPES:
        raise ValueError(f"{path}: unknown dtype {body!r}")
    return DTYPES[body]


def dumps(value):
    """UTF-8 JSON bytes of `value`; TypeError for a type the codec does not take."""
    return json.dumps(_encode(value, "state"), separators=(",", ":"),
                      allow_nan=False).encode()


def loads(data):
    """The value dumps() encoded; ValueError for anything malformed. Builds no
    object but the listed types: no code runs."""
    try:
        # Trailing NULs: a fixed-size metadata region (gemini.gpu_replica) pads with them.
        doc = json.loads(bytes(data).rstrip(b"\x00").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"checkpoint metadata is not gemini JSON: {e}") from None
    return _decode(doc, "state")
