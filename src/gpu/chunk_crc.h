// The check a GPU restore makes before copying back: every chunk of a region
// against its CRC32C, split over threads (store/chunks.h's ChunkCrcs).
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gemini {

// DataLoss naming the first chunk whose CRC differs from crcs.
Status VerifyChunksParallel(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                            const std::vector<uint32_t>& crcs, int threads);

}  // namespace gemini
