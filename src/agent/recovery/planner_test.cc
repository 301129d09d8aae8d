#include "agent/recovery/planner.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace gemini {
namespace {

struct PlannerTest : ::testing::Test {
  JobConfig config;
  Plan running;
  Observations obs;
  void SetUp() override {
    config.num_hosts = 4;
    // copies:2 over 4 hosts: groups {0,1} {2,3}.
    running.epoch = 3;
    running.restarts = 2;
    running.state = "running";
    obs.live_hosts = {0, 1, 2, 3};
    obs.complete = 17;
    obs.persisted = 10;
    obs.now = 1000;
  }
};

TEST_F(PlannerTest, NothingHappened) { EXPECT_FALSE(PlanRecovery(config, running, obs)); }

TEST_F(PlannerTest, TrainerExitIsASoftwareFailure) {
  obs.exits[5] = 999.5;
  auto p = PlanRecovery(config, running, obs);
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
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "preparing");
  config.max_restarts = 2;  // The third is one too many.
  p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "failed");
  EXPECT_NE(p->reason.find("2 restart(s) used"), std::string::npos) << p->reason;
  EXPECT_FALSE(PlanRecovery(config, *p, obs)) << "a failed job stays failed";
  config.max_restarts = -1;  // No limit.
  EXPECT_EQ(PlanRecovery(config, running, obs)->state, "preparing");
}

TEST_F(PlannerTest, LostHostIsAHardwareFailureServedByPeers) {
  obs.live_hosts = {0, 1, 3};
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "hardware");
  EXPECT_EQ(p->resume_iteration, 17);
  EXPECT_EQ(p->failed_hosts, std::vector<uint32_t>{2});
  EXPECT_EQ(p->SourceFor(2), "peer");
  EXPECT_EQ(p->SourceFor(0), "local");
}

TEST_F(PlannerTest, WholeGroupLostFallsBackToPersisted) {
  obs.live_hosts = {0, 1};
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->resume_iteration, 10);
  EXPECT_EQ(p->SourceFor(0), "persistent");
  EXPECT_EQ(p->SourceFor(2), "persistent");
  obs.persisted = -1;  // Nothing persisted: start over.
  EXPECT_EQ(PlanRecovery(config, running, obs)->source, "fresh");
}

TEST_F(PlannerTest, TwoHostsOfDifferentGroupsAreStillRecoverableFromMemory) {
  obs.live_hosts = {1, 3};
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "hardware");
  EXPECT_EQ(p->failed_hosts, (std::vector<uint32_t>{0, 2}));
}

TEST_F(PlannerTest, ReplacementsInProgressAreNotNewFailures) {
  Plan preparing = running;
  preparing.state = "preparing";
  preparing.failed_hosts = {2};
  obs.live_hosts = {0, 1, 3};
  EXPECT_FALSE(PlanRecovery(config, preparing, obs));
  // But a second host lost meanwhile is, and the first stays a replacement.
  obs.live_hosts = {0, 1};
  auto p = PlanRecovery(config, preparing, obs);
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
  EXPECT_FALSE(PlanRecovery(config, start, obs));
  start.state = "running";  // Once running, a missing host is a failure.
  EXPECT_TRUE(PlanRecovery(config, start, obs));
}

TEST_F(PlannerTest, AHostThatCannotPrepareMeansPersistent) {
  Plan preparing = running;
  preparing.state = "preparing";
  obs.not_ready[1] = "fetch failed";
  auto p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->source, "persistent");
}

TEST_F(PlannerTest, PlanRoundTripsThroughJson) {
  obs.exits[1] = 5;
  auto p = PlanRecovery(config, running, obs);
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
  EXPECT_FALSE(PlanRecovery(config, preparing, obs));
}

