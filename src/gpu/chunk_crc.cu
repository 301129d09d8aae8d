#include <algorithm>
#include <string>
#include <thread>

#include "common/crc32c.h"
#include "gpu/chunk_crc.h"

namespace gemini {

std::vector<uint32_t> ChunkCrcs(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                int threads) {
  uint64_t chunks = (data_bytes + chunk_size - 1) / chunk_size;
  std::vector<uint32_t> crcs(chunks);
  auto run = [&](uint64_t first, uint64_t last) {
    for (uint64_t c = first; c < last; ++c) {
      uint64_t pos = c * chunk_size;
      crcs[c] = Crc32c(region + pos, std::min(chunk_size, data_bytes - pos));
    }
  };
  int n = static_cast<int>(std::clamp<uint64_t>(threads, 1, std::max<uint64_t>(chunks, 1)));
  if (n == 1) {
    run(0, chunks);
    return crcs;
  }
  std::vector<std::thread> pool;
  for (int t = 0; t < n; ++t) pool.emplace_back(run, chunks * t / n, chunks * (t + 1) / n);
  for (auto& th : pool) th.join();
  return crcs;
}

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
