#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace gemini {

TEST(Crc32c, KnownVector) {
  std::string s = "123456789";
  EXPECT_EQ(Crc32c(s.data(), s.size()), 0xE3069283u);
  EXPECT_EQ(Crc32c(nullptr, 0), 0u);
}

TEST(Crc32c, IncrementalEqualsWhole) {
  std::vector<unsigned char> buf(1 << 20);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<unsigned char>(i * 131 + 7);
  uint32_t whole = Crc32c(buf.data(), buf.size());
  uint32_t part = Crc32c(buf.data(), 1000);
  part = Crc32c(buf.data() + 1000, buf.size() - 1000, part);
  EXPECT_EQ(whole, part);
}

TEST(Crc32c, CopyWithCrcCopiesAndChecksums) {
  std::vector<unsigned char> src(300000), dst(300000);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i ^ (i >> 8));
  uint32_t c = CopyWithCrc32c(dst.data(), src.data(), 12345);
  c = CopyWithCrc32c(dst.data() + 12345, src.data() + 12345, src.size() - 12345, c);
  EXPECT_EQ(src, dst);
  EXPECT_EQ(c, Crc32c(src.data(), src.size()));
}

TEST(Crc32c, CopyOutWithCrcChecksumsWhatItWrote) {
  std::vector<unsigned char> src(300000), dst(300000);
  for (size_t i = 0; i < src.size(); ++i) src[i] = static_cast<unsigned char>(i ^ (i >> 8));
  uint32_t c = CopyOutWithCrc32c(dst.data(), src.data(), 131073);  // Across a 128 KiB piece.
  c = CopyOutWithCrc32c(dst.data() + 131073, src.data() + 131073, src.size() - 131073, c);
  EXPECT_EQ(src, dst);
  EXPECT_EQ(c, Crc32c(dst.data(), dst.size()));
}

}  // namespace gemini
