"""gemini.dcp: torch.distributed.checkpoint (DCP) storage in Gemini's memory.

    import torch.distributed.checkpoint as dcp
    from gemini.dcp import MemoryWriter, MemoryReader

    dcp.save(state_dict, storage_writer=MemoryWriter(step))        # or dcp.async_save
    dcp.load(state_dict, storage_reader=MemoryReader())            # newest complete step
    latest_step()                                                  # None: nothing to load

Each rank's DCP write items become one shard of the job's iteration ``step``
in the local agent's memory, replicated to peers like any Gemini checkpoint.
The coordinator's shard also holds DCP's global metadata as JSON (no pickle):
which chunks of which tensors exist and which rank's shard holds each.

Loading works with another world size and another sharding: DCP's planner
asks for byte ranges of saved chunks, and the reader serves them from
whichever shard holds them: this machine's agent, or (fetched through it,
CRC-checked) a peer holding a replica. Every byte is CRC32C-checked before it
is handed to DCP.

``python -m gemini.dcp export --job J [--step N] OUT_DIR`` writes an
iteration held in memory as a stock DCP directory that ``dcp.load`` reads
without Gemini (it assembles the whole state in the exporting process).

Saving after a restore onto a different world size needs a new job name (or
the old job dropped, ``gemini.Client(socket).drop_job(job)``): a job's
checkpoints have one world size.
"""
import argparse
import io
import json
import os
import sys

from ._torch_version import require_supported_torch

torch = require_supported_torch()
import torch.distributed as dist  # noqa: E402
from torch.distributed.checkpoint import StorageReader, StorageWriter  # noqa: E402
from torch.distributed.checkpoint.metadata import (  # noqa: E402
    BytesStorageMetadata, ChunkStorageMetadata, Metadata, MetadataIndex, TensorProperties,
    TensorStorageMetadata)
from torch.distributed.checkpoint.planner import LoadItemType, WriteItemType  # noqa: E402
from torch.distributed.checkpoint.storage import WriteResult  # noqa: E402

from . import _gemini, codec, shards  # noqa: E402
from .state import DTYPE_NAMES, DTYPES, as_cpu_contiguous, entry, nbytes  # noqa: E402

GeminiError = _gemini.GeminiError
FORMAT = "gemini-dcp/1"
META_ENTRY = "dcp/metadata"  # In the coordinator's shard: the global metadata (JSON).
RANK_ENTRY = "dcp/rank"  # In every shard: which rank wrote it (JSON).


def _done(value):
    fut = torch.futures.Future()
    fut.set_result(value)
    return fut


def _dist_on():
    return dist.is_available() and dist.is_initialized()


def _step_of(checkpoint_id):
    try:
        return int(os.fspath(checkpoint_id)) if not isinstance(checkpoint_id, int) else checkpoint_id
    except (TypeError, ValueError):
        return None


def _reset_step(step, checkpoint_id):
    """The step a DCP checkpoint_id names (None: keep `step`)."""
    if checkpoint_id is None:
        return step
    got = _step_of(checkpoint_id)
    if got is None:
        raise ValueError(f"gemini.dcp: checkpoint_id {checkpoint_id!r} is not a step number")
    return got


class _Location:
    """Where a write item's bytes live: an entry of one rank's shard."""

    def __init__(self, rank, entry_name):
        self.rank, self.entry = rank, entry_name


class _Endpoint:
    def __init__(self, job, socket):
        self.job = job or os.environ.get("GEMINI_JOB", "default")
        self.client = _gemini.Client(socket or _gemini.default_socket_path())
        self.rank = dist.get_rank() if _dist_on() else 0
        self.world = dist.get_world_size() if _dist_on() else 1


