"""A small GPT-style model trained on CPU, checkpointed every iteration with Gemini.

Run one process per rank (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT set; gloo);
`gemini demo` does this for you. Training is deterministic: the model comes from
--seed and each batch is a function of (seed, iteration, rank), so a run that
crashes and resumes from Gemini's memory must reproduce an uninterrupted run's
losses exactly. Prints one JSON line per iteration on rank 0.

    GEMINI_SOCKET=/tmp/a.sock python -m gemini.demo_train --iterations 50
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.nn as nn

import gemini.torch as gt
import gemini.teardown


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, mask):
        h = self.ln1(x)
        x = x + self.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab, d, layers, heads, seq):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(seq, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, vocab, bias=False)
        self.register_buffer("mask", torch.triu(torch.full((seq, seq), float("-inf")), 1))

    def forward(self, idx):
        x = self.tok(idx) + self.pos(torch.arange(idx.shape[1]))
        for b in self.blocks:
            x = b(x, self.mask)
        return self.head(self.ln(x))


def ordered_allreduce_hook(state, bucket):
    """A DDP communication hook that sums gradients in rank order.

    Gloo's ring allreduce adds ranks' values in an order that depends on where
    an element falls in the bucket, and DDP rebuilds its buckets after the
    first iteration, so a run resumed mid-way would add in another order and
    drift from the uninterrupted run in the last bits. Gathering every rank's
    bucket and adding them 0, 1, 2, ... makes each step a pure function of the
    state and the batch: a resumed run reproduces the uninterrupted one bit for
    bit, at any world size.
    """
    tensor = bucket.buffer()
    world = dist.get_world_size()
    parts = [torch.empty_like(tensor) for _ in range(world)]
    fut = dist.all_gather(parts, tensor, async_op=True).get_future()

    def reduce(_):
        total = parts[0].clone()
        for p in parts[1:]:
            total += p
        return total / world

    return fut.then(reduce)


def batch(seed, iteration, rank, args):
    """A deterministic batch of a toy language: x[t+1] = (a * x[t] + c) mod vocab, some noise."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + iteration * 1009 + rank)
    a = torch.randint(2, 7, (args.batch, 1), generator=g)
    x = torch.empty(args.batch, args.seq + 1, dtype=torch.long)
    x[:, 0] = torch.randint(0, args.vocab, (args.batch,), generator=g)
    for t in range(args.seq):
        x[:, t + 1] = (a[:, 0] * x[:, t] + 1) % args.vocab
    noise = torch.rand(x.shape, generator=g) < 0.05
    x[noise] = torch.randint(0, args.vocab, (int(noise.sum()),), generator=g)
    return x[:, :-1], x[:, 1:]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--job", default=os.environ.get("GEMINI_JOB", "demo"))
    p.add_argument("--no-checkpoint", action="store_true")
    p.add_argument("--overhead-budget", type=float, default=0.0,
                   help="Checkpointer overhead budget (default 0: the demo checkpoints "
                        "every iteration, whatever it costs its tiny model)")
    p.add_argument("--sleep", type=float, default=0.0, help="seconds of extra work per iteration")
    p.add_argument("--state-crcs", action="store_true",
                   help="report the CRC32C of the whole state after every iteration")
    args = p.parse_args()

    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(args.seed)
    model = GPT(args.vocab, args.dim, args.layers, args.heads, args.seq)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 10) * 0.5 * (1 + math.cos(math.pi * min(s, 1000) / 1000)))
    ckpt = None if args.no_checkpoint else gt.Checkpointer(
        model, opt, lr_scheduler=sched, job=args.job, overhead_budget=args.overhead_budget)
    if world > 1:  # The checkpointer's hook reports each allreduce (traffic interleaving).
        model.register_comm_hook(
            None, ckpt.comm_hook(ordered_allreduce_hook) if ckpt else ordered_allreduce_hook)
    t0 = time.perf_counter()
    start = ckpt.load_latest() if ckpt else None
    load_s = time.perf_counter() - t0
    params = sum(p.numel() for p in model.parameters())
    if rank == 0:
        print(json.dumps({"event": "start", "resumed_from": start, "load_s": load_s,
                          "params": params, "world": world,
                          "state_crc": gt.state_crc(model, opt)}), flush=True)
    loss_fn = nn.CrossEntropyLoss()
    for it in range((start or 0) + 1, args.iterations + 1):
        t_it = time.perf_counter()
        if ckpt:
            ckpt.begin_iteration(it)
        x, y = batch(args.seed, it, rank, args)
        loss = loss_fn(model(x).reshape(-1, args.vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
        if args.sleep:
            time.sleep(args.sleep)
        if ckpt:
            ckpt.save(it)
        # The DDP loss is this rank's; average it so every rank reports the global one.
        l = loss.detach().clone()
        if world > 1:
            dist.all_reduce(l)
            l /= world
        if rank == 0:
            rec = {"event": "iteration", "iteration": it, "loss": l.item(),
                   "iter_s": time.perf_counter() - t_it}
            if args.state_crcs:
                rec["state_crc"] = gt.state_crc(model, opt)
            if ckpt and ckpt.stats["blocking_ms"]:
                rec["save_blocking_ms"] = ckpt.stats["blocking_ms"][-1]
                rec["copy_ms"] = ckpt.stats["copy_s"][-1] * 1e3 if ckpt.stats["copy_s"] else None
            print(json.dumps(rec), flush=True)
    if ckpt:
        ckpt.close()
    if rank == 0:
        crc = gt.state_crc(model, opt)
        print(json.dumps({"event": "done", "iterations": args.iterations, "state_crc": crc}),
              flush=True)
        final = os.environ.get("GEMINI_FINAL_STATE_FILE")
        if final:
            with open(final + ".tmp", "w") as f:
                json.dump({"final_iteration": args.iterations, "final_state_crc": crc}, f)
            os.replace(final + ".tmp", final)


if __name__ == "__main__":
    sys.exit(gemini.teardown.run(main))
