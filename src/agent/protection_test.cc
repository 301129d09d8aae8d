// Finding 11: lost protection was quiet.
#include "agent/protection.h"

#include <gtest/gtest.h>

namespace gemini {
namespace {

using namespace std::chrono_literals;

TEST(Protection, NamesTheFirstIterationNotCompleteInTimeAndWhy) {
  Protection p(10s);
  auto t0 = Protection::Clock::now();
  p.OnCommit(1, t0);
  p.OnComplete(1);
  p.OnCommit(2, t0);
  EXPECT_TRUE(p.Check("", t0 + 5s).is_protected);  // Within the grace.
  p.OnCommit(3, t0 + 6s);
  auto r = p.Check("replication to the holders is failing: out of budget", t0 + 11s);
  EXPECT_FALSE(r.is_protected);
  EXPECT_EQ(r.unprotected_since, 2);
  EXPECT_EQ(r.complete, 1);
  EXPECT_NE(r.reason.find("out of budget"), std::string::npos);
  p.OnComplete(2);  // Iteration 3 is still within its grace.
  EXPECT_TRUE(p.Check("", t0 + 12s).is_protected);
  r = p.Check("", t0 + 17s);
  EXPECT_EQ(r.unprotected_since, 3);
  EXPECT_NE(r.reason.find("not confirmed"), std::string::npos);
  p.OnComplete(3);
  EXPECT_TRUE(p.Check("", t0 + 30s).is_protected);
}

TEST(Protection, ARecoveryStartsANewTimeline) {
  Protection p(1s);
  auto t0 = Protection::Clock::now();
  p.OnComplete(10);
  p.OnCommit(11, t0);
  p.OnComplete(5);  // Resumed at 5: iteration 11 belongs to the abandoned timeline.
  EXPECT_TRUE(p.Check("", t0 + 5s).is_protected);
}

}  // namespace
}  // namespace gemini