TEST_F(PrepareDeadlineTest, NoMachineByTheDeadlineFailsTheJobSayingWhy) {
  obs.now = 1061;
  auto p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "failed");
  EXPECT_EQ(p->epoch, preparing.epoch + 1);
  EXPECT_NE(p->reason.find("host(s) 2 within 60 s"), std::string::npos) << p->reason;
  config.prepare_timeout_s = 0;  // No deadline: wait.
  EXPECT_FALSE(PlanRecovery(config, preparing, obs));
}

TEST_F(PrepareDeadlineTest, ALiveHostThatNeverGetsReadyCannotPrepare) {
  obs.live_hosts = {0, 1, 2, 3};  // The replacement came but never reported ready.
  obs.now = 1061;
  auto p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->state, "preparing");
  EXPECT_EQ(p->kind, "group_lost");
  EXPECT_EQ(p->source, "persistent");
  EXPECT_NE(p->reason.find("did not report ready within 60 s"), std::string::npos) << p->reason;
}

}  // namespace
}  // namespace gemini

namespace gemini {
namespace {

// `--nnodes 3:4`: a lost host that no machine replaces leaves the job.
struct ShrinkTest : PlannerTest {
  void SetUp() override {
    PlannerTest::SetUp();
    config.min_hosts = 3;
    obs.live_hosts = {0, 1, 3};
    obs.complete_epoch = running.epoch;
  }
};

TEST_F(ShrinkTest, ALostHostWithNoStandbyLeavesTheJob) {
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->state, "preparing");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(p->failed_hosts, std::vector<uint32_t>{2});
  EXPECT_EQ(p->resume_iteration, 17);
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 2, 3}));  // Saved by 4 hosts.
  EXPECT_EQ(p->source, "local");
  EXPECT_NE(p->reason.find("going on with 3 hosts"), std::string::npos) << p->reason;
  auto back = DecodePlan(EncodePlan(*p));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->hosts, p->hosts);
  EXPECT_EQ(back->resume_hosts, p->resume_hosts);
}

TEST_F(ShrinkTest, AnIdleStandbyReplacesInstead) {
  obs.standbys = 1;
  EXPECT_EQ(PlanRecovery(config, running, obs)->kind, "hardware");
}

TEST_F(ShrinkTest, NeverBelowTheMinimum) {
  config.min_hosts = 4;
  EXPECT_EQ(PlanRecovery(config, running, obs)->kind, "hardware");  // Waits for a machine.
  config.min_hosts = 3;
  obs.live_hosts = {0, 1};  // Two lost, one allowed to leave: replacements.
  EXPECT_EQ(PlanRecovery(config, running, obs)->kind, "group_lost");
}

TEST_F(ShrinkTest, AWholeGroupGoneShrinksFromThePersistentTier) {
  config.min_hosts = 2;
  obs.live_hosts = {0, 1};  // Group {2,3} gone: memory cannot serve it.
  auto p = PlanRecovery(config, running, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->source, "persistent");
  EXPECT_EQ(p->resume_iteration, 10);  // The newest complete persisted iteration.
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 2, 3}));  // Its files' world.
  obs.standbys = 2;  // Machines at hand: replaced instead.
  EXPECT_EQ(PlanRecovery(config, running, obs)->kind, "group_lost");
}

TEST_F(ShrinkTest, OnlyMembersCountAndTheResumeWorldIsKept) {
  auto shrunk = *PlanRecovery(config, running, obs);
  shrunk.state = "running";
  // Host 2 is gone for good: not a loss any more.
  EXPECT_FALSE(PlanRecovery(config, shrunk, obs));
  // A trainer exits before the smaller world completed anything: the next
  // epoch resumes from the same iteration of the 4-host world.
  obs.exits[0] = 999;
  auto p = PlanRecovery(config, shrunk, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "software");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(p->resume_iteration, 17);
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 2, 3}));
  // Once the 3-host world completed iteration 20, it resumes from that.
  obs.complete = 20;
  obs.complete_epoch = shrunk.epoch;
  p = PlanRecovery(config, shrunk, obs);
  EXPECT_EQ(p->resume_iteration, 20);
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 3}));
  // A completion of an abandoned epoch that lands late does not count.
  obs.complete = 18;
  obs.complete_epoch = running.epoch;
  EXPECT_EQ(PlanRecovery(config, shrunk, obs)->resume_iteration, 17);
}

