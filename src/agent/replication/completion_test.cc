// Hierarchical completion: hosts report to the root's tracker, which
// advances `complete` once every host has reported; reports follow the root
// when the office moves. Over the fake store.
#include "agent/replication/completion.h"

#include <gtest/gtest.h>

#include <thread>

#include "agent/cluster/coord_records.h"
#include "common/eventually.h"
#include "coord/fake_kv_store.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

struct Job {
  std::shared_ptr<KvStore> kv =
      std::make_shared<PrefixKvStore>(std::make_shared<FakeKvStore>(), "/gemini/job/");
  int64_t Complete() {
    auto c = kv->Get("complete", DeadlineAfter(1s));
    if (!c.ok()) return -1;
    auto rec = DecodeComplete(c->value);
    return rec.ok() ? rec->iteration : -2;
  }
};

// What a reporter sent, in order; `during` runs inside each send.
struct Sent {
  std::function<void(int64_t)> during;
  CompletionReporter::Send Send() {
    return [this](uint32_t, const ReplicatedReport& r) {
      if (during) during(r.iteration);
      std::lock_guard<std::mutex> lock(mu);
      sent.push_back(r.iteration);
      return Status::Ok();
    };
  }
  std::vector<int64_t> iterations() {
    std::lock_guard<std::mutex> lock(mu);
    return sent;
  }
  std::mutex mu;
  std::vector<int64_t> sent;
};

TEST(CompletionTest, CompleteIsTheSlowestHostAndOnlyGrows) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5);
  CompletionTracker tracker(&coord, 3);
  tracker.Start();
  ASSERT_TRUE(tracker.Record({0, 0, 5}).ok());
  ASSERT_TRUE(tracker.Record({1, 0, 4}).ok());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(job.Complete(), -1);  // Host 2 has reported nothing.
  ASSERT_TRUE(tracker.Record({2, 0, 7}).ok());
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 4; }));
  ASSERT_TRUE(tracker.Record({1, 0, 6}).ok());
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 5; }));
  ASSERT_TRUE(tracker.Record({0, 0, 3}).ok());  // A lagging report never moves it back.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(job.Complete(), 5);
  EXPECT_EQ(tracker.Record({3, 0, 9}).code(), Code::kInvalidArgument);  // Not a host of the job.
}

// The callback of each accepted advance says when every report was in: after
// the last report that raised the slowest host, before etcd took the swap.
TEST(CompletionTest, AnAdvanceSaysWhenItsReportsWereIn) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5);
  std::mutex mu;
  std::vector<std::pair<int64_t, std::chrono::steady_clock::time_point>> seen;
  CompletionTracker tracker(&coord, 2, [&](int64_t, int64_t it, auto reported) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu);
    seen.push_back({it, reported});
    EXPECT_LE(reported, now);
  });
  tracker.Start();
  ASSERT_TRUE(tracker.Record({0, 0, 3}).ok());
  const auto before_last = std::chrono::steady_clock::now();
  ASSERT_TRUE(tracker.Record({1, 0, 3}).ok());
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 3; }));
  EXPECT_TRUE(Eventually([&] {
    std::lock_guard<std::mutex> lock(mu);
    return !seen.empty();
  }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].first, 3);
  EXPECT_GE(seen[0].second, before_last);
}

// After a shrink (agent/cluster/layout.h) only the epoch's members count: a host
// that left the job holds nothing back, and its late reports change nothing.
TEST(CompletionTest, OnlyTheEpochsMembersCount) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5, /*epoch=*/2);
  CompletionTracker tracker(&coord, 4);
  tracker.Start();
  ASSERT_TRUE(tracker.Record({0, 2, 6}).ok());  // Before the root knows the members.
  ASSERT_TRUE(tracker.Record({1, 2, 7}).ok());
  ASSERT_TRUE(tracker.Record({3, 2, 6}).ok());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(job.Complete(), -1);  // Host 2 counts until told otherwise.
  tracker.SetMembers(2, {0, 1, 3});
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 6; }));
  ASSERT_TRUE(tracker.Record({2, 2, 1}).ok());  // Not a member: not counted.
  ASSERT_TRUE(tracker.Record({0, 2, 8}).ok());
  ASSERT_TRUE(tracker.Record({3, 2, 9}).ok());
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 7; }));
}