class MemoryWriter(StorageWriter):
    """A DCP StorageWriter into Gemini's memory: iteration ``step`` of ``job``.

    Args:
      step: the iteration number (also accepted as dcp.save's checkpoint_id).
      job: job name (default $GEMINI_JOB or "default").
      socket: the agent's socket (default $GEMINI_SOCKET or /run/gemini/agent.sock).
      wait_s: how long a save may wait for the slot it overwrites (the previous
        iteration must be complete on every rank first); then it fails.
      threads: native copy threads.
    """

    def __init__(self, step=None, *, job=None, socket=None, wait_s=120.0, threads=1):
        super().__init__()
        self.step = None if step is None else int(step)
        self._job, self._socket = job, socket
        self.wait_ms, self.threads = int(wait_s * 1000), threads
        self._end = None
        self._coordinator = False
        self._held = None  # The coordinator's tensors, saved in finish() with the metadata.

    @classmethod
    def validate_checkpoint_id(cls, checkpoint_id):
        return _step_of(checkpoint_id) is not None

    def reset(self, checkpoint_id=None):
        self.step = _reset_step(self.step, checkpoint_id)
        self._held = None

    def set_up_storage_writer(self, is_coordinator, *args, **kwargs):
        if self.step is None:
            raise ValueError("gemini.dcp.MemoryWriter: no step (MemoryWriter(step) or "
                             "dcp.save(..., checkpoint_id=step))")
        self._end = self._end or _Endpoint(self._job, self._socket)
        self._coordinator = bool(is_coordinator)

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        return plans

    def write_data(self, plan, planner):
        rank = self._end.rank
        held, results = [], []
        for i, item in enumerate(plan.items):
            data = planner.resolve_data(item)
            if item.type == WriteItemType.BYTE_IO:
                t = torch.frombuffer(bytearray(data.getbuffer()), dtype=torch.uint8)
            else:
                t = as_cpu_contiguous(data)
                if t.dtype not in DTYPE_NAMES:
                    raise TypeError(f"gemini.dcp: {item.index.fqn}: dtype {t.dtype} cannot be "
                                    f"stored")
            name = f"dcp/item/{i}"
            held.append((name, t))
            results.append(WriteResult(index=item.index, size_in_bytes=nbytes(t),
                                       storage_data=_Location(rank, name)))
        held.append((RANK_ENTRY, _json_tensor({"format": FORMAT, "rank": rank})))
        if self._coordinator:
            self._held = held  # Saved with the global metadata, in finish().
        else:
            self._save(held)
        return _done(results)

    def finish(self, metadata, results):
        storage = []
        for rank_results in results:
            for r in rank_results:
                loc = r.storage_data
                off = None if r.index.offset is None else list(r.index.offset)
                storage.append([r.index.fqn, off, loc.rank, loc.entry])
        held = self._held or [(RANK_ENTRY, _json_tensor({"format": FORMAT,
                                                          "rank": self._end.rank}))]
        held.append((META_ENTRY, _json_tensor(_encode_metadata(metadata, storage,
                                                               self._end.world, self.step))))
        self._held = None
        self._save(held)

    def storage_meta(self):
        return None

    def _save(self, named):
        e = self._end
        entries = [entry(n, t) for n, t in named]
        try:
            e.client.save(e.job, e.rank, e.world, self.step, entries, self.threads, 4 << 20,
                          self.wait_ms)
        except GeminiError as err:
            raise GeminiError(f"gemini.dcp: rank {e.rank} could not save step {self.step} of job "
                              f"{e.job!r}: {err}") from None


