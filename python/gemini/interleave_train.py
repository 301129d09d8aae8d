"""The training job of `gemini bench interleave`: DDP on gloo, checkpointed every iteration.

A stack of square linear layers trained with Adam on synthetic data, sized by
--dim and --layers so that its gradient allreduce and its checkpoint shard
load the (rate-limited) network by chosen fractions of an iteration. Every
rank appends one JSON line per iteration to $GEMINI_TIMING_DIR/rank<R>.jsonl:
its wall time, the waits the checkpointer made for replicas, whether the save
was taken, and the CRC of the previous iteration's checkpoint shard (so runs
in different modes can be compared byte for byte). Rank 0 also writes the
agent's interleaving status at the end (agent.json).

With --device cuda the model, data and optimizer state live on the GPU (rank
r on GPU r mod the GPU count; ranks may share one), DDP still allreduces over
gloo (so the training traffic crosses the hosts' links like the replicas do,
and ranks can share a GPU), and the checkpointer takes its GPU path: CRC32C
on the GPU, device-to-host copies into the agent's slot, the same agent
replicating the slot to its peers.

    RANK=0 WORLD_SIZE=1 GEMINI_SOCKET=/tmp/a.sock python -m gemini.interleave_train --iterations 5
"""
import argparse
import json
import os
import random
import sys
import time

import numpy as np

import torch
import torch.distributed as dist
import torch.nn as nn

import gemini.torch as gt
from gemini import _gemini
import gemini.teardown


def cpu_busy_s():
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return (sum(v[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--dim", type=int, default=1024)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--job", default=os.environ.get("GEMINI_JOB", "bench"))
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = p.parse_args()

    torch.set_num_threads(1)
    world = int(os.environ.get("WORLD_SIZE", 1))
    rank = int(os.environ.get("RANK", 0))
    device = torch.device("cpu")
    if args.device == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("interleave_train: --device cuda, but torch sees no GPU")
        device = torch.device("cuda", rank % torch.cuda.device_count())
        torch.cuda.set_device(device)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.manual_seed(args.seed)  # Python's and numpy's RNGs are in the checkpoint too.
    random.seed(args.seed)
    np.random.seed(args.seed)
    model = nn.Sequential(*[nn.Sequential(nn.Linear(args.dim, args.dim, bias=False), nn.Tanh())
                            for _ in range(args.layers)]).to(device)
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    # Every iteration the agent's schedule allows: the bench measures interleaving.
    ckpt = gt.Checkpointer(model, opt, job=args.job, overhead_budget=0)
    if world > 1:
        model.register_comm_hook(None, ckpt.comm_hook())
    out_dir = os.environ.get("GEMINI_TIMING_DIR", ".")
    os.makedirs(out_dir, exist_ok=True)
    out = open(os.path.join(out_dir, f"rank{rank}.jsonl"), "w")
    g = torch.Generator().manual_seed(args.seed * 1000 + rank)
    x = torch.randn(args.batch, args.dim, generator=g).to(device)
    y = torch.randn(args.batch, args.dim, generator=g).to(device)
    last_saved = None
    cpu_marks = {}
    for it in range(1, args.iterations + 1):
        if it in (args.iterations // 2, args.iterations):
            cpu_marks[it] = cpu_busy_s()
        t0 = time.perf_counter()
        n_i, n_s = len(ckpt.stats["wait_iteration_ms"]), len(ckpt.stats["wait_step_ms"])
        ckpt.begin_iteration(it)
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        saves = ckpt.stats["saves"]
        ckpt.save(it)
        if device.type == "cuda":  # The iteration's GPU work is in its time.
            torch.cuda.synchronize()
        waits_i, waits_s = ckpt.stats["wait_iteration_ms"], ckpt.stats["wait_step_ms"]
        tl = ckpt.last_timeline
        t_start = next((t for k, _, t in tl if k == 1), None)
        rec = {"iteration": it, "iter_s": time.perf_counter() - t0,
               "timeline": [(k, o, round(t - t_start, 4)) for k, o, t in tl] if t_start else [],
               "saved": ckpt.stats["saves"] > saves, "schedule": ckpt.schedule,
               "wait_iteration_ms": waits_i[n_i:], "wait_step_ms": waits_s[n_s:]}
        if last_saved is not None:  # Committed by now: its CRC, outside the timed part.
            ckpt.wait()
            try:
                rec["ckpt"] = {"iteration": last_saved,
                               "crc": ckpt.client.open(ckpt.store_job, rank, last_saved).crc}
            except _gemini.GeminiError as e:
                rec["ckpt"] = {"iteration": last_saved, "error": str(e)}
        if rec["saved"]:
            last_saved = it
        out.write(json.dumps(rec) + "\n")
        out.flush()
    ckpt.close()
    lo, hi = args.iterations // 2, args.iterations
    summary = {"rank": rank,
               "machine_cpu_s_per_iter": (cpu_marks[hi] - cpu_marks[lo]) / (hi - lo)
               if lo in cpu_marks and hi in cpu_marks and hi > lo else None, "due_timeouts": ckpt.stats["due_timeouts"],
               "skipped": ckpt.stats["skipped"], "not_due": ckpt.stats["not_due"],
               "state_crc": gt.state_crc(model, opt), "params": sum(
                   q.numel() for q in model.parameters()),
               "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
               "gpus": torch.cuda.device_count() if device.type == "cuda" else 0,
               # Whether checkpoints took the GPU data path (GPU CRCs, D2H into the slot).
               "gpu_path": ckpt._gpu is not None}
    if rank == 0:
        try:
            st = json.loads(ckpt.client.status_json())
            summary["agent"] = st.get("cluster", {}).get("interleave")
            summary["agent_cpu_s"] = st.get("cluster", {}).get("agent_cpu_s")
        except _gemini.GeminiError as e:
            summary["agent_error"] = str(e)
    out.write(json.dumps({"summary": summary}) + "\n")
    out.close()
    final = os.environ.get("GEMINI_FINAL_STATE_FILE")
    if final and rank == 0:  # `gemini launch` reads the run's end from here.
        with open(final + ".tmp", "w") as f:
            json.dump({"final_iteration": args.iterations, "final_state_crc": summary["state_crc"]}, f)
        os.replace(final + ".tmp", final)
    if world > 1:
        dist.barrier()


if __name__ == "__main__":
    sys.exit(gemini.teardown.run(main))
