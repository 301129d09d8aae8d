#include "harness/demo.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "harness/cluster_demo.h"

namespace gemini::harness {
namespace {

TEST(Demo, KillAtDefaultsTo60PercentOfTheRun) {
  DemoArgs a;
  a.hosts = 1;
  a.iterations = 50;
  EXPECT_EQ(*KillAt(a), 30);
  a.kill_at = 7;
  EXPECT_EQ(*KillAt(a), 7);
}

TEST(Demo, KillAtMustLeaveIterationsBeforeAndAfter) {
  DemoArgs a;
  a.hosts = 1;
  a.iterations = 10;
  for (int bad : {0, 10, 11}) {
    a.kill_at = bad;
    EXPECT_EQ(KillAt(a).status().code(), Code::kInvalidArgument) << bad;
  }
  a.kill_at = -1;
  a.iterations = 1;  // 60% of one iteration is none.
  EXPECT_FALSE(KillAt(a).ok());
  a.iterations = 10;
  a.hosts = 0;
  EXPECT_FALSE(KillAt(a).ok());
}

TEST(ClusterDemo, OnlyTheFailureRunInjectsAndKeepsAStandby) {
  ClusterDemoArgs a;
  a.hosts = 6;
  a.iterations = 40;
  a.redundancy = "rs:4+2";
  a.python = "/venv/bin/python3";
  const auto has = [](const std::vector<std::string>& v, const std::string& s) {
    return std::find(v.begin(), v.end(), s) != v.end();
  };
  const auto ref = ClusterDemoLaunchArgs(a, "", "/tmp/ref.json");
  ASSERT_GE(ref.size(), 2u);
  EXPECT_EQ(ref[1], "launch");
  EXPECT_FALSE(has(ref, "--inject"));
  EXPECT_FALSE(has(ref, "--standby-hosts"));
  const auto run = ClusterDemoLaunchArgs(a, "kill-host:1@20", "/tmp/run.json");
  EXPECT_TRUE(has(run, "kill-host:1@20"));
  EXPECT_TRUE(has(run, "--standby-hosts"));
  EXPECT_TRUE(has(run, "--show-placement"));
  // Gemini's flags, then -- and the trainer: the same in both runs.
  const std::vector<std::string> trainer{
      "--", "/venv/bin/python3", "-m", "gemini.demo_train", "--iterations", "40"};
  for (const auto* argv : {&ref, &run}) {
    ASSERT_GE(argv->size(), trainer.size());
    EXPECT_TRUE(std::equal(trainer.begin(), trainer.end(), argv->end() - trainer.size()));
    EXPECT_TRUE(has(*argv, "rs:4+2"));
    EXPECT_TRUE(has(*argv, "6"));
  }
}

}  // namespace
}  // namespace gemini::harness