TEST_F(ShrinkTest, NoReplacementByThePrepareDeadlineShrinksInsteadOfFailing) {
  config.prepare_timeout_s = 60;
  obs.standbys = 1;  // A standby was there at first: host 2 was to be replaced.
  Plan preparing = *PlanRecovery(config, running, obs);
  ASSERT_EQ(preparing.kind, "hardware");
  obs.standbys = 0;
  obs.ready = {0, 1, 3};
  obs.now = preparing.detected_at + 61;
  auto p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->state, "preparing");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(p->resume_iteration, 17);
}

TEST_F(ShrinkTest, AnIdleStandbyGrowsAShrunkJobBack) {
  auto shrunk = *PlanRecovery(config, running, obs);
  shrunk.state = "running";
  obs.complete = 30;
  obs.complete_epoch = shrunk.epoch;
  EXPECT_FALSE(PlanRecovery(config, shrunk, obs));  // No standby: stays at 3.
  obs.standbys = 1;
  auto p = PlanRecovery(config, shrunk, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "grow");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_EQ(p->failed_hosts, std::vector<uint32_t>{2});  // The standby takes host id 2.
  EXPECT_EQ(p->resume_iteration, 30);
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(p->SourceFor(2), "peer");
  // While it prepares, the standby is expected to be missing.
  obs.standbys = 0;
  obs.live_hosts = {0, 1, 3};
  EXPECT_FALSE(PlanRecovery(config, *p, obs));
  // A standby that never arrives: back to 3 hosts at the prepare deadline.
  config.prepare_timeout_s = 60;
  obs.ready = {0, 1, 3};
  obs.now = p->detected_at + 61;
  auto back = PlanRecovery(config, *p, obs);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->kind, "shrink");
  EXPECT_EQ(back->hosts, (std::vector<uint32_t>{0, 1, 3}));
  EXPECT_EQ(back->resume_iteration, 30);
  // A job at full size never grows.
  obs = Observations{};
  obs.live_hosts = {0, 1, 2, 3};
  obs.standbys = 2;
  EXPECT_FALSE(PlanRecovery(config, running, obs));
}

TEST_F(ShrinkTest, AHostLostWhileAnotherIsBeingReplacedLeavesWithIt) {
  config.min_hosts = 2;
  Plan preparing = running;
  preparing.state = "preparing";
  preparing.kind = "hardware";
  preparing.failed_hosts = {2};  // Its machine has not come.
  obs.live_hosts = {1, 3};       // And host 0 is lost now.
  auto p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(p->failed_hosts, (std::vector<uint32_t>{0, 2}));
  // A replacement that did come stays a member (it fetches what it needs).
  obs.live_hosts = {1, 2, 3};
  p = PlanRecovery(config, preparing, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{1, 2, 3}));
}

TEST_F(ShrinkTest, NeverGrowsOntoAHostIdAnAgentStillServes) {
  auto shrunk = *PlanRecovery(config, running, obs);
  shrunk.state = "running";
  obs.standbys = 1;
  obs.live_hosts = {0, 1, 2, 3};  // A machine came for host 2 after it left.
  EXPECT_FALSE(PlanRecovery(config, shrunk, obs));
}

TEST_F(ShrinkTest, GrowingBackIsNoRestart) {
  auto shrunk = *PlanRecovery(config, running, obs);
  shrunk.state = "running";
  obs.standbys = 1;
  auto grown = PlanRecovery(config, shrunk, obs);
  ASSERT_TRUE(grown);
  EXPECT_EQ(grown->restarts, shrunk.restarts);
  EXPECT_EQ(shrunk.restarts, running.restarts + 1);
}

