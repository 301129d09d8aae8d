"""The one gemini.torch.Checkpointer on GPUs: what it costs training, against
baselines measured in the same run.

    GEMINI_SOCKET=... torchrun --nproc-per-node G bench/gpu/checkpointer_bench.py \\
        --case capture|ddp|fsdp [--out F.json]

capture  --bytes of CUDA tensors (default 12 GiB, 256 tensors) checkpointed with
         Checkpointer(tensors=...): save() to committed (wait() returns, CRC32C
         of every chunk included) against a plain asynchronous copy of the same
         tensors into page-locked host memory (the lower bound for any D2H
         checkpoint). Medians of --repeats after two warm-ups (slots page-locked).
         Then the tensors are zeroed and restored (GPU restore path), compared
         bit for bit, and the restore timed.
ddp      DDP on NCCL, 16 Linear(4096, 4096) + AdamW (3 GiB of state per rank),
         save() after every step: the checkpointer picks every k-th iteration
         to stay within its overhead budget. Mean iteration time over a phase
         holding at least --min-saves checkpoints, against no checkpoints
         (phases before and after); save() blocking.
fsdp     the GPT of gpt.py under FSDP2 (bf16 compute, fp32 AdamW; 24 x 2048 is
         1.42B parameters): as ddp, plus the blocking time of DCP async_save of
         the same state (to /dev/shm) and a restore compared bit for bit.

Rank 0 prints `RESULT {json}` (the worst rank's figures) and writes --out.
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

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # gpt.py; gemini itself is the installed package.
import gemini.torch as gt  # noqa: E402
from gemini import _gemini  # noqa: E402
from gemini.state import local_part  # noqa: E402


def gib(s):
    s = s.strip().lower()
    for suffix, mult in (("gib", 2**30), ("mib", 2**20), ("kib", 2**10)):
        if s.endswith(suffix):
            return int(float(s[:-len(suffix)]) * mult)
    return int(s)


def sync():
    torch.cuda.current_stream().synchronize()
    return time.perf_counter()


def capture_case(a, rank):
    n, per = a.tensors, gib(a.bytes) // a.tensors // 4 * 4
    tensors = {f"t{i:03d}": torch.randn(per // 4, device="cuda") for i in range(n)}
    ckpt = gt.Checkpointer(tensors=tensors, rng=False, interleave=False, job=a.job,
                           skip_after_s=60, overhead_budget=0)
    host = torch.empty(per * n, dtype=torch.uint8, pin_memory=True)
    views = [host[i * per:(i + 1) * per].view(torch.float32) for i in range(n)]
    gem, pinned, detail = [], [], []
    for r in range(a.repeats + 2):
        sync()
        t0 = time.perf_counter()
        for v, t in zip(views, tensors.values()):
            v.copy_(t, non_blocking=True)
        pinned.append(sync() - t0)
        t0 = time.perf_counter()
        ckpt.save(r + 1)
        ckpt.wait()
        gem.append(time.perf_counter() - t0)
        detail.append(ckpt._gpu.last_stats())
    # What was committed is what the GPU holds: zero the tensors, restore
    # (the GPU restore path: CRCs checked on host threads, host-to-device
    # copies into the tensors in place) and compare.
    saved = {k: t.clone() for k, t in tensors.items()}
    for t in tensors.values():
        t.zero_()
    t0 = sync()
    ok = ckpt.load_latest() == a.repeats + 2
    restore_s = sync() - t0
    ok = ok and all(torch.equal(saved[k], t) for k, t in tensors.items())
    del saved
    ckpt.close()
    med = statistics.median
    g, p = med(gem[2:]), med(pinned[2:])
    return {"bytes": per * n, "tensors": n, "save_to_committed_s": g, "pinned_copy_s": p,
            "gemini_gib_s": per * n / g / 2**30, "pinned_gib_s": per * n / p / 2**30,
            "ratio_save_vs_pinned_copy": g / p, "first_saves_s": gem[:2],
            "restored_latest": ok, "restore_s": restore_s,
            "restore_detail": getattr(ckpt, "last_restore", None), "crc_threads": ckpt._gpu_threads,
            "saver_stats": detail[2:]}


def ddp_setup(a):
    from torch.nn.parallel import DistributedDataParallel as DDP
    torch.manual_seed(0)
    net = torch.nn.Sequential(*[torch.nn.Linear(a.width, a.width) for _ in range(a.layers)])
    model = DDP(net.cuda())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randn(a.batch, a.width, device="cuda")

    def step(i):
        loss = model(x).float().pow(2).mean()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss
    return model, opt, step


def snapshot(model, opt):
    out = {"m." + k: local_part(v).detach().clone() for k, v in model.state_dict().items()}
    for i, st in enumerate(opt.state.values()):
        for k, v in st.items():
            if torch.is_tensor(v):
                out[f"o.{i}.{k}"] = local_part(v).detach().clone()
    return out


def mismatches(model, opt, snap):
    now = snapshot(model, opt)
    return sum(not torch.equal(now[k], v) for k, v in snap.items()) + len(set(now) ^ set(snap))


def timed(step, it, n, ckpt=None):
    """Runs n iterations (save() after each with a checkpointer); returns
    (seconds per iteration, the last iteration, save() blocking times)."""
    block = []
    sync()
    t0 = time.perf_counter()
    for _ in range(n):
        it += 1
        step(it)
        if ckpt is not None:
            before = ckpt.stats["saves"]
            t1 = time.perf_counter()
            ckpt.save(it)
            if ckpt.stats["saves"] > before:
                block.append(time.perf_counter() - t1)
    return (sync() - t0) / n, it, block


def training_case(a, rank, world):
    if a.case == "ddp":
        dist.init_process_group("nccl")
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        model, opt, step = ddp_setup(a)
        describe = f"DDP (NCCL), {a.layers} x Linear({a.width}, {a.width}), AdamW"
    else:
        from gpt import describe as gpt_describe, setup
        rank, world, model, opt, _, step = setup(a)
        describe = "FSDP2 " + gpt_describe(a)
    n_params = sum(p.numel() for p in model.parameters())
    it = 0
    for _ in range(3):  # Warm-up: kernels, optimizer state.
        it += 1
        step(it)
    state_bytes = sum(t.numel() * t.element_size() for t in snapshot(model, opt).values())
    none1, it, _ = timed(step, it, a.none_iters)
    ckpt = gt.Checkpointer(model, opt, job=a.job, skip_after_s=60, interleave=False)
    # The budget picks k: settle until two checkpoints in a row keep it (or
    # --settle-cap iterations), so the measured phase sees the steady state.
    _, it, _ = timed(step, it, a.settle_iters, ckpt)
    settled, k = 0, 0
    while settled < 2 and it < a.settle_cap:
        before, k_before = ckpt.stats["saves"], ckpt.stats["every_k"]
        _, it, _ = timed(step, it, max(1, k_before), ckpt)
        if ckpt.stats["saves"] > before:
            settled = settled + 1 if ckpt.stats["every_k"] == k_before else 0
    # The measured phase: long enough for --min-saves checkpoints at this k.
    k = max(1, ckpt.stats["every_k"])
    t = torch.tensor([k], dtype=torch.int64, device="cuda")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    n = min(max(a.min_iters, a.min_saves * int(t.item())), a.max_iters)
    with_ckpt, it, block = timed(step, it, n, ckpt)
    saves_in_phase = len(block)
    none2, it, _ = timed(step, it, a.none_iters)
    none = (none1 + none2) / 2

    # Restore: train until a checkpoint is taken, keep its state, train on, load.
    while True:
        it += 1
        step(it)
        before = ckpt.stats["saves"]
        ckpt.save(it)
        if ckpt.stats["saves"] > before:
            break
    saved_it, snap = it, snapshot(model, opt)
    ckpt.wait()
    it += 1
    step(it)
    dist.barrier()
    t0 = sync()
    restored = ckpt.load_latest()
    restore_s = sync() - t0
    bad = mismatches(model, opt, snap) if restored == saved_it else -1
    del snap

    dcp_block = None
    if a.case == "fsdp":
        dcp_block = dcp_async_save_blocking(a, model, opt, step, it)
    mine = {"none_iter_s": none, "none_iter_s_phases": [none1, none2],
            "ckpt_iter_s": with_ckpt, "iters_measured": n, "saves_measured": saves_in_phase,
            "every_k": ckpt.stats["every_k"], "every_k_reason": ckpt.stats["every_k_reason"],
            "blocking_s_median": statistics.median(block) if block else None,
            "blocking_s_max": max(block) if block else None,
            "copy_s_median": statistics.median(ckpt.stats["copy_s"][2:] or ckpt.stats["copy_s"]),
            "restore_s": restore_s, "restore_mismatches": bad, "restored_step": restored,
            "saved_step": saved_it, "state_bytes": state_bytes,
            "dcp_async_save_block_s": dcp_block}
    ckpt.close()
    every = [None] * world
    dist.all_gather_object(every, mine)
    worst = {k: max(r[k] for r in every) for k in mine
             if isinstance(mine[k], (int, float)) and not isinstance(mine[k], bool)}
    out = {"case": a.case, "model": describe, "params": n_params,
           "state_gib_per_rank": state_bytes / 2**30, "worst_rank": worst,
           "ratio_iter_vs_none": worst["ckpt_iter_s"] / worst["none_iter_s"],
           "restores_bit_exact": all(r["restore_mismatches"] == 0 for r in every),
           "per_rank": every}
    if dcp_block is not None:
        out["ratio_blocking_vs_dcp_async_save"] = (worst["blocking_s_median"] /
                                                   worst["dcp_async_save_block_s"])
    return out


def dcp_async_save_blocking(a, model, opt, step, it):
    """Median time dcp.async_save (with get_state_dict) blocks training, 2 saves."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict
    block, fut, paths = [], None, []
    for k in range(2):
        it += 1
        step(it)
        if fut is not None:
            fut.result()
            if dist.get_rank() == 0:  # /dev/shm holds one checkpoint at a time.
                shutil.rmtree(paths[-1], ignore_errors=True)
        dist.barrier()
        t0 = sync()
        msd, osd = get_state_dict(model, opt)
        paths.append(os.path.join(a.dcp_dir, f"step{it}"))
        fut = dcp.async_save({"model": msd, "optim": osd}, checkpoint_id=paths[-1])
        block.append(time.perf_counter() - t0)
    fut.result()
    dist.barrier()
    if dist.get_rank() == 0:
        shutil.rmtree(a.dcp_dir, ignore_errors=True)
    return statistics.median(block)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--case", choices=["capture", "ddp", "fsdp"], required=True)
    ap.add_argument("--job", default=None, help="Gemini job (default bench-CASE; dropped after)")
    ap.add_argument("--bytes", default="12GiB", help="capture: bytes of CUDA tensors")
    ap.add_argument("--tensors", type=int, default=256, help="capture: how many tensors")
    ap.add_argument("--repeats", type=int, default=5, help="capture: timed saves")
    ap.add_argument("--width", type=int, default=4096, help="ddp: Linear width")
    ap.add_argument("--none-iters", type=int, default=None, help="iterations per phase without")
    ap.add_argument("--settle-iters", type=int, default=None, help="iterations for k to settle")
    ap.add_argument("--min-iters", type=int, default=None)
    ap.add_argument("--min-saves", type=int, default=None,
                    help="checkpoints in the measured phase (default ddp 6, fsdp 3)")
    ap.add_argument("--max-iters", type=int, default=None, help="cap on the measured phase")
    ap.add_argument("--settle-cap", type=int, default=None,
                    help="iteration by which k counts as settled anyway")
    ap.add_argument("--dcp-dir", default="/dev/shm/gemini-bench-dcp")
    ap.add_argument("--out", default="")
    from gpt import add_model_args
    add_model_args(ap)
    a = ap.parse_args()
    if a.case == "ddp":
        a.layers = 16 if a.layers == 24 else a.layers  # gpt.py's default is for fsdp.
    fast = a.case == "ddp"
    a.none_iters = a.none_iters or (200 if fast else 15)
    a.min_saves = a.min_saves or (6 if fast else 3)
    a.settle_iters = a.settle_iters or (100 if fast else 10)
    a.min_iters = a.min_iters or (300 if fast else 40)
    a.max_iters = a.max_iters or (4000 if fast else 400)
    a.settle_cap = a.settle_cap or (6000 if fast else 300)
    a.job = a.job or f"bench-{a.case}"
    rank = int(os.environ.get("RANK", 0))
    if a.case == "capture":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        out = capture_case(a, rank)
    else:
        out = training_case(a, rank, int(os.environ.get("WORLD_SIZE", 1)))
    out.update({"gpu": torch.cuda.get_device_name(0), "gpus": torch.cuda.device_count(),
                "ranks": int(os.environ.get("WORLD_SIZE", 1)), "torch": torch.__version__})
    if rank == 0:
        print("RESULT " + json.dumps(out), flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=2)
        _gemini.Client(_gemini.default_socket_path()).drop_job(a.job)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
