"""Saves rank R's deterministic pattern for iterations FIRST..LAST through the
native client (one rank of a multi-machine job, without torch.distributed).
Usage: rank_saver.py RANK WORLD FIRST LAST [SLEEP_S]"""
import sys

import numpy as np

import gemini


def pattern(rank, iteration, size=(1 << 20) + 4096 * 7):
    rng = np.random.default_rng(rank * 100003 + iteration)
    return rng.integers(0, 256, size, dtype=np.uint8)


def main():
    rank, world, first, last = map(int, sys.argv[1:5])
    sleep = float(sys.argv[5]) if len(sys.argv) > 5 else 0.0
    client = gemini.Client(gemini.default_socket_path())
    for it in range(first, last + 1):
        data = pattern(rank, it)
        client.save("job", rank, world, it,
                    [("t", "uint8", [data.size], data.ctypes.data, data.size, 0)],
                    chunk_size=256 << 10)
        print(f"saved {it}", flush=True)
        if sleep:
            import time
            time.sleep(sleep)


if __name__ == "__main__":
    main()
