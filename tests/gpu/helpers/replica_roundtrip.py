"""Run with torchrun on 2 GPUs, one agent each (GEMINI_SOCKETS): FSDP2 training
checkpointed every iteration by gemini.gpu_replica in each mode, then restored
from this rank's agent and from the replica the other rank's agent holds, both
compared bit-exact. Writes $GEMINI_TEST_OUT/rank<r>.json."""
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "python"))
from gemini.gpu import GpuCheckpointer  # noqa: E402
from gemini.gpu_replica import ReplicatedFSDPCheckpointer  # noqa: E402
from fsdp_roundtrip import Block  # noqa: E402  (this directory)


def main():
    dist.init_process_group("cpu:gloo,cuda:nccl")
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    sockets = os.environ["GEMINI_SOCKETS"].split(",")
    torch.manual_seed(0)
    d = 256
    model = nn.Sequential(*[Block(d) for _ in range(4)]).cuda()
    for b in model:
        fully_shard(b)
    fully_shard(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def train(step):
        g = torch.Generator(device="cuda").manual_seed(1000 * step + rank)
        model(torch.randn(8, 16, d, device="cuda", generator=g)).square().mean().backward()
        opt.step()
        opt.zero_grad()

    step, results = 0, {}
    # CRCs by the GPU kernel (the default) in every mode, and on host threads once.
    for name, mode, crc in (("naive", "naive", "gpu"), ("overlap", "overlap", "gpu"),
                            ("interleave", "interleave", "gpu"),
                            ("overlap-hostcrc", "overlap", "host")):
        # 8 MiB in 2 sub-buffers: 4 MiB chunks, so every checkpoint reuses each sub-buffer.
        ckpt = ReplicatedFSDPCheckpointer(model, opt, job="replica-test", socket=sockets[rank],
                                          mode=mode, buffer_bytes=8 << 20, sub_buffers=2,
                                          warmup=2, skip=1, crc=crc)
        for _ in range(8):
            step += 1
            train(step)
            ckpt.save(step)
        dev, cpu = ckpt._state()
        snap = {n: t.clone() for n, t in dev} | {n: t.clone() for n, t in cpu.items()}
        ckpt.wait()
        train(step + 1)
        restored = ckpt.load_latest()
        dev, cpu = ckpt._state()
        now = dict(dev) | cpu
        local_bad = [n for n, t in snap.items() if not torch.equal(now[n], t)]
        train(step + 2)
        other = GpuCheckpointer(job="replica-test", socket=sockets[(rank + 1) % world],
                                rank=rank, world=world)
        dev, _ = ckpt._state()
        other.load(dict(dev), iteration=step)
        torch.cuda.synchronize()
        dev, _ = ckpt._state()
        replica_bad = [n for n, t in dev if not torch.equal(t, snap[n])]
        other.close()
        results[name] = {"saved": step, "restored": restored, "local_mismatched": local_bad,
                         "replica_mismatched": replica_bad, "counters": ckpt.counters,
                         "chunks": len(ckpt._cache[1]) if ckpt._cache else 0}
        ckpt.close()
        step += 2
    with open(os.path.join(os.environ["GEMINI_TEST_OUT"], f"rank{rank}.json"), "w") as f:
        json.dump(results, f)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
