#include "common/paths.h"

#include <gtest/gtest.h>

namespace gemini {
namespace {

TEST(Paths, FindOnPathTakesTheFirstDirectoryThatHasIt) {
  auto sh = FindOnPath("sh", "/nonexistent:/bin:/usr/bin");
  ASSERT_TRUE(sh.ok()) << sh.status().ToString();
  EXPECT_EQ(*sh, "/bin/sh");
  auto none = FindOnPath("no-such-command-here", "/bin:/usr/bin");
  EXPECT_EQ(none.status().code(), Code::kNotFound);
  EXPECT_NE(none.status().message().find("no-such-command-here"), std::string::npos);
}

}  // namespace
}  // namespace gemini
