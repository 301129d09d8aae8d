// Tests of the order statistics behind the profiler and the link fit.
#include "schedule/stats.h"

#include <gtest/gtest.h>

namespace gemini::schedule {
namespace {

TEST(ScheduleStatsTest, Quantiles) {
  EXPECT_EQ(Median({}), 0);
  EXPECT_EQ(Median({3, 1, 2}), 2);
  EXPECT_EQ(Median({4, 1, 3, 2}), 2.5);
  EXPECT_EQ(Quantile({0, 10}, 0.1), 1);
  EXPECT_EQ(Quantile({5, 1, 9}, 0), 1);
  EXPECT_EQ(Quantile({5, 1, 9}, 1), 9);
  EXPECT_EQ(Quantile({5, 1, 9}, 7), 9);  // clamped
}

TEST(ScheduleStatsTest, SpreadMeasures) {
  EXPECT_DOUBLE_EQ(Mean({1, 2, 3, 6}), 3);
  EXPECT_DOUBLE_EQ(StdDev({2, 4, 4, 4, 5, 5, 7, 9}), 2);
  EXPECT_DOUBLE_EQ(MedianAbsDeviation({1, 1, 2, 2, 4, 6, 9}), 1);
}

}  // namespace
}  // namespace gemini::schedule
