#include "agent/settings.h"

#include <gtest/gtest.h>

namespace gemini {
namespace {

TEST(AgentSettings, RedundancyFromEitherFlag) {
  EXPECT_EQ(ToRedundancy({})->ToString(), "copies:2");
  EXPECT_EQ(ToRedundancy({}, Redundancy::Copies(1))->ToString(), "copies:1");
  EXPECT_EQ(ToRedundancy({.replicas = 3})->ToString(), "copies:3");
  EXPECT_EQ(ToRedundancy({.redundancy = "rs:4+2"})->ToString(), "rs:4+2");
  EXPECT_FALSE(ToRedundancy({.replicas = -1}).ok());
  EXPECT_FALSE(ToRedundancy({.redundancy = "copies"}).ok());
}

TEST(AgentSettings, InterleaveOptionsAreParsedAndChecked) {
  InterleaveFlags f;
  auto o = ToInterleaveOptions(f);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->buffer_bytes, 128ull << 20);
  EXPECT_EQ(o->sub_buffers, 4u);
  f.mode = "sometimes";
  EXPECT_EQ(ToInterleaveOptions(f).status().code(), Code::kInvalidArgument);
  f.mode = "naive";
  f.buffer = "lots";
  EXPECT_EQ(ToInterleaveOptions(f).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini
