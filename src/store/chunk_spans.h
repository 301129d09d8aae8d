// A shard's chunk CRC32Cs from checksums of its sources, without reading the
// copied region back.
//
// A GPU capture checksums each tensor where it already is (device memory, on
// the GPU) while the copy engine moves it to the slot; the host would
// otherwise reread every byte it received. CutChunkSpans() cuts the data
// region into spans that each lie inside one chunk and inside one entry (or
// one gap of padding between entries); whoever computes a span's raw CRC
// register (RawCrc on the host, the span kernel of src/gpu on the device) can
// then have FoldChunkCrcs() combine the spans into exactly the per-chunk
// CRC32Cs that the manifest commits (the arithmetic of common/crc32c_pieces.h).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "store/manifest.h"

namespace gemini {

struct ChunkSpan {
  uint64_t offset = 0;        // In the data region.
  uint64_t length = 0;        // > 0; never crosses a chunk or entry boundary.
  int64_t entry = -1;         // Index into the manifest's entries; -1: padding (zeros).
  uint64_t entry_offset = 0;  // Where the span starts inside its entry.
};

// Spans in region order covering [0, data_bytes) exactly. InvalidArgument when
// entries overlap or leave the region (a manifest Validate() accepts never does).
Result<std::vector<ChunkSpan>> CutChunkSpans(const Manifest& m);

// The raw register g(0, p[0..n)) of crc32c_pieces (state 0, no inversion),
// through ISA-L's CRC32C.
uint32_t RawCrc(const void* p, uint64_t n);

// One CRC32C per chunk from raw[i] = the raw register of spans[i]'s bytes.
std::vector<uint32_t> FoldChunkCrcs(const Manifest& m, const std::vector<ChunkSpan>& spans,
                                    const std::vector<uint32_t>& raw);

}  // namespace gemini
