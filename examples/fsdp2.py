"""FSDP2 (fully_shard) with gemini.torch.Checkpointer, on CPUs (gloo) or GPUs.

    torchrun --nproc-per-node 2 examples/fsdp2.py --steps 20

Each rank checkpoints its own shards (DTensor local parts) every iteration and
restores them in place.
"""
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard

import gemini.torch as gt
from common import announce, batch, flags, init, model, report, run, train_step


def main():
    args = flags(__doc__)
    device = init()
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    net = model(device)
    for layer in net:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer, mesh=mesh)
    fully_shard(net, mesh=mesh)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    ckpt = gt.Checkpointer(state={"model": net, "optim": opt}, job=args.job)
    start = ckpt.load_latest() or 0
    announce(start)
    for step in range(start + 1, args.steps + 1):
        loss = train_step(net, opt, batch(step, device))
        ckpt.save(step)
        report(step, loss)
    ckpt.close()


if __name__ == "__main__":
    run(main)
