#include "sim/scenario.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

namespace gemini::sim {
namespace {

ScenarioOptions Small() {
  ScenarioOptions o;
  o.mc.trials = 4;
  o.mc.days = 2;
  return o;
}

TEST(Scenario, MonteCarloRateFromThePerInstanceRate) {
  ScenarioOptions o = Small();
  o.mc.machines_per_failure = 2;
  o.instance_failure_rate = 0.5;  // 16 instances: 8 events a day.
  o.mc.failures_per_day = 1;
  auto s = RunScenario(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_DOUBLE_EQ(s->failures_per_day, 8);
  EXPECT_EQ(s->event_sizes, (std::map<int, int>{{2, 1}}));
  EXPECT_EQ(s->summaries.size(), 3u);
  o.instance_failure_rate = -1;
  EXPECT_DOUBLE_EQ(RunScenario(o)->failures_per_day, 1);
}

TEST(Scenario, JsonHasEveryPolicyAndGeminisRecoveryProbability) {
  ScenarioOptions o = Small();
  auto s = RunScenario(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto j = ScenarioJson(o, *s);
  ASSERT_TRUE(j.ok()) << j.status().ToString();
  EXPECT_EQ((*j)["trials"], 4);
  EXPECT_TRUE((*j)["trace"].is_null());
  ASSERT_EQ((*j)["policies"].size(), 3u);
  const auto& g = (*j)["policies"][0];
  EXPECT_EQ(g["policy"], "gemini");
  // One machine at a time with two copies: always recoverable from memory.
  EXPECT_DOUBLE_EQ(g["memory_recovery_probability"].get<double>(), 1.0);
  EXPECT_FALSE((*j)["policies"][1].contains("memory_recovery_probability"));
}

TEST(Scenario, TraceGivesTheEventSizesWithinTheHorizon) {
  const std::string path = "/tmp/gemini-scenario-test-" + std::to_string(getpid()) + ".txt";
  {
    std::ofstream f(path);
    f << "3600 0\n7200 1 2\n10800 3 4\n999999 5\n";  // The last is after 2 days.
  }
  ScenarioOptions o = Small();
  o.trace = path;
  auto s = RunScenario(o);
  std::remove(path.c_str());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(s->event_sizes, (std::map<int, int>{{1, 1}, {2, 2}}));
  EXPECT_DOUBLE_EQ(s->failures_per_day, 1.5);
  auto j = ScenarioJson(o, *s);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ((*j)["trials"], 1);
  EXPECT_EQ((*j)["trace"], path);
  o.trace = path;  // Gone now.
  EXPECT_FALSE(RunScenario(o).ok());
}

}  // namespace
}  // namespace gemini::sim
