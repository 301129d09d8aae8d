"""FSDP2 (fully_shard) on CPU over gloo, one rank of a torchrun job, with the one
gemini.torch.Checkpointer. `save`: trains steps 1-3 with a checkpoint after each,
then steps 4-6 without (the uninterrupted reference). `load`: a fresh model and
optimizer (another seed) restore step 3 and train steps 4-6. Rank 0 prints the
losses of steps 4-6 as float hex, so equal output means bit-identical training."""
import sys

import torch
import torch.distributed as dist

import gemini.torch as gt
from fsdp_cpu import optimizer_and_scheduler, shard_on_cpu
import gemini.teardown


def main():
    mode = sys.argv[1]
    dist.init_process_group("gloo")
    torch.manual_seed(0 if mode == "save" else 7)
    model = shard_on_cpu(torch.nn.Sequential(torch.nn.Linear(24, 40), torch.nn.Tanh(),
                                             torch.nn.Linear(40, 5)))
    opt, sched = optimizer_and_scheduler(model)
    ckpt = gt.Checkpointer(state={"model": model, "optim": opt, "sched": sched}, job="fsdp-cpu")
    assert not ckpt.replicated  # Each rank stores its own shards.

    def train(step):
        g = torch.Generator().manual_seed(step * 100 + dist.get_rank())
        loss = model(torch.randn(8, 24, generator=g)).pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
        sched.step()
        return loss.detach()

    if mode == "save":
        for step in range(1, 4):
            train(step)
            ckpt.save(step)
        ckpt.wait()
    else:
        assert ckpt.load_latest() == 3
    losses = [train(step) for step in range(4, 7)]
    if dist.get_rank() == 0:
        print(" ".join(float(x).hex() for x in losses), flush=True)
    ckpt.close()


if __name__ == "__main__":
    gemini.teardown.run(main)
