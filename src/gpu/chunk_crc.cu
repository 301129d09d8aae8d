#include <string>

#include "gpu/chunk_crc.h"
#include "store/chunks.h"

namespace gemini {

Status VerifyChunksParallel(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                            const std::vector<uint32_t>& crcs, int threads) {
  std::vector<uint32_t> got = ChunkCrcs(region, data_bytes, chunk_size, threads);
  if (got.size() != crcs.size())
    return DataLoss("shard has " + std::to_string(crcs.size()) + " CRCs for " +
                    std::to_string(got.size()) + " chunks");
  for (size_t c = 0; c < got.size(); ++c)
    if (got[c] != crcs[c])
      return DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " (bytes " +
                      std::to_string(c * chunk_size) + "..): the checkpoint is corrupted");
  return Status::Ok();
}

}  // namespace gemini
