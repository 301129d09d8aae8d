"""The CPU-testable parts of the GPU replication path: how a region is cut into
chunks (gemini.replica_layout), how idle spans come out of one iteration's
collectives (gemini.gpu_timeline.spans_from_ops), and Algorithm 2 as the GPU
executor calls it (_gemini.partition with whole chunks only), and when the
plan makes chunks due (gemini.replica_layout.DueChunks)."""
import pytest

from gemini import _gemini
from gemini.gpu_timeline import spans_from_ops
from gemini.replica_layout import DueChunks, region_pieces


def rebuild(manifest, sources, chunk):
    """Packs every chunk as the executor does; returns the region's bytes."""
    out = bytearray()
    for length, parts, gaps in region_pieces(manifest, sources, chunk):
        buf = bytearray(b"\xff" * length)  # stale bytes, as in a reused sub-buffer
        for a, b in gaps:
            buf[a:b] = bytes(b - a)
        for src, lo, hi, pos in parts:
            buf[pos:pos + hi - lo] = src[lo:hi]
        out += buf
    return bytes(out)


def test_chunks_rebuild_the_region_with_zeroed_padding():
    a, b, c = bytes(range(1, 101)), bytes(range(101, 151)), bytes([7] * 300)
    man = {"data_bytes": 512, "entries": [("a", "uint8", [100], 0, 100, 0),
                                          ("b", "uint8", [50], 128, 50, 0),
                                          ("c", "uint8", [300], 192, 300, 0)]}
    region = bytearray(512)
    region[0:100], region[128:178], region[192:492] = a, b, c
    for chunk in (64, 100, 128, 512, 1000):
        assert rebuild(man, [a, b, c], chunk) == bytes(region), chunk
    pieces = region_pieces(man, [a, b, c], 64)
    assert [p[0] for p in pieces] == [64] * 8
    assert pieces[1][2] == [(36, 64)]  # a ends at 100; b starts at 128


def test_an_entry_past_the_region_is_an_error():
    man = {"data_bytes": 64, "entries": [("a", "uint8", [100], 0, 100, 0)]}
    with pytest.raises(ValueError, match="past the region"):
        region_pieces(man, [bytes(100)], 32)


def test_spans_are_the_gaps_between_merged_collectives():
    ops = [("ag", 1.0, 3.0), ("ag", 2.0, 4.0), ("rs", 6.0, 7.0), ("rs", 6.5, 6.8)]
    p = spans_from_ops(ops, 10.0)
    assert p["busy"] == [(1.0, 4.0), (6.0, 7.0)]
    # Anchors: -1 (iteration start), op 1 (ends the first busy interval), op 2.
    assert p["spans"] == [(-1, 0.0, 1.0), (1, 4.0, 2.0), (2, 7.0, 3.0)]
    assert p["busy_ms"] == pytest.approx(4.0) and p["idle_ms"] == pytest.approx(6.0)
    assert spans_from_ops([], 5.0)["spans"] == [(-1, 0.0, 5.0)]


def test_partition_places_whole_chunks_in_order_and_leftovers_last():
    chunk = 64 << 20
    spans = [0.010, 0.001, 0.030, 0.002]  # seconds; the last is the span before the step
    plan = _gemini.partition(spans, 10 * chunk, 1, 4 * chunk, 4, 10e9, 0.0, 0.9, chunk)
    offsets = [c[1] for span in plan for c in span]
    assert offsets == [k * chunk for k in range(10)]
    assert all(c[2] == chunk for span in plan for c in span)
    assert plan[1] == []  # 1 ms cannot hold a 6.7 ms chunk
    assert all(c[3] for c in plan[-1]) and not any(c[3] for span in plan[:-1] for c in span)


def test_chunks_fall_due_at_their_anchor_and_late_ones_at_the_next_collective():
    due = DueChunks({-1: [0, 1], 7: [2], 30: [3, 4, 5]})
    assert due(-1) == 2       # the iteration start
    assert due(3) == 2        # a collective without chunks: nothing new
    assert due(7) == 3
    assert due(12) == 3
    assert due(30) == 6
    assert due(10**6) == 6
    # A checkpoint that starts after anchors 7 and 30 passed: all due at once.
    assert due(31) == 6
    assert DueChunks({})(5) == 0