class MemoryReader(StorageReader):
    """A DCP StorageReader from Gemini's memory.

    Args:
      step: the iteration to load; None (default) = the newest iteration complete
        on every rank of the saving job (ranks agree on the smallest they see).
      job, socket, threads: as for MemoryWriter.
    """

    def __init__(self, step=None, *, job=None, socket=None, threads=1):
        super().__init__()
        self.step = None if step is None else int(step)
        self._job, self._socket, self.threads = job, socket, threads
        self._end = None
        self._storage = {}  # MetadataIndex -> (rank, entry)
        self._group = None

    validate_checkpoint_id = MemoryWriter.validate_checkpoint_id

    def reset(self, checkpoint_id=None):
        self.step = _reset_step(self.step, checkpoint_id)

    def _resolve_step(self):
        e = self._end
        if self.step is not None:
            return self.step
        newest = e.client.complete_iteration(e.job)
        if e.world > 1:
            # Every rank's agent answers for itself: load what all of them have.
            if self._group is None and dist.get_backend() != "gloo":
                self._group = dist.new_group(backend="gloo")
            t = torch.tensor([newest], dtype=torch.int64)
            dist.all_reduce(t, op=dist.ReduceOp.MIN, group=self._group)
            newest = int(t.item())
        if newest < 0:
            raise GeminiError(f"gemini.dcp: job {e.job!r} has no complete checkpoint in memory")
        self.step = newest
        return newest

    def read_metadata(self):
        self._end = self._end or _Endpoint(self._job, self._socket)
        step = self._resolve_step()
        buf, index = _read_shard(self._end, 0, step, self.threads)
        if META_ENTRY not in index:
            raise GeminiError(f"gemini.dcp: step {step} of job {self._end.job!r} was not saved "
                              f"through gemini.dcp.MemoryWriter (rank 0's shard has no DCP "
                              f"metadata)")
        metadata, self._storage = _decode_metadata(_entry_json(buf, index, META_ENTRY),
                                                   f"step {step} of job {self._end.job!r}")
        return metadata

    def set_up_storage_reader(self, metadata, is_coordinator, *args, **kwargs):
        if not self._storage:  # A reader given metadata it did not read itself.
            self._storage = {MetadataIndex(fqn, off): (r, name)
                             for fqn, off, r, name in metadata.storage_data}

    def prepare_local_plan(self, plan):
        return plan

    def prepare_global_plan(self, plans):
        return plans

    def read_data(self, plan, planner):
        by_rank = {}
        for item in plan.items:
            if item.storage_index not in self._storage:
                raise GeminiError(f"gemini.dcp: the checkpoint has no chunk "
                                  f"{item.storage_index}")
            rank, name = self._storage[item.storage_index]
            by_rank.setdefault(rank, []).append((item, name))
        for rank, items in sorted(by_rank.items()):
            buf, index = _read_shard(self._end, rank, self.step, self.threads)
            for item, name in items:
                if name not in index:
                    raise GeminiError(f"gemini.dcp: rank {rank}'s shard of step {self.step} "
                                      f"has no entry {name!r}")
                dtype, shape, data = _entry_bytes(buf, index, name)
                if item.type == LoadItemType.BYTE_IO:
                    planner.load_bytes(item, io.BytesIO(_plain_pickle(data, item, self.step)))
                    continue
                saved = data.view(dtype).reshape(shape)
                for dim, (start, length) in enumerate(zip(item.storage_offsets, item.lengths)):
                    saved = saved.narrow(dim, start, length)
                target = planner.resolve_tensor(item).detach()
                if target.size() != saved.size():
                    raise GeminiError(f"gemini.dcp: {item.storage_index.fqn}: the chunk has "
                                      f"shape {tuple(saved.size())}, the target "
                                      f"{tuple(target.size())}")
                target.copy_(saved)
                planner.commit_tensor(item, target)
            del buf
        return _done(None)


def latest_step(job=None, socket=None):
    """The newest iteration of ``job`` complete in this machine's agent, or None:
    whether there is anything for MemoryReader() to load."""
    client = _gemini.Client(socket or _gemini.default_socket_path())
    step = client.complete_iteration(job or os.environ.get("GEMINI_JOB", "default"))
    return None if step < 0 else step


# ------------------------------------------------------------------ helpers
def _json_tensor(obj):
    return torch.frombuffer(bytearray(json.dumps(obj).encode()), dtype=torch.uint8)


def _read_shard(end, rank, step, threads):
    """(uint8 buffer, {entry name: (dtype, shape, offset, length)}) of rank's shard."""
    try:
        man, buf = shards.read(end.client, end.job, rank, step, threads)
    except GeminiError as err:
        raise GeminiError(f"gemini.dcp: {err}") from None
    return buf, shards.index(man)


def _plain_pickle(data, item, step):
    """A non-tensor value's bytes, once torch's restricted (weights_only) unpickler
    accepts them. DCP's planner unpickles them without restriction; a value
    altered in memory or on a peer must not get that far."""
    raw = data.numpy().tobytes()
    try:
        torch.load(io.BytesIO(raw), weights_only=True)
    except Exception as e:  # noqa: BLE001 - any failure means: not plain data.
        lines = [ln for ln in str(e).splitlines() if "Unpickler error" in ln] or [str(e)]
        raise GeminiError(f"gemini.dcp: value {item.storage_index.fqn!r} of step {step} is not "
                          f"plain data (refused, nothing run): {lines[0].strip()[:200]}") from None
    return raw


def _entry_bytes(buf, index, name):
    dtype, shape, offset, length = index[name]
    return DTYPES[dtype], tuple(shape), buf[offset:offset + length]


def _entry_json(buf, index, name):
    _, _, data = _entry_bytes(buf, index, name)
    return data.numpy().tobytes()


def _encode_metadata(md, storage, world, step):
    state = {}
    for fqn, m in md.state_dict_metadata.items():
        if isinstance(m, BytesStorageMetadata):
            state[fqn] = {"type": "bytes"}
        else:
            state[fqn] = {"type": "tensor", "dtype": DTYPE_NAMES[m.properties.dtype],
                          "requires_grad": bool(m.properties.requires_grad),
                          "size": list(m.size),
                          "chunks": [[list(c.offsets), list(c.sizes)] for c in m.chunks]}
    try:  # Only codec values travel (the default planner's are tuples of keys).
        planner_json = json.loads(codec.dumps(md.planner_data))
    except TypeError:
        planner_json = None
    return {"format": FORMAT, "world": world, "step": step, "state": state,
            "storage": storage, "planner_data": planner_json}