TEST(CompletionTest, OnlyTheCurrentEpochAdvances) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5, /*epoch=*/1);
  CompletionTracker tracker(&coord, 2);
  tracker.Start();
  ASSERT_TRUE(tracker.Record({0, 0, 9}).ok());  // The abandoned timeline: dropped.
  ASSERT_TRUE(tracker.Record({1, 0, 9}).ok());
  ASSERT_TRUE(tracker.Record({0, 2, 8}).ok());  // A newer epoch than the root has entered:
  ASSERT_TRUE(tracker.Record({1, 2, 8}).ok());  // kept until it does.
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(job.Complete(), -1);
  coord.SetEpoch(2);
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 8; }));
  auto rec = DecodeComplete(job.kv->Get("complete", DeadlineAfter(1s))->value);
  EXPECT_EQ(rec->epoch, 2);
}

TEST(CompletionTest, ReportersFollowTheRootOffice) {
  Job job;
  // Two hosts of one rank each; the office moves from host 0 to host 1.
  JobCoordinator c0(job.kv, {0, "a", 1, {}}, 5), c1(job.kv, {1, "b", 1, {}}, 5);
  CompletionTracker t0(&c0, 2), t1(&c1, 2);
  t0.Start();
  t1.Start();
  std::atomic<int> root{0};
  auto send = [&](uint32_t to, const ReplicatedReport& r) {
    if (static_cast<int>(to) != root.load()) return FailedPrecondition("not the root");
    return (to == 0 ? t0 : t1).Record(r);
  };
  CompletionReporter r0(&c0, {0}, send), r1(&c1, {1}, send);
  r0.Start();
  r1.Start();
  ASSERT_TRUE(job.kv->Put("root", "0", DeadlineAfter(1s)).ok());
  r0.Replicated(0, 0, 3);
  r1.Replicated(1, 0, 3);
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 3; }));
  // The root moves; nothing new is replicated, yet the new root hears from
  // both hosts again, so the next iteration completes through it.
  root = 1;
  ASSERT_TRUE(job.kv->Put("root", "1", DeadlineAfter(1s)).ok());
  EXPECT_TRUE(Eventually([&] { return r0.delivered() >= 2 && r1.delivered() >= 2; }));
  r0.Replicated(0, 0, 4);
  r1.Replicated(1, 0, 4);
  EXPECT_TRUE(Eventually([&] { return job.Complete() == 4; }));
}

TEST(CompletionTest, AHostReportsOnlyWhenEveryRankReplicated) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5);
  ASSERT_TRUE(job.kv->Put("root", "0", DeadlineAfter(1s)).ok());
  Sent sent;
  CompletionReporter reporter(&coord, {0, 1}, sent.Send());
  reporter.Start();
  reporter.Replicated(0, 0, 5);
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(reporter.delivered(), 0);  // Rank 1 has not replicated anything yet.
  reporter.Replicated(1, 0, 4);
  EXPECT_TRUE(Eventually([&] { return reporter.delivered() == 1; }));
  EXPECT_EQ(sent.iterations(), (std::vector<int64_t>{4}));
}

// An iteration replicated while the previous report is on its way is sent
// right after it, not at the reporter's once-a-second look for a new root.
// (Before, its wake-up was lost and every such report waited up to 1 s.)
TEST(CompletionTest, AReplicaThatLandsDuringASendIsReportedNext) {
  Job job;
  JobCoordinator coord(job.kv, {0, "a", 1, {}}, 5);
  ASSERT_TRUE(job.kv->Put("root", "0", DeadlineAfter(1s)).ok());
  Sent sent;
  CompletionReporter reporter(&coord, {0}, sent.Send());
  sent.during = [&](int64_t it) {
    if (it == 1) reporter.Replicated(0, 0, 2);  // Lands while 1 is on its way.
  };
  reporter.Start();
  std::this_thread::sleep_for(50ms);
  reporter.Replicated(0, 0, 1);
  // The lost wake-up would leave 2 to the timer, a second after 1 was sent.
  EXPECT_TRUE(Eventually([&] { return reporter.delivered() == 2; }, 700ms));
  EXPECT_EQ(sent.iterations(), (std::vector<int64_t>{1, 2}));
}

}  // namespace
}  // namespace gemini
