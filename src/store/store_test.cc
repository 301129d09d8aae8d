#include "store/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace gemini {
namespace {

using std::chrono::milliseconds;

Manifest Shard(const std::string& job, uint32_t rank, uint32_t world, int64_t it, uint64_t bytes) {
  Manifest m;
  m.job = job;
  m.rank = rank;
  m.world_size = world;
  m.iteration = it;
  m.chunk_size = 4096;
  m.entries.push_back({"t", Dtype::kUint8, {static_cast<int64_t>(bytes)}, 0, bytes, 0});
  m.AssignOffsets();
  return m;
}

std::vector<uint32_t> Crcs(const Manifest& m) { return std::vector<uint32_t>(m.NumChunks(), 0); }

StoreOptions Opts(uint64_t budget = 64 << 20) {
  return StoreOptions{.budget_bytes = budget,
                      .shm_prefix = "gemini-test-" + std::to_string(getpid())};
}

Status SaveOne(Store& s, uint64_t writer, const Manifest& m) {
  auto g = s.Begin(writer, m, milliseconds(100));
  if (!g.ok()) return g.status();
  close(g->fd);
  return s.Commit(writer, m.job, m.rank, m.iteration, Crcs(m));
}

TEST(Store, CommitFlipsAndKeepsPrevious) {
  Store s(Opts());
  EXPECT_EQ(s.CompleteIteration("j"), -1);
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 10000)).ok());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 2, 10000)).ok());
  EXPECT_EQ(s.CompleteIteration("j"), 2);
  auto newest = s.Open("j", 0, -1);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->manifest.iteration, 2);
  close(newest->slot.fd);
  auto prev = s.Open("j", 0, 1);
  ASSERT_TRUE(prev.ok());
  close(prev->slot.fd);
  EXPECT_FALSE(s.Open("j", 0, 0).ok());
}

TEST(Store, UncommittedWriteNeverReplacesCommitted) {
  Store s(Opts());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 10000)).ok());
  auto g = s.Begin(2, Shard("j", 0, 1, 2, 10000), milliseconds(100));
  ASSERT_TRUE(g.ok());
  close(g->fd);
  s.AbortWriter(2);  // The trainer died mid-copy.
  auto newest = s.Open("j", 0, -1);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->manifest.iteration, 1);
  close(newest->slot.fd);
  EXPECT_EQ(s.CompleteIteration("j"), 1);
}

TEST(Store, CommitChecksItsBegin) {
  Store s(Opts());
  Manifest m = Shard("j", 0, 1, 1, 10000);
  EXPECT_FALSE(s.Commit(1, "j", 0, 1, Crcs(m)).ok());
  auto g = s.Begin(1, m, milliseconds(100));
  ASSERT_TRUE(g.ok());
  close(g->fd);
  EXPECT_FALSE(s.Commit(2, "j", 0, 1, Crcs(m)).ok());  // Another writer.
  EXPECT_FALSE(s.Commit(1, "j", 0, 9, Crcs(m)).ok());  // Another iteration.
  EXPECT_FALSE(s.Commit(1, "j", 0, 1, {1, 2}).ok());   // Wrong CRC count.
  EXPECT_EQ(s.Begin(2, m, milliseconds(10)).status().code(), Code::kAborted);
  EXPECT_TRUE(s.Commit(1, "j", 0, 1, Crcs(m)).ok());
}

TEST(Store, BudgetRefusesBeforeTouchingCommitted) {
  Store s(Opts(1 << 20));
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 300000)).ok());
  auto g = s.Begin(1, Shard("j", 0, 1, 2, 900000), milliseconds(100));
  ASSERT_FALSE(g.ok());
  EXPECT_EQ(g.status().code(), Code::kResourceExhausted);
  EXPECT_NE(g.status().message().find("budget"), std::string::npos);
  auto newest = s.Open("j", 0, -1);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->manifest.iteration, 1);
  close(newest->slot.fd);
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 2, 300000)).ok());
}