def _decode_metadata(raw, what):
    """Metadata and the storage map from the JSON that _encode_metadata made;
    a ValueError-free path: anything malformed is a GeminiError naming it."""
    def bad(why):
        return GeminiError(f"gemini.dcp: {what} has invalid DCP metadata (refused): {why}")

    try:
        doc = json.loads(raw)
    except ValueError as e:
        raise bad(e) from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad(f"format is not {FORMAT}")

    def ints(v, where):
        if not isinstance(v, list) or not all(isinstance(x, int) and x >= 0 for x in v):
            raise bad(f"{where}: expected a list of non-negative integers")
        return v

    state = {}
    for fqn, m in (doc.get("state") or {}).items():
        if not isinstance(m, dict):
            raise bad(f"{fqn}: not an object")
        if m.get("type") == "bytes":
            state[fqn] = BytesStorageMetadata()
            continue
        if m.get("type") != "tensor" or m.get("dtype") not in DTYPES:
            raise bad(f"{fqn}: unknown type or dtype")
        size = ints(m.get("size"), fqn)
        chunks = []
        for c in m.get("chunks") or []:
            if not isinstance(c, list) or len(c) != 2:
                raise bad(f"{fqn}: bad chunk")
            off, sz = ints(c[0], fqn), ints(c[1], fqn)
            if len(off) != len(size) or len(sz) != len(size) or any(
                    o + s > n for o, s, n in zip(off, sz, size)):
                raise bad(f"{fqn}: chunk {c} outside size {size}")
            chunks.append(ChunkStorageMetadata(offsets=torch.Size(off), sizes=torch.Size(sz)))
        props = TensorProperties(dtype=DTYPES[m["dtype"]],
                                 requires_grad=bool(m.get("requires_grad", False)))
        state[fqn] = TensorStorageMetadata(properties=props, size=torch.Size(size), chunks=chunks)
    storage = {}
    for s in doc.get("storage") or []:
        if not (isinstance(s, list) and len(s) == 4 and isinstance(s[0], str)
                and isinstance(s[2], int) and s[2] >= 0 and isinstance(s[3], str)):
            raise bad(f"bad storage record {s!r:.80}")
        fqn, off, rank, name = s
        storage[MetadataIndex(fqn, None if off is None else ints(off, fqn))] = (rank, name)
    planner_data = None
    if doc.get("planner_data") is not None:
        try:
            planner_data = codec.loads(json.dumps(doc["planner_data"]).encode())
        except (TypeError, ValueError) as e:
            raise bad(f"planner_data: {e}") from None
    metadata = Metadata(state_dict_metadata=state, planner_data=planner_data,
                        storage_data=doc.get("storage"))
    return metadata, storage


# ------------------------------------------------------------------- export
def export(job, out_dir, step=None, socket=None, threads=1):
    """Write iteration ``step`` (default: the newest complete) of ``job`` from the
    agent's memory as a stock DCP directory; returns the step written."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemWriter

    reader = MemoryReader(step, job=job, socket=socket, threads=threads)
    md = reader.read_metadata()
    sd = {}
    for fqn, m in md.state_dict_metadata.items():
        sd[fqn] = None if isinstance(m, BytesStorageMetadata) else torch.empty(
            m.size, dtype=m.properties.dtype)
    dcp.load(sd, storage_reader=reader, no_dist=True)
    dcp.save(sd, storage_writer=FileSystemWriter(out_dir), no_dist=True)
    return reader.step


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m gemini.dcp",
                                description="Gemini's DCP storage: export an iteration held in "
                                            "memory as a stock DCP directory.")
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export", help="write an iteration as a stock DCP directory")
    e.add_argument("out_dir")
    e.add_argument("--job", default=os.environ.get("GEMINI_JOB", "default"))
    e.add_argument("--step", type=int, default=None, help="default: the newest complete")
    e.add_argument("--socket", default=None)
    e.add_argument("--threads", type=int, default=4)
    a = p.parse_args(argv)
    try:
        step = export(a.job, a.out_dir, a.step, a.socket, a.threads)
    except GeminiError as err:
        print(f"gemini.dcp export: {err}", file=sys.stderr)
        return 1
    print(f"exported step {step} of job {a.job!r} to {a.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
