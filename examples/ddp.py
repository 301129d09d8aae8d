"""DDP with gemini.torch.Checkpointer, on CPUs (gloo) or GPUs (NCCL).

    gemini agent &                                   # once per machine
    torchrun --nproc-per-node 2 examples/ddp.py --steps 20

Every iteration is checkpointed into the agent's memory (each rank stores
1/world of the replicated state); a restarted job resumes from the newest
iteration every rank holds.
"""
import torch
from torch.nn.parallel import DistributedDataParallel as DDP

import gemini.torch as gt
from common import announce, batch, flags, init, model, report, run, train_step


def main():
    args = flags(__doc__)
    device = init()
    net = DDP(model(device))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.StepLR(opt, 5, gamma=0.5)
    ckpt = gt.Checkpointer(net, opt, lr_scheduler=sched, job=args.job)
    start = ckpt.load_latest() or 0
    announce(start)
    for step in range(start + 1, args.steps + 1):
        loss = train_step(net, opt, batch(step, device))
        sched.step()
        ckpt.save(step)
        report(step, loss)
    ckpt.close()


if __name__ == "__main__":
    run(main)
