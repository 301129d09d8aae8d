"""torchrun helper: DTensors sharded Shard(0) over this world's mesh, saved
through gemini.dcp.MemoryWriter (mode save) or loaded through MemoryReader
(mode load, any world size); prints CRCs of the whole tensors on rank 0."""
import sys
import zlib

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.tensor import DTensor, Shard


def full_state():
    g = torch.Generator().manual_seed(1234)
    return {"w": torch.randn(10, 6, generator=g),  # 10 rows: uneven over 4 ranks.
            "b": torch.randn(7, generator=g).to(torch.bfloat16),
            "e": torch.randint(0, 1 << 40, (12, 3), generator=g, dtype=torch.int64),
            "f8": torch.randn(9, 4, generator=g).to(torch.float8_e4m3fn)}


def raw(t):
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes()


def crc(t):
    return zlib.crc32(raw(t))


def shard0(full, mesh):
    """full as a DTensor sharded Shard(0) over mesh, built locally (gloo cannot
    scatter float8)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    rows = -(-full.shape[0] // world)
    local = full[rank * rows:(rank + 1) * rows].clone()
    return DTensor.from_local(local, mesh, [Shard(0)], run_check=False, shape=full.shape,
                              stride=full.stride())


def full_crc(dt):
    """CRC of a Shard(0) DTensor's whole bytes: the ranks' local bytes in order."""
    parts = [None] * dist.get_world_size()
    dist.all_gather_object(parts, raw(dt.to_local()))
    return zlib.crc32(b"".join(parts))


def main():
    from gemini.dcp import MemoryReader, MemoryWriter  # Here: the stock loader imports this file.

    mode, step = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 7
    dist.init_process_group("gloo")
    mesh = init_device_mesh("cpu", (dist.get_world_size(),))
    full = full_state()
    if mode == "save":
        sd = {"model": {k: shard0(v, mesh) for k, v in full.items()},
              "extra": {"step": step, "note": "hello"}, "plain": torch.arange(5)}
        dcp.save(sd, storage_writer=MemoryWriter(step))
        crcs = {k: full_crc(v) for k, v in sd["model"].items()}
        extra = sd["extra"]
    else:
        sd = {"model": {k: shard0(torch.zeros_like(v), mesh) for k, v in full.items()},
              "extra": {"step": -1, "note": ""}, "plain": torch.zeros(5, dtype=torch.int64)}
        reader = MemoryReader()
        dcp.load(sd, storage_reader=reader)
        crcs = {k: full_crc(v) for k, v in sd["model"].items()}
        assert torch.equal(sd["plain"], torch.arange(5)), sd["plain"]
        extra = sd["extra"]
        step = reader.step
    if dist.get_rank() == 0:
        print(f"step {step} extra {extra['step']} {extra['note']} " +
              " ".join(f"{k}:{crcs[k]:08x}" for k in sorted(crcs)))


if __name__ == "__main__":
    import gemini.teardown  # Here: the stock loader imports this file without gemini.

    gemini.teardown.run(main)
