"""torchrun helper for tests/test_reshard.py: one rank of a tiny job (`ddp`, or
`fsdp`: fully_shard on a CPU gloo mesh) checkpointed with gemini.torch.Checkpointer.

    reshard_train.py KIND LAST_STEP

restores whatever load_latest finds (any saved world size), then trains and
saves up to LAST_STEP. Rank 0 prints `restored STEP crc CRC` after the restore
and `saved STEP crc CRC` once the last checkpoint is committed; CRC covers the
whole model and optimizer state (DTensors gathered with full_tensor()), so equal
CRCs at a save and after a restore mean a bit-exact restore whatever the world."""
import sys
import zlib

import torch
import torch.distributed as dist
from torch.distributed.tensor import DTensor

import gemini.torch as gt
from fsdp_cpu import optimizer_and_scheduler, shard_on_cpu
import gemini.teardown


def whole(t):
    return t.full_tensor() if isinstance(t, DTensor) else t


def full_crc(model, opt, sched):
    """CRC32 of the whole state in a world-independent order (DDP's "module." dropped)."""
    crc = 0
    sd = model.state_dict()
    for k in sorted(sd, key=lambda k: k.removeprefix("module.")):
        crc = zlib.crc32(whole(sd[k]).contiguous().view(-1).view(torch.uint8).numpy(), crc)
    st = opt.state_dict()
    for pid in sorted(st["state"]):
        for k in sorted(st["state"][pid]):
            t = whole(st["state"][pid][k])
            crc = zlib.crc32(t.contiguous().view(-1).view(torch.uint8).numpy(), crc)
    hyper = [(g["lr"], g["betas"], g["weight_decay"]) for g in st["param_groups"]]
    crc = zlib.crc32(repr((hyper, sched.state_dict()["last_epoch"])).encode(), crc)
    return crc


def build(kind):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.Tanh(), torch.nn.Linear(40, 5))
    if kind == "ddp":
        model = torch.nn.parallel.DistributedDataParallel(model)
    else:
        model = shard_on_cpu(model)
    return (model, *optimizer_and_scheduler(model))


def main():
    kind, last = sys.argv[1], int(sys.argv[2])
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    model, opt, sched = build(kind)
    ckpt = gt.Checkpointer(state={"model": model, "optim": opt, "sched": sched}, job=kind)
    start = ckpt.load_latest() or 0
    crc = full_crc(model, opt, sched)
    if rank == 0:
        print(f"restored {start} crc {crc:08x} into {ckpt.store_job}", flush=True)
    for step in range(start + 1, last + 1):
        g = torch.Generator().manual_seed(step * 100 + rank)
        model(torch.randn(8, 24, generator=g)).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        ckpt.save(step)
    ckpt.wait()
    crc = full_crc(model, opt, sched)
    if rank == 0:
        print(f"saved {last} crc {crc:08x} into {ckpt.store_job}", flush=True)
    ckpt.close()
    del ckpt, model, opt, sched
    dist.barrier()


if __name__ == "__main__":
    gemini.teardown.run(main)
