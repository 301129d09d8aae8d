"""(b): FSDP2 training with a checkpoint every iteration, replicated GPU to GPU.

Run with torchrun on every GPU, one `gemini agent` per GPU standing for one
machine each (GEMINI_SOCKETS: comma-separated, rank r uses the r-th). Trains
the GPT of bench/gpu/gpt.py with fully_shard and, phase by phase, checkpoints
every iteration with gemini.gpu_replica in each mode of --modes (each rank's
checkpoint goes to its own agent and, over NCCL, to the next rank's):

  none        no checkpoint (the baseline; run first and last, averaged)
  naive       the traffic runs at once and the next iteration waits for it
  overlap     the traffic runs at once, ungated; only the next step waits
  interleave  after a profile, the traffic is placed in the idle spans
              between the training's collectives (Algorithm 2)

A mode may end in /host (e.g. overlap/host): CRCs on host threads instead of
the GPU kernel.

Iteration times come from CUDA events on the training stream at each
iteration start (no host synchronization inside a phase). After the last
checkpointing phase each rank restores its state from its own agent and from
the replica the next rank's agent holds, and both are compared bit-exact with
a copy of the state taken at that checkpoint. Rank 0 prints RESULT <json>.
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
from gemini.gpu import GpuCheckpointer  # noqa: E402
from gemini.gpu_replica import ReplicatedFSDPCheckpointer  # noqa: E402
from gpt import add_model_args, describe, setup  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    add_model_args(ap, accum=4)
    ap.add_argument("--iters", type=int, default=8, help="measured iterations per phase")
    ap.add_argument("--warmup", type=int, default=4, help="unmeasured iterations per phase")
    ap.add_argument("--profile", type=int, default=3, help="interleave: profiled iterations")
    ap.add_argument("--modes", default="none,naive,overlap,interleave,none")
    ap.add_argument("--buffer-mib", type=int, default=512)
    ap.add_argument("--sub-buffers", type=int, default=4)
    ap.add_argument("--crc-threads", type=int, default=4, help="host CRC threads per pass")
    ap.add_argument("--out", default="")
    a = ap.parse_args()

    rank, world, model, opt, n_params, train = setup(a)
    sockets = os.environ["GEMINI_SOCKETS"].split(",")

    it = 0
    for _ in range(3):
        it += 1
        train(it)
    phases, last_ckpt, verify = [], None, None
    modes = a.modes.split(",")
    last_saving = max((i for i, m in enumerate(modes) if m != "none"), default=-1)
    for pi, label in enumerate(modes):
        mode, _, crc = label.partition("/")
        ckpt = ReplicatedFSDPCheckpointer(
            model, opt, job="replica-bench", socket=sockets[rank], mode=mode,
            buffer_bytes=a.buffer_mib << 20, sub_buffers=a.sub_buffers, warmup=a.profile,
            crc=crc or "gpu", crc_threads=a.crc_threads)
        warm = a.warmup + (a.profile + 1 if mode == "interleave" else 0)
        marks = []
        t_phase = time.perf_counter()
        for k in range(warm + a.iters + 1):
            it += 1
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            if k >= warm:
                marks.append(ev)
            if k == warm + a.iters:
                break
            train(it)
            ckpt.save(it)
        torch.cuda.synchronize()
        times = [x.elapsed_time(y) / 1e3 for x, y in zip(marks, marks[1:])]
        snap, saved_it = None, None
        if pi == last_saving:  # Keep the state of the last checkpoint for the restore checks.
            dev, cpu = ckpt._state()
            snap = {n: t.clone() for n, t in dev} | {n: t.clone() for n, t in cpu.items()}
            saved_it = it - 1
        ckpt.wait()
        host = {k: statistics.median(v[-a.iters:]) if v else 0.0 for k, v in ckpt.host_s.items()}
        gpu_ms = {k: statistics.median(v[-a.iters:]) if v else 0.0 for k, v in ckpt.gpu_ms.items()}
        phases.append({"mode": label, "iter_s": statistics.median(times), "iters": times,
                       "phase_s": time.perf_counter() - t_phase, "counters": dict(ckpt.counters),
                       "host_save_s": host["save"], "host_sync_s": host["sync"],
                       "host_start_s": host["start"], "gpu_ms": gpu_ms})
        if rank == 0:
            print(f"phase {pi} {label}: median {statistics.median(times)*1e3:.1f} ms over "
                  f"{len(times)} iterations {[round(t * 1e3) for t in times]}, host ms "
                  f"{({k: round(v * 1e3, 1) for k, v in host.items()})}, gpu ms "
                  f"{({k: [round(x) for x in v[-a.iters:]] for k, v in ckpt.gpu_ms.items()})}"
                  f", {ckpt.counters}",
                  flush=True)
        if snap is not None:
            # Restore from this rank's agent, then from the replica the next rank's agent holds.
            train(it + 1)
            restored = ckpt.load_latest()
            dev, cpu = ckpt._state()
            now = dict(dev) | cpu
            local_bad = sum(not torch.equal(now[n], t) for n, t in snap.items())
            train(it + 2)
            other = GpuCheckpointer(job="replica-bench", socket=sockets[(rank + 1) % world],
                                    rank=rank, world=world)
            dev, _ = ckpt._state()
            t0 = time.perf_counter()
            other.load(dict(dev), iteration=saved_it)
            torch.cuda.synchronize()
            replica_restore_s = time.perf_counter() - t0
            dev, _ = ckpt._state()
            replica_bad = sum(not torch.equal(t, snap[n]) for n, t in dev)
            other.close()
            verify = {"iteration": saved_it, "local_restored": restored,
                      "local_mismatches": local_bad, "replica_mismatches": replica_bad,
                      "replica_restore_s": replica_restore_s, "tensors": len(snap)}
            it += 2
        ckpt.close()
        last_ckpt = ckpt
    state_bytes = sum(t.numel() * t.element_size() for _, t in last_ckpt._state()[0])
    mine = {"phases": phases, "verify": verify}
    every = [None] * world
    dist.all_gather_object(every, mine)
    if rank == 0:
        worst = [max(r["phases"][i]["iter_s"] for r in every) for i in range(len(modes))]
        base = [w for w, m in zip(worst, modes) if m == "none"]
        none_s = sum(base) / len(base) if base else float("nan")
        out = {
            "gpu": torch.cuda.get_device_name(0), "gpus": world, "params": n_params,
            "model": describe(a),
            "state_gib_per_rank": state_bytes / 2**30,
            "buffer": f"R = {a.buffer_mib} MiB in p = {a.sub_buffers} sub-buffers",
            "none_iter_s": none_s,
            "phases": [{"mode": m, "iter_s": w, "ratio_vs_none": w / none_s}
                       for m, w in zip(modes, worst)],
            "verify": [r["verify"] for r in every],
            "per_rank": every,
        }
        print("RESULT " + json.dumps(out), flush=True)
        if a.out:
            with open(a.out, "w") as f:
                json.dump(out, f, indent=2)
        for ph, r0 in zip(out["phases"], every[0]["phases"]):
            c = r0["counters"]
            print(f"{ph['mode']:<11} iter {ph['iter_s']*1e3:7.1f} ms  ratio {ph['ratio_vs_none']:.3f}"
                  f"  saves {c['saves']} committed {c['committed']} replicas "
                  f"{c['replicas_committed']} gated {c['gated_chunks']} crc_mismatch "
                  f"{c['crc_mismatch']}  plan {c['plan']}", flush=True)
        print("verify", out["verify"], flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