// After a recovery from the persistent tier, before anything completes in
// the new epoch, another failure loads the same files again.
TEST_F(PlannerTest, AFailureBeforeAnythingCompletesAfterFilesLoadsThemAgain) {
  Plan from_files = running;
  from_files.source = "persistent";
  from_files.resume_iteration = 10;
  from_files.persisted_epoch = 2;
  obs.complete = 9;  // Of an older epoch.
  obs.complete_epoch = running.epoch - 1;
  obs.exits[1] = 999;
  auto p = PlanRecovery(config, from_files, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "software");
  EXPECT_EQ(p->source, "persistent");
  EXPECT_EQ(p->resume_iteration, 10);
  EXPECT_EQ(p->persisted_epoch, 2);
}

// A shrink from memory is preparing when the rest of the lost group dies:
// memory is judged by the world the resume iteration was saved by, and the
// job shrinks again, from the files of that world.
TEST_F(ShrinkTest, TheRestOfAGroupLostWhileShrinkingGoesToTheFilesOfTheOldWorld) {
  config.min_hosts = 2;
  auto shrinking = *PlanRecovery(config, running, obs);  // Host 2 left: {0, 1, 3}.
  ASSERT_EQ(shrinking.kind, "shrink");
  obs.live_hosts = {0, 1};  // Host 3 dies too: group {2, 3} of the 4-host world is gone.
  obs.persisted_hosts = {0, 1, 2, 3};
  auto p = PlanRecovery(config, shrinking, obs);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->kind, "shrink");
  EXPECT_EQ(p->source, "persistent");
  EXPECT_EQ(p->hosts, (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(p->resume_iteration, 10);
  EXPECT_EQ(p->resume_hosts, (std::vector<uint32_t>{0, 1, 2, 3}));
}

TEST(PlanJson, MembersMustBeHostsOfTheJob) {
  JobConfig c;
  c.num_hosts = 4;
  EXPECT_EQ(*PlanMembers(c, {}), (std::vector<uint32_t>{0, 1, 2, 3}));
  EXPECT_TRUE(PlanMembers(c, {0, 3}).ok());
  EXPECT_FALSE(PlanMembers(c, {3, 0}).ok());
  EXPECT_FALSE(PlanMembers(c, {1, 1}).ok());
  EXPECT_FALSE(PlanMembers(c, {0, 4}).ok());
  auto cfg = nlohmann::json::parse(EncodeJobConfig(c));
  cfg["min_hosts"] = 5;
  EXPECT_FALSE(DecodeJobConfig(cfg.dump()).ok());
  cfg["min_hosts"] = 3;
  EXPECT_EQ(DecodeJobConfig(cfg.dump())->fewest_hosts(), 3u);
}

TEST(JobLayoutTest, MembersGiveRanksStoreJobAndHolders) {
  JobConfig c;
  c.num_hosts = 4;
  c.nproc_per_host = 2;
  auto full = *JobLayout::Make("j", c, {});
  EXPECT_EQ(full->store_job(), "j");
  EXPECT_EQ(full->world(), 8u);
  auto l = *JobLayout::Make("j", c, {0, 1, 3});
  EXPECT_EQ(l->store_job(), "j.world6");
  EXPECT_EQ(l->Ranks(3), (std::vector<uint32_t>{4, 5}));
  EXPECT_TRUE(l->Ranks(2).empty());
  EXPECT_EQ(*l->HostOfRank(5), 3u);
  EXPECT_FALSE(l->HostOfRank(6).ok());
  // copies:2 over 3 members: a ring of three; the third member's shard is
  // also on the first.
  EXPECT_EQ(l->Holders(3), (std::vector<uint32_t>{0, 3}));
  EXPECT_FALSE(l->LosesAShard({3}));
  EXPECT_TRUE(l->LosesAShard({0, 3}));
}

}  // namespace
}  // namespace gemini
