"""Reads rank R's shard at ITERATION from the local agent and checks it is
exactly the pattern. Usage: rank_loader.py RANK ITERATION"""
import sys

import numpy as np

import gemini
from rank_saver import pattern


def main():
    rank, it = int(sys.argv[1]), int(sys.argv[2])
    client = gemini.Client(gemini.default_socket_path())
    shard = client.open("job", rank, it)
    buf = np.empty(shard.manifest["data_bytes"], dtype=np.uint8)
    gemini.Client.read_into(shard, buf.ctypes.data)
    want = pattern(rank, it)
    ok = np.array_equal(buf[:want.size], want)
    print("identical" if ok else "DIFFERENT", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
