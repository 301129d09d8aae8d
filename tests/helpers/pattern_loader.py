"""Loads the newest checkpoint of the crash test and checks it is exactly pattern(step).
Prints "loaded STEP ok" or exits non-zero."""
import sys

import torch

import gemini.torch as gt
from pattern_saver import pattern


def main():
    state = {k: torch.zeros_like(v) for k, v in pattern(0).items()}
    step = gt.Checkpointer(tensors=state, job="crash").load_latest()
    if step is None:
        print("loaded none", flush=True)
        return
    want = pattern(step)
    for k in state:
        if not torch.equal(state[k], want[k]):
            print(f"loaded {step} TORN in {k}", flush=True)
            sys.exit(1)
    print(f"loaded {step} ok", flush=True)


if __name__ == "__main__":
    main()
