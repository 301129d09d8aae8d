"""Saves a known state every iteration until killed (used by the crash test).

The state at iteration i is pattern(i): tensors whose every byte depends on i,
so a torn checkpoint (a mix of two iterations) cannot pass for either. Prints
"committed i" after each save that is known committed (after wait()).
Usage: pattern_saver.py START END
"""
import sys

import torch

import gemini.torch as gt

SIZES = [(1 << 20,), (256, 1024), (3, 5, 7), (1 << 18,)]  # ~5 MiB of float32 + small ones


def pattern(i):
    return {f"t{k}": (torch.arange(torch.Size(s).numel(), dtype=torch.float32).reshape(s)
                      * 0.001 + i) for k, s in enumerate(SIZES)}


def main():
    start, end = int(sys.argv[1]), int(sys.argv[2])
    state = pattern(0)
    ckpt = gt.Checkpointer(tensors=state, job="crash")
    for i in range(start, end + 1):
        ckpt.wait()
        print(f"committed {i - 1}", flush=True)
        for k, v in pattern(i).items():
            state[k].copy_(v)
        ckpt.save(i)
    ckpt.wait()
    print(f"committed {end}", flush=True)


if __name__ == "__main__":
    main()
