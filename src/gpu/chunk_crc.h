// CRC32C of every chunk of a region, split over threads: the checksums a
// GPU capture commits (computed on the host copy, after the device-to-host
// copy finished) and the check a GPU restore makes before copying back.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gemini {

std::vector<uint32_t> ChunkCrcs(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                int threads);

// DataLoss naming the first chunk whose CRC differs from crcs.
Status VerifyChunksParallel(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                            const std::vector<uint32_t>& crcs, int threads);

}  // namespace gemini
