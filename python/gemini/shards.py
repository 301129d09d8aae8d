"""gemini.shards: reading any rank's shard of a job's iteration.

A shard is one rank's part of one iteration in an agent's memory. Readers that
need shards other than their own rank's (gemini.dcp, resharding restores in
gemini.reshard) read them here: from this machine's agent, else fetched from a
peer holding a replica through it. Every byte is CRC32C-checked on the way.
"""
from ._torch_version import require_supported_torch

torch = require_supported_torch()

from . import _gemini  # noqa: E402

GeminiError = _gemini.GeminiError


def read(client, job, rank, step, threads=1):
    """(manifest dict, uint8 buffer of the shard's data) of rank's shard of `step`
    of `job`: from this machine's agent, else fetched from a peer holder
    through it. The data is CRC32C-checked; a mismatch is a GeminiError."""
    try:
        shard = client.open(job, rank, step)
    except GeminiError as first:
        try:
            client.fetch(job, rank, step)
            shard = client.open(job, rank, step)
        except GeminiError as err:
            raise GeminiError(f"rank {rank}'s shard of step {step} of job {job!r} is neither "
                              f"here ({first}) nor on a peer ({err})") from None
    man = shard.manifest
    buf = torch.empty(man["data_bytes"], dtype=torch.uint8)
    _gemini.Client.read_into(shard, buf.data_ptr(), threads)  # CRC32C-checked.
    return man, buf


def index(manifest):
    """{entry name: (dtype, shape, offset, length)} of a manifest's entries."""
    return {name: (dtype, shape, offset, length)
            for name, dtype, shape, offset, length, _ in manifest["entries"]}
