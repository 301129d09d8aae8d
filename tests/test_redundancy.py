"""Reed-Solomon redundancy from the command line: `gemini placement
--redundancy rs:K+F` prints the exact recovery probability, and `gemini bench
erasure` round-trips a shard through K+F fragments with data fragments lost."""
import json
import subprocess
from math import comb

from conftest import GEMINI


def gemini(*args):
    r = subprocess.run([GEMINI, *args], capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout, r.stderr


def test_placement_rs_probability_is_exact():
    rc, out, err = gemini("placement", "-n", "12", "--redundancy", "rs:4+2", "-k", "3", "--json")
    assert rc == 0, err
    p = json.loads(out)
    assert p["redundancy"] == "rs:4+2" and p["tolerates"] == 2 and p["memory_factor"] == 1.5
    assert p["groups"] == [list(range(6)), list(range(6, 12))]
    # Lost only when all 3 failures hit one group of 6.
    assert abs(p["recovery_probability"] - (1 - 2 * comb(6, 3) / comb(12, 3))) < 1e-12
    rc, _, err = gemini("placement", "-n", "12", "--redundancy", "rs:4+0")
    assert rc == 2 and "F (parity fragments) must be 1 or more" in err


def test_bench_erasure_round_trips():
    rc, out, err = gemini("bench", "erasure", "--bytes", "4MiB", "--redundancy", "rs:3+2",
                          "--repeats", "1", "--json")
    assert rc == 0, err
    b = json.loads(out)
    assert b["verified"] and b["lost_data_fragments"] == 2
    assert b["bytes_sent_per_checkpoint"] < b["bytes_sent_copies_same_tolerance"]
    assert b["encode_ratio"] > 0 and b["decode_ratio"] > 0
