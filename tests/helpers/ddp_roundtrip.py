"""DDP rank process for the split/reassemble test: `save` trains 3 steps and
checkpoints each; `load` restores into a fresh model. Rank 0 prints a digest of
the whole model + optimizer state."""
import hashlib
import os
import sys

import torch
import torch.distributed as dist

import gemini.torch as gt
import gemini.teardown


def digest(model, opt):
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode() + v.numpy().tobytes())
    for pid, st in sorted(opt.state_dict()["state"].items()):
        for k, v in sorted(st.items()):
            h.update(f"{pid}.{k}".encode() + v.numpy().tobytes())
    return h.hexdigest()


def main():
    mode = sys.argv[1]
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    torch.manual_seed(0 if mode == "save" else 5)
    model = torch.nn.parallel.DistributedDataParallel(
        torch.nn.Sequential(torch.nn.Linear(100, 300), torch.nn.Tanh(), torch.nn.Linear(300, 7)))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    ckpt = gt.Checkpointer(model, opt, job="ddp")
    if mode == "save":
        for step in range(1, 4):
            g = torch.Generator().manual_seed(step * 10 + rank)
            model(torch.randn(8, 100, generator=g)).sum().backward()
            opt.step()
            opt.zero_grad()
            ckpt.save(step)
        ckpt.wait()
    else:
        assert ckpt.load_latest() == 3
    if rank == 0:
        print(digest(model, opt), flush=True)
    dist.barrier()


if __name__ == "__main__":
    gemini.teardown.run(main)
