"""gemini.replica_layout: how a checkpoint's region is cut into replication
chunks, and when the interleave plan makes each chunk due.

Pure code (no CUDA), shared by gemini.gpu_replica and its CPU unit tests.
The region is the agent manifest's data region: entries back to back at their
(aligned) offsets, padding between them. Chunk k covers region bytes
[k*chunk, (k+1)*chunk); it is packed from the pieces of the entries it
overlaps, and its padding is zeroed, so that the chunk's bytes (and CRCs) are
exactly those of the region.
"""
import bisect


def region_pieces(manifest, sources, chunk):
    """For each chunk k: (length, [(source, lo, hi, position in chunk)], gaps).

    manifest: {"data_bytes", "entries": [(name, dtype, shape, offset, length, _)]}
    sources: one sliceable byte sequence per entry (same order), `length` long.
    gaps: [(a, b)] ranges of the chunk no entry covers (to be zeroed).
    """
    if chunk <= 0:
        raise ValueError("chunk must be positive")
    data_bytes = manifest["data_bytes"]
    count = (data_bytes + chunk - 1) // chunk
    per = [[] for _ in range(count)]
    for (name, _, _, off, length, _), src in zip(manifest["entries"], sources):
        if off + length > data_bytes:
            raise ValueError(f"entry {name!r} ends past the region ({off}+{length} > {data_bytes})")
        lo = 0
        while lo < length:
            k = (off + lo) // chunk
            n = min(length - lo, (k + 1) * chunk - (off + lo))
            per[k].append((src, lo, lo + n, off + lo - k * chunk))
            lo += n
    out = []
    for k in range(count):
        clen = min(chunk, data_bytes - k * chunk)
        gaps, at = [], 0
        for _, lo, hi, pos in sorted(per[k], key=lambda x: x[3]):
            if pos > at:
                gaps.append((at, pos))
            at = max(at, pos + hi - lo)
        if clen > at:
            gaps.append((at, clen))
        out.append((clen, per[k], gaps))
    return out


class DueChunks:
    """The interleave plan {anchor: [chunk indices]} as "how many chunks are due
    once collective `anchor` has ended": the chunks of every anchor up to it,
    so chunks whose anchor passed before the checkpoint could start are due at
    the next collective. Anchor -1 is the iteration start."""

    def __init__(self, plan):
        self.anchors = sorted(plan)
        self.due = [0]
        for a in self.anchors:
            self.due.append(max(self.due[-1], max(plan[a], default=-1) + 1))

    def __call__(self, anchor):
        return self.due[bisect.bisect_right(self.anchors, anchor)]
