#include "store/manifest.h"

#include <gtest/gtest.h>

#include "common/crc32c.h"

namespace gemini {
namespace {

Manifest Sample() {
  Manifest m;
  m.job = "job";
  m.iteration = 7;
  m.rank = 1;
  m.world_size = 2;
  m.entries.push_back({"w", Dtype::kFloat32, {4, 8}, 0, 128, 0});
  m.entries.push_back({"b", Dtype::kBFloat16, {10}, 0, 6, 14});  // A piece.
  m.AssignOffsets();
  return m;
}

// Re-seals bytes with a valid CRC trailer after tampering with them.
std::string Reseal(std::string bytes) {
  bytes.resize(bytes.size() - 4);
  uint32_t crc = Crc32c(bytes.data(), bytes.size());
  bytes.append(reinterpret_cast<const char*>(&crc), 4);
  return bytes;
}

TEST(Manifest, RoundTrip) {
  Manifest m = Sample();
  ASSERT_TRUE(m.Validate().ok());
  EXPECT_EQ(m.entries[1].offset, 128u);
  EXPECT_EQ(m.data_bytes, 134u);
  auto d = Manifest::Decode(m.Encode());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->job, "job");
  EXPECT_EQ(d->iteration, 7);
  ASSERT_EQ(d->entries.size(), 2u);
  EXPECT_EQ(d->entries[1].name, "b");
  EXPECT_EQ(d->entries[1].dtype, Dtype::kBFloat16);
  EXPECT_EQ(d->entries[1].tensor_offset, 14u);
  EXPECT_EQ(d->entries[0].shape, (std::vector<int64_t>{4, 8}));
}

TEST(Manifest, EveryTruncationIsRejected) {
  std::string bytes = Sample().Encode();
  for (size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_FALSE(Manifest::Decode(bytes.substr(0, n)).ok()) << "prefix " << n;
    // The same prefix with a valid CRC trailer (n + 4 == size is the whole message).
    if (n + 4 < bytes.size()) {
      EXPECT_FALSE(Manifest::Decode(Reseal(bytes.substr(0, n) + "xxxx")).ok()) << "resealed " << n;
    }
  }
}

// Fragment 5 of rs:4+2 of Sample()'s 134-byte shard: 34 bytes.
Manifest SampleFragment() {
  Manifest m = Sample();
  m.fragment = {5, 4, 2, m.data_bytes, {0x12345678}};
  m.data_bytes = 34;
  return m;
}

TEST(Manifest, FragmentRoundTripsAndWholeShardsKeepVersion1) {
  EXPECT_EQ(Sample().Encode()[4], 1) << "a whole shard's manifest stays version 1";
  Manifest f = SampleFragment();
  ASSERT_TRUE(f.Validate().ok()) << f.Validate().ToString();
  auto d = Manifest::Decode(f.Encode());
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_TRUE(d->is_fragment());
  EXPECT_EQ(d->fragment.index, 5);
  EXPECT_EQ(d->fragment.data, 4);
  EXPECT_EQ(d->fragment.parity, 2);
  EXPECT_EQ(d->shard_bytes(), 134u);
  EXPECT_EQ(d->data_bytes, 34u);
  EXPECT_EQ(d->fragment.shard_crcs, std::vector<uint32_t>{0x12345678});
  std::string bytes = f.Encode();
  for (size_t n = 0; n < bytes.size(); ++n)
    EXPECT_FALSE(Manifest::Decode(bytes.substr(0, n)).ok()) << "prefix " << n;
}

TEST(Manifest, ImpossibleFragmentsAreRejected) {
  auto bad = [](auto edit) {
    Manifest m = SampleFragment();
    edit(m);
    return m.Validate();
  };
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.index = 6; }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.data = 0; }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.parity = 0; }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.data = 250; }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.data_bytes = 33; }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.shard_crcs.clear(); }).ok());
  EXPECT_FALSE(bad([](Manifest& m) { m.fragment.shard_bytes = 100; }).ok())
      << "the entries must fit the whole shard";
  EXPECT_FALSE(bad([](Manifest& m) {
                 m.fragment.index = -1;
                 m.data_bytes = 134;
               }).ok())
      << "fragment fields on a whole shard";
}

TEST(Manifest, WrongCrcIsDataLoss) {
  std::string bytes = Sample().Encode();
  bytes[10] ^= 1;
  auto d = Manifest::Decode(bytes);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), Code::kDataLoss);
}

TEST(Manifest, UnknownDtypeRejected) {
  Manifest m = Sample();
  std::string bytes = m.Encode();
  // The dtype byte of the first entry follows: header and the name "w".
  size_t pos = bytes.find(std::string("\x01\0\0\0w", 5)) + 5;
  bytes[pos] = 42;
  auto d = Manifest::Decode(Reseal(bytes));
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("unknown dtype"), std::string::npos);
}

TEST(Manifest, OversizedCountsRejected) {
  Manifest m = Sample();
  std::string bytes = m.Encode();
  // Entry count sits right before the first entry's name length.
  size_t pos = bytes.find(std::string("\x01\0\0\0w", 5)) - 4;
  uint32_t huge = 0xFFFFFFF0u;
  bytes.replace(pos, 4, reinterpret_cast<const char*>(&huge), 4);
  EXPECT_FALSE(Manifest::Decode(Reseal(bytes)).ok());
}

TEST(Manifest, OffsetsOutOfRangeRejected) {
  Manifest m = Sample();
  m.entries[1].offset = m.data_bytes;  // Runs past the data region.
  EXPECT_FALSE(m.Validate().ok());
  EXPECT_FALSE(Manifest::Decode(m.Encode()).ok());
  m = Sample();
  m.entries[1].offset = 64;  // Overlaps the first tensor.
  EXPECT_NE(m.Validate().message().find("overlap"), std::string::npos);
  m = Sample();
  m.entries[1].tensor_offset = 16;  // Piece runs past its 20-byte tensor.
  EXPECT_FALSE(m.Validate().ok());
  m = Sample();
  m.entries[0].shape = {-1, 8};
  EXPECT_FALSE(m.Validate().ok());
  m = Sample();
  m.entries[0].shape = {1ll << 40, 1ll << 40};  // Size overflows.
  EXPECT_FALSE(m.Validate().ok());
  m = Sample();
  m.rank = 2;  // Not in a world of 2.
  EXPECT_FALSE(m.Validate().ok());
}

TEST(Manifest, DtypeNames) {
  for (int i = 0; i < static_cast<int>(Dtype::kCount); ++i) {
    auto d = static_cast<Dtype>(i);
    auto back = DtypeFromName(DtypeName(d));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, d);
  }
  EXPECT_FALSE(DtypeFromName("float128").ok());
}

}  // namespace
}  // namespace gemini
