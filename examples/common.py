"""What the examples share: command-line flags, the process group (NCCL on
GPUs, gloo on CPUs), a small model and a deterministic batch per step."""
import argparse
import os

import torch
import torch.distributed as dist

import gemini.teardown


def flags(description):
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--steps", type=int, default=20, help="train until this step")
    p.add_argument("--job", default=os.environ.get("GEMINI_JOB", "example"),
                   help="Gemini job name (one store namespace per job)")
    return p.parse_args()


def init():
    """The process group and this rank's device: cuda:LOCAL_RANK on GPUs, else CPU."""
    if torch.cuda.is_available():
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
        dist.init_process_group("nccl")
    else:
        device = torch.device("cpu")
        dist.init_process_group("gloo")
    return device


def model(device):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Tanh(),
                               torch.nn.Linear(64, 8)).to(device)


def batch(step, device):
    g = torch.Generator().manual_seed(1000 * step + dist.get_rank())
    return torch.randn(16, 32, generator=g).to(device)


def train_step(net, opt, x):
    """One step of the toy objective; returns the loss."""
    loss = net(x).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad()
    return loss.detach()


def announce(start):
    if dist.get_rank() == 0:
        print(f"resumed from step {start}", flush=True)


def report(step, loss):
    """Rank 0 prints each step's loss (float hex: equal text, equal bits)."""
    if dist.get_rank() == 0:
        print(f"step {step} loss {float(loss).hex()}", flush=True)


def run(main):
    """Runs main(), then destroys the process group once main's objects are gone
    (gemini.teardown: a group freed at interpreter exit can hang or abort gloo)."""
    gemini.teardown.run(main)
