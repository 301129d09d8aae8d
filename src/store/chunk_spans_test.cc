#include "store/chunk_spans.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/crc32c_pieces.h"
#include "store/chunks.h"

namespace gemini {
namespace {

namespace cp = crc32c_pieces;

// A manifest of entries of the given lengths (offsets as the agent assigns
// them), its region filled from random sources, and the sources.
struct Fixture {
  Manifest m;
  std::vector<std::vector<uint8_t>> src;
  std::vector<uint8_t> region;
};

Fixture Make(const std::vector<uint64_t>& lengths, uint64_t chunk, uint32_t seed) {
  Fixture f;
  f.m.chunk_size = chunk;
  std::mt19937 rng(seed);
  for (size_t i = 0; i < lengths.size(); ++i) {
    TensorEntry e;
    e.name = "t" + std::to_string(i);
    e.shape = {static_cast<int64_t>(lengths[i])};
    e.length = lengths[i];
    f.m.entries.push_back(e);
    std::vector<uint8_t> s(lengths[i]);
    for (auto& b : s) b = static_cast<uint8_t>(rng());
    f.src.push_back(std::move(s));
  }
  f.m.AssignOffsets();
  f.region.assign(f.m.data_bytes, 0);
  for (size_t i = 0; i < lengths.size(); ++i)
    if (lengths[i] > 0)
      std::memcpy(f.region.data() + f.m.entries[i].offset, f.src[i].data(), lengths[i]);
  return f;
}

TEST(ChunkSpans, FoldedSourceChecksumsEqualTheRegionsChunkCrcs) {
  std::mt19937 rng(7);
  for (int round = 0; round < 40; ++round) {
    std::vector<uint64_t> lengths(1 + rng() % 12);
    for (auto& n : lengths) n = rng() % 5 == 0 ? 0 : rng() % 20000;
    uint64_t chunk = 4096 << (rng() % 3);
    Fixture f = Make(lengths, chunk, round);
    Result<std::vector<ChunkSpan>> spans = CutChunkSpans(f.m);
    ASSERT_TRUE(spans.ok()) << spans.status().ToString();
    // Spans cover the region in order, inside one chunk each, and name the
    // source bytes that land there.
    std::vector<uint32_t> raw;
    uint64_t pos = 0;
    for (const ChunkSpan& s : *spans) {
      ASSERT_EQ(s.offset, pos);
      ASSERT_GT(s.length, 0u);
      ASSERT_EQ(s.offset / chunk, (s.offset + s.length - 1) / chunk);
      const uint8_t* bytes;
      std::vector<uint8_t> zeros;
      if (s.entry < 0) {
        zeros.assign(s.length, 0);
        bytes = zeros.data();
      } else {
        ASSERT_LE(s.entry_offset + s.length, f.src[s.entry].size());
        bytes = f.src[s.entry].data() + s.entry_offset;
      }
      ASSERT_EQ(0, std::memcmp(bytes, f.region.data() + s.offset, s.length));
      raw.push_back(RawCrc(bytes, s.length));
      pos += s.length;
    }
    ASSERT_EQ(pos, f.m.data_bytes);
    EXPECT_EQ(FoldChunkCrcs(f.m, *spans, raw), ChunkCrcs(f.region.data(), f.m.data_bytes, chunk))
        << "round " << round;
  }
}

TEST(ChunkSpans, RawCrcIsTheRegisterFromStateZero) {
  cp::Tables t;
  t.Fill();
  std::vector<uint8_t> b(1000);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(i * 37 + 1);
  for (uint64_t n : {0ull, 1ull, 3ull, 64ull, 999ull, 1000ull})
    EXPECT_EQ(RawCrc(b.data(), n), cp::Feed(t.slice, 0, b.data(), n)) << n;
}

TEST(ChunkSpans, OverlappingEntriesAreRefused) {
  Fixture f = Make({5000, 5000}, 4096, 1);
  f.m.entries[1].offset = 4000;
  EXPECT_EQ(CutChunkSpans(f.m).status().code(), Code::kInvalidArgument);
  f.m.entries[1].offset = f.m.data_bytes - 10;
  EXPECT_EQ(CutChunkSpans(f.m).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini
