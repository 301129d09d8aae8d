"""Run with torchrun on N GPUs: FSDP2 training, gemini.fsdp save (the alias of
gemini.torch.Checkpointer kept for a release), perturb, load,
bit-exact check; then one more step from the restored state must equal the
same step taken before the perturbation. Writes $GEMINI_TEST_OUT/rank<r>.json."""
import json
import os
import sys

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.distributed.fsdp import fully_shard

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "..", "python"))
from gemini.fsdp import FSDPCheckpointer  # noqa: E402
from gemini.state import local_part  # noqa: E402


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.norm = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x):
        return x + self.fc2(torch.relu(self.fc1(self.norm(x))))


def batch(step, d, rank):
    g = torch.Generator(device="cuda").manual_seed(1000 * step + rank)
    return torch.randn(8, 16, d, device="cuda", generator=g)


def train_step(model, opt, step, d, rank):
    loss = model(batch(step, d, rank)).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()


def snapshot(model, opt):
    out = {"m." + n: local_part(v).detach().clone() for n, v in model.state_dict().items()}
    params = [p for g in opt.param_groups for p in g["params"]]
    for i, p in enumerate(params):
        for k, v in opt.state.get(p, {}).items():
            if torch.is_tensor(v):
                out[f"o.{i}.{k}"] = local_part(v).detach().clone()
    return out


def main():
    dist.init_process_group("nccl")
    rank = dist.get_rank()
    torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    torch.manual_seed(0)
    d = 257  # Odd: uneven shards, padding.
    model = nn.Sequential(*[Block(d) for _ in range(3)]).cuda()
    for b in model:
        fully_shard(b)
    fully_shard(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
    ckpt = FSDPCheckpointer(model, opt, job="fsdp-test")
    assert ckpt.load_latest() is None
    for step in range(1, 4):
        train_step(model, opt, step, d, rank)
        ckpt.save(step)
    ckpt.wait()
    saved = snapshot(model, opt)
    lr_saved = opt.param_groups[0]["lr"]
    train_step(model, opt, 4, d, rank)
    after4 = snapshot(model, opt)
    for step in range(5, 7):  # Perturb further, without checkpoints.
        train_step(model, opt, step, d, rank)
    opt.param_groups[0]["lr"] = 123.0
    changed = sum(not torch.equal(saved[n], t) for n, t in snapshot(model, opt).items())
    restored_step = ckpt.load_latest()
    now = snapshot(model, opt)
    mismatched = [n for n in saved if not torch.equal(saved[n], now[n])]
    lr_ok = opt.param_groups[0]["lr"] == lr_saved
    train_step(model, opt, 4, d, rank)
    redo = snapshot(model, opt)
    max_diff = max((redo[n].double() - after4[n].double()).abs().max().item()
                   for n in after4 if after4[n].numel())
    res = {"rank": rank, "restored_step": restored_step, "tensors": len(saved),
           "changed_by_perturbation": changed, "mismatched": mismatched[:5],
           "lr_restored": lr_ok, "redo_step4_max_abs_diff": max_diff,
           "restore": getattr(ckpt, "last_restore", None)}
    with open(os.path.join(os.environ["GEMINI_TEST_OUT"], f"rank{rank}.json"), "w") as f:
        json.dump(res, f)
    ok = restored_step == 3 and not mismatched and changed > 0 and lr_ok and max_diff <= 1e-6
    ckpt.close()
    dist.destroy_process_group()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
