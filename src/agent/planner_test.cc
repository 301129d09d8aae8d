#include "agent/planner.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gemini {
namespace {

struct PlannerTest : ::testing::Test {
  JobConfig config;
  Placement placement;
  Plan running;
  Observations obs;
  void SetUp() override {
    config.num_hosts = 4;
    placement = *MakePlacement(4, 2, PlacementStrategy::kMixed);  // {0,1} {2,3}
    running.epoch = 3;
    running.state = "running";
    obs.live_hosts = {0, 1, 2, 3};
    obs.complete = 17;
    obs.persisted = 10;
    obs.now = 1000;
  }
};

TEST_F(PlannerTest, NothingHappened) {
  EXPECT_FALSE(PlanRecovery(config, placement, running, obs));
}

TEST_F(PlannerTest, TrainerExitIsASoftwareFailure) {
  obs.exits[5] = 999.5;
  auto p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "software");
  EXPECT_EQ(p->epoch, 4);
  EXPECT_EQ(p->resume_iteration, 17);
  EXPECT_EQ(p->source, "local");
  EXPECT_EQ(p->failed_at, 999.5);
  EXPECT_TRUE(p->failed_hosts.empty());
}

TEST_F(PlannerTest, RestartsBeyondTheLimitFailTheJob) {
  obs.exits[5] = 999.5;
  config.max_restarts = 3;  // Epoch 4 is the third restart: allowed.
  auto p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "preparing");
  config.max_restarts = 2;  // The third is one too many.
  p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "failed");
  EXPECT_NE(p->reason.find("2 restart(s) used"), std::string::npos) << p->reason;
  EXPECT_FALSE(PlanRecovery(config, placement, *p, obs)) << "a failed job stays failed";
  config.max_restarts = -1;  // No limit.
  EXPECT_EQ(PlanRecovery(config, placement, running, obs)->state, "preparing");
}

TEST_F(PlannerTest, LostHostIsAHardwareFailureServedByPeers) {
  obs.live_hosts = {0, 1, 3};
  auto p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "hardware");
  EXPECT_EQ(p->resume_iteration, 17);
  EXPECT_EQ(p->failed_hosts, std::vector<uint32_t>{2});
  EXPECT_EQ(p->SourceFor(2), "peer");
  EXPECT_EQ(p->SourceFor(0), "local");
}

TEST_F(PlannerTest, WholeGroupLostFallsBackToPersisted) {
  obs.live_hosts = {0, 1};
  auto p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->resume_iteration, 10);
  EXPECT_EQ(p->SourceFor(0), "persistent");
  EXPECT_EQ(p->SourceFor(2), "persistent");
  obs.persisted = -1;  // Nothing persisted: start over.
  EXPECT_EQ(PlanRecovery(config, placement, running, obs)->source, "fresh");
}

TEST_F(PlannerTest, TwoHostsOfDifferentGroupsAreStillRecoverableFromMemory) {
  obs.live_hosts = {1, 3};
  auto p = PlanRecovery(config, placement, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "hardware");
  EXPECT_EQ(p->failed_hosts, (std::vector<uint32_t>{0, 2}));
}

TEST_F(PlannerTest, ReplacementsInProgressAreNotNewFailures) {
  Plan preparing = running;
  preparing.state = "preparing";
  preparing.failed_hosts = {2};
  obs.live_hosts = {0, 1, 3};
  EXPECT_FALSE(PlanRecovery(config, placement, preparing, obs));
  // But a second host lost meanwhile is, and the first stays a replacement.
  obs.live_hosts = {0, 1};
  auto p = PlanRecovery(config, placement, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->failed_hosts, (std::vector<uint32_t>{2, 3}));
}

TEST_F(PlannerTest, HostsStillJoiningAtTheStartAreNotLost) {
  Plan start;
  start.epoch = 1;
  start.state = "preparing";
  start.kind = "start";
  obs.live_hosts = {0, 3};
  EXPECT_FALSE(PlanRecovery(config, placement, start, obs));
  start.state = "running";  // Once running, a missing host is a failure.
  EXPECT_TRUE(PlanRecovery(config, placement, start, obs));
}

TEST_F(PlannerTest, AHostThatCannotPrepareMeansPersistent) {
  Plan preparing = running;
  preparing.state = "preparing";
  obs.not_ready[1] = "fetch failed";
  auto p = PlanRecovery(config, placement, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->source, "persistent");
}

TEST_F(PlannerTest, PlanRoundTripsThroughJson) {
  obs.exits[1] = 5;
  auto p = PlanRecovery(config, placement, running, obs);
  auto back = DecodePlan(EncodePlan(*p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->kind, "software");
  EXPECT_EQ(back->epoch, 4);
  EXPECT_FALSE(DecodePlan("{").ok());
  EXPECT_FALSE(DecodeJobConfig("{\"num_hosts\":1}").ok());
}

// A recovery from the persistent tier names the timeline of the files every
// host loads; plans written before the field existed name none.
TEST(PlanJson, PersistedEpochRoundTripsAndDefaultsToNone) {
  Plan p;
  p.epoch = 5;
  p.resume_iteration = 40;
  p.source = "persistent";
  p.persisted_epoch = 3;
  auto back = DecodePlan(EncodePlan(p));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->persisted_epoch, 3);
  auto json = nlohmann::json::parse(EncodePlan(p));
  json.erase("persisted_epoch");
  auto old = DecodePlan(json.dump());
  ASSERT_TRUE(old.ok()) << old.status().ToString();
  EXPECT_EQ(old->persisted_epoch, -1);
}

}  // namespace
}  // namespace gemini

namespace gemini {
namespace {

// A recovery that prepares past its deadline never waits silently forever.
struct PrepareDeadlineTest : PlannerTest {
  Plan preparing;
  void SetUp() override {
    PlannerTest::SetUp();
    config.prepare_timeout_s = 60;
    preparing = running;
    preparing.state = "preparing";
    preparing.kind = "hardware";
    preparing.failed_hosts = {2};
    preparing.detected_at = 1000;
    obs.live_hosts = {0, 1, 3};  // Host 2's replacement has not registered.
    obs.ready = {0, 1, 3};
  }
};

TEST_F(PrepareDeadlineTest, WaitsForAReplacementUntilTheDeadline) {
  obs.now = 1059;
  EXPECT_FALSE(PlanRecovery(config, placement, preparing, obs));
}

TEST_F(PrepareDeadlineTest, NoMachineByTheDeadlineFailsTheJobSayingWhy) {
  obs.now = 1061;
  auto p = PlanRecovery(config, placement, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "failed");
  EXPECT_EQ(p->epoch, preparing.epoch + 1);
  EXPECT_NE(p->reason.find("host(s) 2 within 60 s"), std::string::npos) << p->reason;
  config.prepare_timeout_s = 0;  // No deadline: wait.
  EXPECT_FALSE(PlanRecovery(config, placement, preparing, obs));
}

TEST_F(PrepareDeadlineTest, ALiveHostThatNeverGetsReadyCannotPrepare) {
  obs.live_hosts = {0, 1, 2, 3};  // The replacement came but never reported ready.
  obs.now = 1061;
  auto p = PlanRecovery(config, placement, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "preparing");
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->source, "persistent");
  EXPECT_NE(p->reason.find("did not report ready within 60 s"), std::string::npos) << p->reason;
}

}  // namespace
}  // namespace gemini
