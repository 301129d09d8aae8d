#include "store/chunks.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "common/crc32c.h"

namespace gemini {
namespace {

// Copies and checksums chunks [first, last) of the region. `piece` is the
// index of the first piece that may overlap chunk `first`.
void CaptureRange(uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                  const std::vector<Piece>& pieces, uint64_t first, uint64_t last, uint32_t* crcs) {
  auto it =
      std::upper_bound(pieces.begin(), pieces.end(), first * chunk_size,
                       [](uint64_t off, const Piece& p) { return off < p.offset + p.length; });
  for (uint64_t c = first; c < last; ++c) {
    uint64_t pos = c * chunk_size;
    uint64_t end = std::min(data_bytes, pos + chunk_size);
    uint32_t crc = 0;
    while (pos < end) {
      if (it == pieces.end() || it->offset >= end) {  // Padding up to the chunk's end.
        std::memset(region + pos, 0, end - pos);
        crc = Crc32c(region + pos, end - pos, crc);
        pos = end;
      } else if (it->offset > pos) {  // Padding up to the next piece.
        std::memset(region + pos, 0, it->offset - pos);
        crc = Crc32c(region + pos, it->offset - pos, crc);
        pos = it->offset;
      } else {
        uint64_t n = std::min(end, it->offset + it->length) - pos;
        const auto* src = static_cast<const uint8_t*>(it->src) + (pos - it->offset);
        crc = CopyWithCrc32c(region + pos, src, n, crc);
        pos += n;
        if (pos == it->offset + it->length) ++it;
      }
    }
    crcs[c] = crc;
  }
}

constexpr int kMaxThreads = 64;

template <typename Fn>
void SplitChunks(uint64_t chunks, int threads, Fn fn) {
  threads = std::max(
      1, std::min<int>(threads, static_cast<int>(std::min<uint64_t>(chunks, kMaxThreads))));
  if (threads == 1) return fn(0, chunks, 0);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back(fn, chunks * t / threads, chunks * (t + 1) / threads, t);
  for (auto& th : pool) th.join();
}

}  // namespace

std::vector<uint32_t> CaptureInto(uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                  const std::vector<Piece>& pieces, int threads) {
  uint64_t chunks = (data_bytes + chunk_size - 1) / chunk_size;
  std::vector<uint32_t> crcs(chunks);
  SplitChunks(chunks, threads, [&](uint64_t first, uint64_t last, int) {
    CaptureRange(region, data_bytes, chunk_size, pieces, first, last, crcs.data());
  });
  return crcs;
}

std::vector<uint32_t> ChunkCrcs(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                                int threads) {
  uint64_t chunks = (data_bytes + chunk_size - 1) / chunk_size;
  std::vector<uint32_t> crcs(chunks);
  SplitChunks(chunks, threads, [&](uint64_t first, uint64_t last, int) {
    for (uint64_t c = first; c < last; ++c)
      crcs[c] = Crc32c(region + c * chunk_size, std::min(chunk_size, data_bytes - c * chunk_size));
  });
  return crcs;
}

Status CopyOutVerified(uint8_t* dst, const uint8_t* region, uint64_t data_bytes,
                       uint64_t chunk_size, const std::vector<uint32_t>& crcs, int threads) {
  return CopyRangeVerified(dst, region, data_bytes, chunk_size, crcs, 0, data_bytes, threads);
}

Status CopyRangeVerified(uint8_t* dst, const uint8_t* region, uint64_t data_bytes,
                         uint64_t chunk_size, const std::vector<uint32_t>& crcs, uint64_t offset,
                         uint64_t length, int threads) {
  uint64_t chunks = (data_bytes + chunk_size - 1) / chunk_size;
  if (crcs.size() != chunks)
    return DataLoss("shard has " + std::to_string(crcs.size()) + " CRCs for " +
                    std::to_string(chunks) + " chunks");
  if (offset > data_bytes || length > data_bytes - offset)
    return InvalidArgument("bytes [" + std::to_string(offset) + ", +" + std::to_string(length) +
                           ") lie outside the shard's " + std::to_string(data_bytes) + " bytes");
  if (length == 0) return Status::Ok();
  const uint64_t first = offset / chunk_size, end = offset + length;
  threads = std::clamp(threads, 1, kMaxThreads);
  std::vector<int64_t> bad(threads, -1);
  SplitChunks((end - 1) / chunk_size + 1 - first, threads, [&](uint64_t a, uint64_t b, int t) {
    for (uint64_t c = first + a; c < first + b; ++c) {
      uint64_t pos = c * chunk_size, stop = std::min(data_bytes, pos + chunk_size);
      uint64_t from = std::max(pos, offset), to = std::min(stop, end);
      uint32_t crc = Crc32c(region + pos, from - pos);  // The chunk's bytes before the range,
      // The checksum covers the copy, not the slot: a slot rewritten while it
      // is read can never pass with bytes other than those checked.
      crc = CopyOutWithCrc32c(dst + (from - offset), region + from, to - from, crc);
      crc = Crc32c(region + to, stop - to, crc);  // and after it.
      if (crc != crcs[c] && bad[t] < 0) bad[t] = static_cast<int64_t>(c);
    }
  });
  for (int64_t c : bad)
    if (c >= 0)
      return DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " (bytes " +
                      std::to_string(c * chunk_size) + "..): the checkpoint is corrupted");
  return Status::Ok();
}

Status VerifyChunks(const uint8_t* region, uint64_t data_bytes, uint64_t chunk_size,
                    const std::vector<uint32_t>& crcs) {
  uint64_t chunks = (data_bytes + chunk_size - 1) / chunk_size;
  if (crcs.size() != chunks)
    return DataLoss("shard has " + std::to_string(crcs.size()) + " CRCs for " +
                    std::to_string(chunks) + " chunks");
  for (uint64_t c = 0; c < chunks; ++c) {
    uint64_t pos = c * chunk_size, n = std::min(chunk_size, data_bytes - pos);
    if (Crc32c(region + pos, n) != crcs[c])
      return DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " of a received shard");
  }
  return Status::Ok();
}

}  // namespace gemini
