// Tests of the checkpoint-frequency choice: k = 1 when the checkpoint fits,
// the smallest fitting k otherwise, monotonic in the traffic.
#include "schedule/frequency.h"

#include <gtest/gtest.h>

namespace gemini::schedule {
namespace {

// alpha = 0 and B = 64 B/s: a span of t seconds carries exactly 64 t bytes.
PartitionParams Params(uint64_t checkpoint_bytes) {
  PartitionParams p;
  p.checkpoint_bytes = checkpoint_bytes;
  p.copies = 1;
  p.buffer_bytes = 256;
  p.sub_buffers = 4;
  p.bandwidth_Bps = 64;
  p.alpha_s = 0;
  p.mu = 1;
  return p;
}

TEST(ScheduleFrequencyTest, EveryIterationWhenItFits) {
  auto f = ChooseFrequency({0.5, 0.5}, Params(64));  // 1 s of 1 s idle
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->every_k, 1);
  EXPECT_TRUE(f->fits);
  EXPECT_DOUBLE_EQ(f->idle_s_per_iter, 1.0);
  EXPECT_DOUBLE_EQ(f->send_s, 1.0);
  EXPECT_EQ(f->extra_s, 0);
  EXPECT_NE(f->explanation.find(">= checkpoint send time 1 s: checkpointing every iteration"),
            std::string::npos)
      << f->explanation;
}

TEST(ScheduleFrequencyTest, EveryKthIterationWhenIdleTimeIsShort) {
  PartitionParams p = Params(160);  // 2.5 s to send, 1 s idle per iteration
  auto f = ChooseFrequency({0.5, 0.5}, p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->every_k, 3);
  EXPECT_TRUE(f->fits);
  EXPECT_DOUBLE_EQ(f->send_s, 2.5);
  EXPECT_EQ(f->explanation,
            "idle time 1 s/iteration (usable 1 s at mu=1) < checkpoint send time 2.5 s: "
            "checkpointing every 3rd iteration");
  // Minimal: two iterations leave leftover, three do not.
  auto two = Partition({0.5, 0.5, 0.5, 0.5}, p);
  ASSERT_TRUE(two.ok());
  EXPECT_GT(two->leftover_bytes, 0u);
}

TEST(ScheduleFrequencyTest, ChunksStayBoundedAcrossIterations) {
  PartitionParams p = Params(160);
  p.alpha_s = 0.25;  // f(64) = 1.25 s: a 1 s span holds one 48-byte chunk
  auto f = ChooseFrequency({1.0}, p);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->every_k, 4);  // 48 bytes per iteration: ceil(160 / 48)
  EXPECT_TRUE(f->fits);
}

TEST(ScheduleFrequencyTest, MonotonicInTraffic) {
  for (int copies : {1, 2}) {
    int last_k = 1;
    for (uint64_t bytes = 0; bytes <= 2000; bytes += 7) {
      PartitionParams p = Params(bytes);
      p.copies = copies;
      p.alpha_s = 0.01;
      p.mu = 0.9;
      auto f = ChooseFrequency({0.3, 0.05, 0.8, 0.2}, p);
      ASSERT_TRUE(f.ok());
      ASSERT_TRUE(f->fits);
      EXPECT_GE(f->every_k, last_k) << bytes << " bytes, " << copies << " copies";
      last_k = f->every_k;
    }
    EXPECT_GT(last_k, 10);
  }
}

TEST(ScheduleFrequencyTest, NoIdleTimeDoesNotFit) {
  auto f = ChooseFrequency({0, 0}, Params(100), 8);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->fits);
  EXPECT_EQ(f->every_k, 8);
  EXPECT_DOUBLE_EQ(f->extra_s, f->send_s);
  EXPECT_NE(f->explanation.find("does not fit even 8 iterations: checkpointing every 8th"),
            std::string::npos)
      << f->explanation;
}

TEST(ScheduleFrequencyTest, EnoughIdleTimeButSpansTooShort) {
  PartitionParams p = Params(32);  // 0.5 s of data
  p.alpha_s = 0.1875;              // each 0.1875 s span holds nothing but a start-up
  auto f = ChooseFrequency({0.1875, 0.1875, 0.1875, 0.1875, 0.1875}, p, 4);
  ASSERT_TRUE(f.ok());
  EXPECT_FALSE(f->fits);
  EXPECT_DOUBLE_EQ(f->send_s, 0.6875);
  EXPECT_GE(f->usable_s_per_iter, f->send_s);
  EXPECT_NE(f->explanation.find(">= checkpoint send time 0.688 s, but its spans are too short"),
            std::string::npos)
      << f->explanation;
}

TEST(ScheduleFrequencyTest, BadInputs) {
  EXPECT_EQ(ChooseFrequency({1.0}, Params(1), 0).status().code(), Code::kInvalidArgument);
  PartitionParams p = Params(1);
  p.bandwidth_Bps = 0;
  EXPECT_EQ(ChooseFrequency({1.0}, p).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ChooseFrequency({}, Params(1)).status().code(), Code::kInvalidArgument);
}

TEST(ScheduleFrequencyTest, Ordinals) {
  EXPECT_EQ(Ordinal(1), "1st");
  EXPECT_EQ(Ordinal(2), "2nd");
  EXPECT_EQ(Ordinal(3), "3rd");
  EXPECT_EQ(Ordinal(4), "4th");
  EXPECT_EQ(Ordinal(11), "11th");
  EXPECT_EQ(Ordinal(12), "12th");
  EXPECT_EQ(Ordinal(13), "13th");
  EXPECT_EQ(Ordinal(21), "21st");
  EXPECT_EQ(Ordinal(102), "102nd");
  EXPECT_EQ(Ordinal(111), "111th");
}

}  // namespace
}  // namespace gemini::schedule
