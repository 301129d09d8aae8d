#include "store/chunk_spans.h"

#include <algorithm>
#include <numeric>

#include "common/crc32c.h"
#include "common/crc32c_pieces.h"

namespace gemini {
namespace {

namespace cp = crc32c_pieces;

const cp::Tables& HostTables() {
  static const cp::Tables* tables = [] {
    auto* t = new cp::Tables;
    t->Fill();
    return t;
  }();
  return *tables;
}

}  // namespace

Result<std::vector<ChunkSpan>> CutChunkSpans(const Manifest& m) {
  if (m.chunk_size == 0) return InvalidArgument("chunk size 0");
  std::vector<size_t> order(m.entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return m.entries[a].offset < m.entries[b].offset; });
  std::vector<ChunkSpan> spans;
  // Appends [pos, end) of entry `e` (or padding), cut at chunk boundaries.
  auto add = [&](uint64_t pos, uint64_t end, int64_t e, uint64_t entry_start) {
    while (pos < end) {
      uint64_t n = std::min(end, (pos / m.chunk_size + 1) * m.chunk_size) - pos;
      spans.push_back({pos, n, e, pos - entry_start});
      pos += n;
    }
  };
  uint64_t pos = 0;
  for (size_t i : order) {
    const TensorEntry& e = m.entries[i];
    if (e.length == 0) continue;
    if (e.offset < pos || e.offset > m.data_bytes || e.length > m.data_bytes - e.offset)
      return InvalidArgument("manifest entry '" + e.name +
                             "' overlaps another or leaves the region");
    add(pos, e.offset, -1, pos);
    add(e.offset, e.offset + e.length, static_cast<int64_t>(i), e.offset);
    pos = e.offset + e.length;
  }
  add(pos, m.data_bytes, -1, pos);
  return spans;
}

uint32_t RawCrc(const void* p, uint64_t n) {
  // Crc32c(A) = ~g(~0, A) and g(~0, A) = g(0, A) ^ Z_|A|(~0).
  return ~Crc32c(p, n) ^ cp::Shift(HostTables().shift, 0xffffffffu, n);
}

std::vector<uint32_t> FoldChunkCrcs(const Manifest& m, const std::vector<ChunkSpan>& spans,
                                    const std::vector<uint32_t>& raw) {
  std::vector<uint32_t> crcs(m.NumChunks());
  const auto& shift = HostTables().shift;
  cp::Folder f;
  uint64_t chunk = 0;
  for (size_t i = 0; i < spans.size(); ++i) {
    uint64_t c = spans[i].offset / m.chunk_size;
    if (c != chunk) {
      crcs[chunk] = f.Crc();
      f = cp::Folder{};
      chunk = c;
    }
    f.Add(shift, raw[i], spans[i].length);
  }
  if (!crcs.empty()) crcs[chunk] = f.Crc();
  return crcs;
}

}  // namespace gemini
