"""FSDP2 checkpoint benchmarks: Gemini (gemini.fsdp_shards, the per-rank shard capture) vs torch.distributed.checkpoint.

Run with torchrun on every GPU of the machine, beside a `gemini agent`
(GEMINI_SOCKET). A GPT-style model (default 24 layers x 2048, ~1.3B parameters)
is trained with fully_shard (bf16 compute, fp32 master weights, AdamW); the
state each rank checkpoints is its shard of the parameters and of both Adam
moments (~12 bytes per parameter). Measured in this run:

  (b*) median iteration time with a Gemini capture after every step vs none.
       Local capture only: the GPU-to-GPU replication modes (naive,
       interleave) of the issue are not built, so this is not (b) itself.
  (c)  time save() blocks the training loop, Gemini vs DCP async_save to
       /dev/shm of the same state (get_state_dict + async_save until it returns).
  (d)  restore time: Gemini load_latest() (CRC32C check + host-to-device) vs
       DCP load from /dev/shm + set_state_dict. Both restores are checked
       bit-exact against a copy of the state taken at the checkpoint.

Rank 0 prints one JSON object (medians per rank, max over ranks) and writes it
to --out if given.
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import time

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "python"))
from gemini.fsdp_shards import ShardCheckpointer as FSDPCheckpointer  # noqa: E402


from gpt import add_model_args, describe, setup  # noqa: E402


def sync_time():
    # The training stream only: a device-wide sync would also wait for
    # Gemini's copy stream, which training itself never does.
    torch.cuda.current_stream().synchronize()
    return time.perf_counter()


def snapshot(ckpt):
    dev, cpu = ckpt._state()
    return {n: t.clone() for n, t in dev} | {n: t.clone() for n, t in cpu.items()}


def mismatches(ckpt, snap):
    dev, cpu = ckpt._state()
    now = dict(dev) | cpu
    return sum(not torch.equal(now[n], t) for n, t in snap.items())


def main():
    ap = argparse.ArgumentParser()
    add_model_args(ap)
    ap.add_argument("--iters", type=int, default=6, help="timed iterations per phase")
    ap.add_argument("--dcp-saves", type=int, default=3)
    ap.add_argument("--dcp-dir", default="/dev/shm/gemini-bench-dcp")
    ap.add_argument("--threads", type=int, default=8, help="CRC32C threads per rank")
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    rank, world, model, opt, n_params, step = setup(a)

    ckpt = FSDPCheckpointer(model, opt, job="fsdp-bench", threads=a.threads, skip_after_s=60)
    it = 0
    for _ in range(3):  # Warm-up (creates the optimizer state).
        it += 1
        step(it)
    state_bytes = sum(t.numel() * t.element_size() for _, t in ckpt._state()[0])

    # none: iteration time without checkpoints.
    none_s = []
    for _ in range(a.iters):
        it += 1
        t0 = sync_time()
        step(it)
        none_s.append(sync_time() - t0)

    # DCP async_save of the same state to /dev/shm, after every step.
    dcp_block, dcp_total, fut, paths = [], [], None, []
    for k in range(a.dcp_saves):
        it += 1
        step(it)
        if fut is not None:
            fut.result()
            dcp_total.append(time.perf_counter() - t_start)
        path = os.path.join(a.dcp_dir, f"step{it}")
        if rank == 0 and len(paths) >= 2:
            shutil.rmtree(paths.pop(0), ignore_errors=True)
        dist.barrier()
        torch.cuda.synchronize()
        t_start = time.perf_counter()
        msd, osd = get_state_dict(model, opt)
        fut = dcp.async_save({"model": msd, "optim": osd}, checkpoint_id=path)
        dcp_block.append(time.perf_counter() - t_start)
        paths.append(path)
    fut.result()
    dcp_total.append(time.perf_counter() - t_start)
    dcp_path = paths[-1]
    dcp_snap = snapshot(ckpt)  # The state the last DCP checkpoint holds.

    # Gemini: a capture after every step (the first two also page-lock the slots).
    gem_block, gem_iter, gem_step, gem_stats = [], [], [], []
    for k in range(a.iters + 2):
        it += 1
        t0 = sync_time()
        step(it)
        t1 = time.perf_counter()
        ckpt.save(it)
        t2 = time.perf_counter()
        t3 = sync_time()
        if k >= 2:
            gem_block.append(t2 - t1)
            gem_iter.append(t3 - t0)
            gem_step.append(t1 - t0)
        if k >= 1:
            gem_stats.append(ckpt.gpu.last_stats())  # The previous save's.
    ckpt.wait()
    gem_stats.append(ckpt.gpu.last_stats())
    gem_snap = snapshot(ckpt)
    gem_it = it

    # Restores: perturb, then load each checkpoint and compare bit-exact.
    it += 1
    step(it)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    restored = ckpt.load_latest()
    torch.cuda.synchronize()
    gem_restore = time.perf_counter() - t0
    gem_bad = mismatches(ckpt, gem_snap) if restored == gem_it else -1
    restore_stats = ckpt.gpu.last_restore
    it += 1
    step(it)
    dist.barrier()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    msd, osd = get_state_dict(model, opt)
    sd = {"model": msd, "optim": osd}
    dcp.load(sd, checkpoint_id=dcp_path)
    set_state_dict(model, opt, model_state_dict=sd["model"], optim_state_dict=sd["optim"])
    torch.cuda.synchronize()
    dcp_restore = time.perf_counter() - t0
    dcp_bad = mismatches(ckpt, dcp_snap)
    ckpt.close()
    dist.barrier()
    if rank == 0:
        shutil.rmtree(a.dcp_dir, ignore_errors=True)

    med = statistics.median
    mine = {
        "none_iter_s": med(none_s), "gemini_iter_s": med(gem_iter),
        "gemini_step_s": med(gem_step),
        "gemini_block_s": med(gem_block), "dcp_block_s": med(dcp_block),
        "dcp_save_total_s": med(dcp_total),
        "gemini_capture_s": med(s["total_s"] for s in gem_stats[2:]),
        "gemini_first_capture_s": gem_stats[0]["total_s"],
        "gemini_crc_busy_s": med(s["crc_s"] for s in gem_stats[2:]),
        "gemini_slot_pinned": all(s["pinned"] for s in gem_stats),
        "gemini_gpu_waits": gem_stats[-1]["gpu_waits"],
        "gemini_restore_s": gem_restore, "gemini_restore_detail": restore_stats,
        "dcp_restore_s": dcp_restore,
        "gemini_restore_mismatches": gem_bad, "dcp_restore_mismatches": dcp_bad,
        "state_bytes": state_bytes,
    }
    every = [None] * world
    dist.all_gather_object(every, mine)
    if rank == 0:
        worst = {k: max(r[k] for r in every) for k in mine if isinstance(mine[k], (int, float))
                 and not isinstance(mine[k], bool)}
        out = {
            "gpu": torch.cuda.get_device_name(0), "gpus": world, "params": n_params,
            "model": describe(a),
            "state_gib_per_rank": state_bytes / 2**30,
            "worst_rank": worst,
            "ratio_b_local_capture_iter_vs_none": worst["gemini_iter_s"] / worst["none_iter_s"],
            "ratio_c_blocking_vs_dcp_async_save": worst["gemini_block_s"] / worst["dcp_block_s"],
            "ratio_d_restore_vs_dcp_load": worst["gemini_restore_s"] / worst["dcp_restore_s"],
            "restores_bit_exact": all(r["gemini_restore_mismatches"] == 0 and
                                      r["dcp_restore_mismatches"] == 0 for r in every),
            "per_rank": every,
        }
        print("RESULT " + json.dumps(out), flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=2)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
