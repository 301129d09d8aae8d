"""A torchtitan-style loop: the trainer's state is a dict of Stateful objects
(model, optimizer, LR scheduler, dataloader, train state), checkpointed every
iteration by gemini.torch.Checkpointer(state=...).

    torchrun --nproc-per-node 2 examples/titan_style.py --steps 20
"""
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

import gemini.torch as gt
from common import announce, flags, init, model, report, run, train_step


class TrainState:
    """Stateful: what the loop itself must remember (the step, a running loss)."""

    def __init__(self):
        self.step, self.loss_ema = 0, 0.0

    def state_dict(self):
        return {"step": self.step, "loss_ema": self.loss_ema}

    def load_state_dict(self, sd):
        self.step, self.loss_ema = sd["step"], sd["loss_ema"]


class Loader:
    """Stateful: a dataloader that resumes at the batch it stopped at."""

    def __init__(self, device):
        self.device, self.position = device, 0

    def __next__(self):
        self.position += 1
        g = torch.Generator().manual_seed(1000 * self.position + dist.get_rank())
        return torch.randn(16, 32, generator=g).to(self.device)

    def state_dict(self):
        return {"position": self.position}

    def load_state_dict(self, sd):
        self.position = sd["position"]


def main():
    args = flags(__doc__)
    device = init()
    net = DDP(model(device))
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 5))
    loader, train_state = Loader(device), TrainState()
    ckpt = gt.Checkpointer(state={"model": net, "optimizer": opt, "lr_scheduler": sched,
                                  "dataloader": loader, "train_state": train_state},
                           job=args.job)
    ckpt.load_latest()
    announce(train_state.step)
    while train_state.step < args.steps:
        train_state.step += 1
        loss = train_step(net, opt, next(loader))
        sched.step()
        train_state.loss_ema = 0.9 * train_state.loss_ema + 0.1 * float(loss)
        ckpt.save(train_state.step)
        report(train_state.step, loss)
    ckpt.close()


if __name__ == "__main__":
    run(main)
