"""What checkpoint traffic costs FSDP2 training, one kind at a time.

Run with torchrun on every GPU. Trains the GPT of bench/gpu/gpt.py with
fully_shard and, after each optimizer step, moves the rank's whole checkpoint
state (its shards of parameters and Adam moments) in one of these ways on a
side stream, ungated, then makes the next optimizer step wait for it on the GPU:

  none       nothing (the baseline)
  d2h        device-to-host into a pinned buffer (the local capture, no CRC)
  nccl       to the next rank over NCCL on a communicator of its own, in
             chunks through a staging buffer (the replica's GPU-to-GPU leg)
  both       d2h + nccl + the receiver's device-to-host of what it received
  gemini:T   gemini.fsdp_shards capture (agent slot, CRC32C on T host threads)

For each, the median iteration, and from CUDA events around the training's
collectives (gemini.gpu_timeline) the collectives' busy time and the idle
time between them. Rank 0 prints RESULT <json>.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.distributed as dist

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from gemini.gpu_timeline import CollectiveProbe  # noqa: E402
from gpt import add_model_args, setup  # noqa: E402


def state_tensors(model, opt):
    out = []
    for p in model.parameters():
        out.append(p.detach().to_local() if hasattr(p, "to_local") else p.detach())
        for k, v in sorted(opt.state.get(p, {}).items()):
            if torch.is_tensor(v) and v.is_cuda:
                out.append(v.to_local() if hasattr(v, "to_local") else v)
    return [t.reshape(-1).view(torch.uint8) for t in out]


def main():
    ap = argparse.ArgumentParser()
    add_model_args(ap, accum=4)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--chunk-mib", type=int, default=64)
    ap.add_argument("--variants", default="none,d2h,nccl,both,none")
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    rank, world, model, opt, _, train_step = setup(a)
    rep_group = dist.new_group(backend="nccl")
    probe = CollectiveProbe(exclude_groups=[rep_group]).install()
    side = torch.cuda.Stream()
    done = None  # event on `side` the next optimizer step waits for

    inner_step = opt.step

    def step_with_wait(*args, **kw):
        probe.before_step()
        if done is not None:
            torch.cuda.current_stream().wait_event(done)
        return inner_step(*args, **kw)

    opt.step = step_with_wait

    def train(i):
        probe.begin_iteration()
        train_step(i)

    it = 0
    for _ in range(3):
        it += 1
        train(it)
    tensors = state_tensors(model, opt)
    nbytes = sum(t.numel() for t in tensors)
    chunk = a.chunk_mib << 20
    host = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    host_rx = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
    stage = torch.empty(2, chunk, dtype=torch.uint8, device="cuda")
    rx = torch.empty(2, chunk, dtype=torch.uint8, device="cuda")
    nxt, prv = (rank + 1) % world, (rank - 1) % world

    def pieces():  # (chunk index, [(tensor, lo, hi, pos in chunk)])
        cur, fill, k = [], 0, 0
        for t in tensors:
            lo = 0
            while lo < t.numel():
                n = min(t.numel() - lo, chunk - fill)
                cur.append((t, lo, lo + n, fill))
                lo += n
                fill += n
                if fill == chunk:
                    yield k, cur, fill
                    cur, fill, k = [], 0, k + 1
        if cur:
            yield k, cur, fill

    def move(kind):
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            if kind in ("d2h", "both"):
                pos = 0
                for t in tensors:
                    host[pos:pos + t.numel()].copy_(t, non_blocking=True)
                    pos += t.numel()
            if kind in ("nccl", "both"):
                for k, parts, fill in pieces():
                    buf = stage[k % 2]
                    for t, lo, hi, at in parts:
                        buf[at:at + hi - lo].copy_(t[lo:hi])
                    ops = [dist.P2POp(dist.isend, buf[:fill], nxt, group=rep_group),
                           dist.P2POp(dist.irecv, rx[k % 2][:fill], prv, group=rep_group)]
                    for w in dist.batch_isend_irecv(ops):
                        w.wait()
                    if kind == "both":
                        host_rx[k * chunk:k * chunk + fill].copy_(rx[k % 2][:fill],
                                                                  non_blocking=True)
        ev = torch.cuda.Event()
        ev.record(side)
        return ev

    results = {}
    for vi, variant in enumerate(a.variants.split(",")):
        kind, _, threads = variant.partition(":")
        ckpt = None
        if kind == "gemini":
            from gemini.fsdp_shards import ShardCheckpointer as FSDPCheckpointer
            ckpt = FSDPCheckpointer(model, opt, job="traffic-probe", threads=int(threads),
                                    skip_after_s=60, wrap_step=True)
        times, profiles, moves = [], [], []
        for k in range(a.iters + 2):
            it += 1
            torch.cuda.current_stream().synchronize()
            t0 = time.perf_counter()
            train(it)
            if kind in ("d2h", "nccl", "both"):
                done = move(kind)
            elif ckpt is not None:
                ckpt.save(it)
            torch.cuda.current_stream().synchronize()
            t1 = time.perf_counter()
            if k >= 2:
                times.append(t1 - t0)
                profiles.append(probe.profile())
            if done is not None:
                s0 = time.perf_counter()
                done.synchronize()
                moves.append(time.perf_counter() - s0)
        if ckpt is not None:
            ckpt.close()
        torch.cuda.synchronize()
        done = None
        med = statistics.median
        results[f"{vi}:{variant}"] = {
            "iter_s": med(times), "iters": times,
            "busy_ms": med(p["busy_ms"] for p in profiles),
            "idle_ms": med(p["idle_ms"] for p in profiles),
            "step_ms": med(p["step_ms"] for p in profiles),
            "collectives": len(profiles[-1]["ops"]),
            "spans": len(profiles[-1]["spans"]),
            "longest_span_ms": max((s[2] for s in profiles[-1]["spans"]), default=0),
            "move_left_after_iter_s": med(moves) if moves else 0,
        }
    every = [None] * world
    dist.all_gather_object(every, results)
    if rank == 0:
        base = [k for k in results if k.endswith(":none")]
        out = {"gpu": torch.cuda.get_device_name(0), "gpus": world,
               "state_gib_per_rank": nbytes / 2**30,
               "model": f"GPT {a.layers}x{a.dim}, batch {a.batch}x{a.accum}, seq {a.seq}",
               "per_rank": every,
               "ratio_vs_first_none": {k: max(r[k]["iter_s"] for r in every) /
                                       max(r[base[0]]["iter_s"] for r in every)
                                       for k in results}}
        print("RESULT " + json.dumps(out), flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=2)
        for k in results:
            w = max(every, key=lambda r: r[k]["iter_s"])[k]
            print(f"{k:<14} iter {w['iter_s']*1e3:7.1f} ms  ratio {out['ratio_vs_first_none'][k]:.3f}"
                  f"  coll busy {w['busy_ms']:.0f} idle {w['idle_ms']:.0f} ms  "
                  f"{w['collectives']} ops {w['spans']} spans (longest {w['longest_span_ms']:.0f})"
                  f"  left {w['move_left_after_iter_s']*1e3:.0f} ms", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
