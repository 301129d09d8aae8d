// Chunked copies with CRC32C: the data path of capture and load.
//
// A shard's data region is checksummed in fixed-size chunks (the manifest's
// chunk_size). CaptureInto() copies tensor pieces into their places in a slot
// and returns one CRC per chunk, computed while each piece is still in cache;
// the bytes between pieces (alignment padding) are zeroed so the CRCs cover
// the whole region. CopyOutVerified() copies a region out of a slot and checks
// every chunk's CRC; on a mismatch it returns DataLoss naming the chunk, and
// the destination must be discarded. CopyRangeVerified() does the same for a
// part of the region. All may split the work over `threads` threads (chunks
// are independent; at most 64). Thread-safe on disjoint buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gemini {

struct Piece {
  const void* src;  // Where the bytes are now.
  uint64_t offset;  // Where they go in the data region.
  uint64_t length;
};

// Pieces must be sorted by offset, non-overlapping, and inside data_bytes.
std::vector<uint32_t> CaptureInto(uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                  const std::vector<Piece>& pieces, int threads = 1);

Status CopyOutVerified(uint8_t* dst, const uint8_t* region, uint64_t data_bytes,
                       uint64_t chunk_size, const std::vector<uint32_t>& crcs, int threads = 1);

// Copies bytes [offset, offset + length) of a region (e.g. one tensor) out of a
// slot into dst, checking the CRC of every chunk they touch: the chunk's bytes
// outside the range are checksummed in place, those inside as they are copied.
// DataLoss naming the first bad chunk (dst must then be discarded);
// InvalidArgument for a range outside the region.
Status CopyRangeVerified(uint8_t* dst, const uint8_t* region, uint64_t data_bytes,
                         uint64_t chunk_size, const std::vector<uint32_t>& crcs, uint64_t offset,
                         uint64_t length, int threads = 1);

// One CRC32C per chunk of a region, computed in place.
std::vector<uint32_t> ChunkCrcs(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                int threads = 1);

// Checks every chunk of a region in place (e.g. a replica received from the
// network) against its CRC; DataLoss naming the first bad chunk.
Status VerifyChunks(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                    const std::vector<uint32_t>& crcs);

}  // namespace gemini