TEST(Store, NeverOverwritesTheNewestCompleteIteration) {
  Store s(Opts());
  // Rank 0 runs ahead: commits 1 and 2 while rank 1 has only 1.
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 2, 1, 5000)).ok());
  ASSERT_TRUE(SaveOne(s, 2, Shard("j", 1, 2, 1, 5000)).ok());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 2, 2, 5000)).ok());
  EXPECT_EQ(s.CompleteIteration("j"), 1);
  // Writing 3 on rank 0 would overwrite 1, the newest complete: refused in time.
  auto g = s.Begin(1, Shard("j", 0, 2, 3, 5000), milliseconds(50));
  EXPECT_EQ(g.status().code(), Code::kDeadlineExceeded);
  // Once rank 1 commits 2, rank 0 may proceed; a blocked Begin wakes up.
  std::thread slow([&] {
    std::this_thread::sleep_for(milliseconds(50));
    EXPECT_TRUE(SaveOne(s, 2, Shard("j", 1, 2, 2, 5000)).ok());
  });
  auto g2 = s.Begin(1, Shard("j", 0, 2, 3, 5000), milliseconds(5000));
  slow.join();
  ASSERT_TRUE(g2.ok()) << g2.status().ToString();
  close(g2->fd);
  EXPECT_EQ(s.CompleteIteration("j"), 2);
}

TEST(Store, RestartFromEarlierIterationDropsAbandonedTimeline) {
  Store s(Opts());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 5, 5000)).ok());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 6, 5000)).ok());
  // Resumed from 5: the next save is 6 again; the old 6 must not survive.
  auto g = s.Begin(2, Shard("j", 0, 1, 6, 5000), milliseconds(100));
  ASSERT_TRUE(g.ok());
  close(g->fd);
  s.AbortWriter(2);
  auto newest = s.Open("j", 0, -1);
  ASSERT_TRUE(newest.ok());
  EXPECT_EQ(newest->manifest.iteration, 5);
  close(newest->slot.fd);
}

TEST(Store, StatusAndDrop) {
  Store s(Opts());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 5000)).ok());
  EXPECT_NE(s.StatusJson().find("\"complete_iteration\":1"), std::string::npos);
  EXPECT_TRUE(s.DropJob("j").ok());
  EXPECT_FALSE(s.DropJob("j").ok());
  EXPECT_EQ(s.StatusJson().find("\"job\""), std::string::npos);
}

}  // namespace
}  // namespace gemini

namespace gemini {
namespace {

TEST(Store, PinnedSlotIsNotReused) {
  Store s(Opts());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 5000)).ok());
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 2, 5000)).ok());
  auto pin = s.Pin("j", 0, 1);  // A replica of iteration 1 is being sent.
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ((*pin)->manifest.iteration, 1);
  // Iteration 3 would reuse iteration 1's slot: it waits for the pin.
  EXPECT_EQ(s.Begin(1, Shard("j", 0, 1, 3, 5000), milliseconds(50)).status().code(),
            Code::kDeadlineExceeded);
  EXPECT_FALSE(s.DropJob("j").ok());
  pin->reset();
  auto g = s.Begin(1, Shard("j", 0, 1, 3, 5000), milliseconds(50));
  ASSERT_TRUE(g.ok());
  close(g->fd);
}

TEST(Store, CoordinatorModeTakesCompleteFromOutside) {
  StoreOptions o = Opts();
  o.coordinated_job = "j";
  Store s(o);
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 1, 5000)).ok());
  EXPECT_EQ(s.CompleteIteration("j"), -1);  // Replicas are not known to be committed yet.
  ASSERT_TRUE(SaveOne(s, 1, Shard("j", 0, 1, 2, 5000)).ok());
  EXPECT_EQ(s.Begin(1, Shard("j", 0, 1, 3, 5000), milliseconds(20)).status().code(),
            Code::kDeadlineExceeded);
  s.SetExternalComplete("j", 2);
  auto g = s.Begin(1, Shard("j", 0, 1, 3, 5000), milliseconds(20));
  ASSERT_TRUE(g.ok());
  close(g->fd);
}

}  // namespace
}  // namespace gemini
