#include "agent/cluster/job_coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "common/eventually.h"
#include "coord/fake_kv_store.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

std::shared_ptr<KvStore> JobKv(std::shared_ptr<KvStore> base) {
  return std::make_shared<PrefixKvStore>(base, "/gemini/job/");
}

TEST(JobCoordinator, RegistersHostsUnderALease) {
  auto base = std::make_shared<FakeKvStore>();
  JobCoordinator a(JobKv(base), {0, "10.0.0.1", 7000, {0, 1}}, 5);
  JobCoordinator b(JobKv(base), {1, "10.0.0.2", 7000, {2}}, 5);
  ASSERT_TRUE(a.Register().ok());
  ASSERT_TRUE(b.Register().ok());
  ASSERT_TRUE(b.SetRanks({3, 2}).ok());
  auto hosts = a.Hosts();
  ASSERT_TRUE(hosts.ok());
  ASSERT_EQ(hosts->size(), 2u);
  EXPECT_EQ((*hosts)[1].ranks, (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ((*hosts)[0].addr, "10.0.0.1");
  b.Stop();  // Leaves: its lease is revoked and its record disappears.
  EXPECT_EQ(a.Hosts()->size(), 1u);
  // WatchedHosts() reads a mirror kept by a watch: the delete arrives shortly.
  EXPECT_TRUE(Eventually([&] { return a.WatchedHosts()->size() == 1u; }));
}

// Plain cluster mode: an agent cut off from etcd for longer than its lease
// registers again, under a new lease, once etcd answers.
TEST(JobCoordinator, KeepsRegisteredAfterEtcdWasAwayForAWholeLease) {
  auto base = std::make_shared<FakeKvStore>();
  JobCoordinator a(JobKv(base), {4, "10.0.0.5", 7000, {4}}, 1);
  ASSERT_TRUE(a.Register().ok());
  const LeaseId first = a.lease_id();
  a.KeepRegistered(std::chrono::milliseconds(50));
  base->SetUnavailable(true);  // Longer than the TTL: the lease expires in etcd.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  base->SetUnavailable(false);
  EXPECT_TRUE(Eventually([&] {
    auto hosts = a.Hosts();
    return hosts.ok() && hosts->count(4) == 1 && a.lease_id() != first;
  }));
  EXPECT_EQ((*a.Hosts())[4].addr, "10.0.0.5");
  a.Stop();  // Stops the maintainer too: the record goes with the lease.
  EXPECT_EQ(a.Hosts()->count(4), 0u);
}

// Records that direct recovery are written only under this agent's own
// registration: once another agent registered the host id (a replacement
// after this one's lease expired), this one writes nothing.
TEST(JobCoordinator, OwnWritesStopWhenTheRegistrationIsTakenOver) {
  auto base = std::make_shared<FakeKvStore>();
  auto kv = JobKv(base);
  JobCoordinator stale(kv, {2, "10.0.0.3", 7000, {2}}, 5);
  ASSERT_TRUE(stale.Register().ok());
  EXPECT_TRUE(*stale.PutOwn("ready/4/2", "{}", DeadlineAfter(std::chrono::seconds(1))));
  // Its lease expires (it froze); a replacement registers host 2.
  ASSERT_TRUE(kv->LeaseRevoke(stale.lease_id(), DeadlineAfter(std::chrono::seconds(1))).ok());
  JobCoordinator replacement(kv, {2, "10.0.0.9", 7000, {2}}, 5);
  ASSERT_TRUE(replacement.Register().ok());
  EXPECT_FALSE(*stale.PutOwn("exits/5/2", "{}", DeadlineAfter(std::chrono::seconds(1))));
  EXPECT_FALSE(kv->Get("exits/5/2", DeadlineAfter(std::chrono::seconds(1))).ok());
  EXPECT_TRUE(*replacement.PutOwn("ready/5/2", "{}", DeadlineAfter(std::chrono::seconds(1))));
  replacement.Stop();  // Stood down: nothing more either.
  EXPECT_FALSE(*replacement.PutOwn("done/5/2", "1", DeadlineAfter(std::chrono::seconds(1))));
  // A replacement that writes over a record whose lease is still alive (its
  // host was declared lost by probes while it kept its etcd session).
  JobCoordinator cut_off(kv, {3, "10.0.0.4", 7000, {3}}, 5);
  ASSERT_TRUE(cut_off.Register().ok());
  JobCoordinator takes_over(kv, {3, "10.0.0.8", 7000, {3}}, 5);
  ASSERT_TRUE(takes_over.Register().ok());
  EXPECT_FALSE(*cut_off.PutOwn("exits/5/3", "{}", DeadlineAfter(std::chrono::seconds(1))));
  EXPECT_TRUE(*takes_over.PutOwn("ready/5/3", "{}", DeadlineAfter(std::chrono::seconds(1))));
}

TEST(JobCoordinator, CompleteIsTheSlowestRankAndOnlyGrows) {
  auto base = std::make_shared<FakeKvStore>();
  JobCoordinator c(JobKv(base), {0, "a", 1, {0, 1}}, 5);
  EXPECT_EQ(*c.Complete(), -1);
  ASSERT_TRUE(c.ReportReplicated(0, 5, c.epoch()).ok());
  EXPECT_EQ(*c.TryAdvanceComplete(2), -1);  // Rank 1 has nothing replicated yet.
  ASSERT_TRUE(c.ReportReplicated(1, 4, c.epoch()).ok());
  EXPECT_EQ(*c.TryAdvanceComplete(2), 4);
  ASSERT_TRUE(c.ReportReplicated(1, 6, c.epoch()).ok());
  EXPECT_EQ(*c.TryAdvanceComplete(2), 5);
  EXPECT_EQ(*c.Complete(), 5);
  // A lagging report never moves it back.
  ASSERT_TRUE(c.ReportReplicated(0, 3, c.epoch()).ok());
  EXPECT_EQ(*c.TryAdvanceComplete(2), 5);
  EXPECT_EQ(*c.Complete(), 5);
}

TEST(JobCoordinator, NewEpochIgnoresTheOldTimeline) {
  auto base = std::make_shared<FakeKvStore>();
  JobCoordinator old_epoch(JobKv(base), {0, "a", 1, {0}}, 5, 0);
  ASSERT_TRUE(old_epoch.ReportReplicated(0, 9, old_epoch.epoch()).ok());
  ASSERT_TRUE(old_epoch.ReportReplicated(1, 9, old_epoch.epoch()).ok());
  EXPECT_EQ(*old_epoch.TryAdvanceComplete(2), 9);
  JobCoordinator next(JobKv(base), {0, "a", 1, {0}}, 5, 1);
  ASSERT_TRUE(next.ReportReplicated(0, 6, next.epoch()).ok());
  EXPECT_EQ(*next.TryAdvanceComplete(2), -1);  // Rank 1's 9 was another timeline.
  ASSERT_TRUE(next.ReportReplicated(1, 6, next.epoch()).ok());
  EXPECT_EQ(*next.TryAdvanceComplete(2), 6);
  EXPECT_EQ(*old_epoch.TryAdvanceComplete(2), -1);  // The old epoch cannot write back.
  EXPECT_EQ(*next.Complete(), 6);
}

TEST(JobCoordinator, WatchDeliversCompleteChanges) {
  auto base = std::make_shared<FakeKvStore>();
  JobCoordinator c(JobKv(base), {0, "a", 1, {0}}, 5);
  std::atomic<int64_t> seen{-2};
  c.WatchComplete([&](int64_t, int64_t it) { seen = it; });
  ASSERT_TRUE(c.ReportReplicated(0, 3, c.epoch()).ok());
  ASSERT_TRUE(c.TryAdvanceComplete(1).ok());
  for (int i = 0; i < 500 && seen != 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(seen, 3);
  c.Stop();
}

}  // namespace
}  // namespace gemini
