// FakeKvStore-only controls: the manual clock and injected outages.
#include "coord/fake_kv_store.h"

#include <gtest/gtest.h>

#include "coord/lease_keeper.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;

Deadline Soon() { return DeadlineAfter(5s); }

TEST(FakeKvStoreTest, ManualClockExpiresLeasesExactly) {
  FakeKvStore::Options o;
  o.manual_clock = true;
  FakeKvStore kv(o);
  Result<LeaseInfo> lease = kv.LeaseGrant(2, Soon());
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(kv.Put("hb", "x", Soon(), lease->id).ok());
  Result<std::unique_ptr<Watch>> w = kv.WatchPrefix("hb", 0, Soon());
  ASSERT_TRUE(w.ok());

  ASSERT_TRUE(kv.AdvanceClock(1999ms).ok());
  EXPECT_TRUE(kv.Get("hb", Soon()).ok());
  ASSERT_TRUE(kv.LeaseKeepAlive(lease->id, Soon()).ok());  // restarts the 2 s
  ASSERT_TRUE(kv.AdvanceClock(1999ms).ok());
  EXPECT_TRUE(kv.Get("hb", Soon()).ok());
  ASSERT_TRUE(kv.AdvanceClock(1ms).ok());
  EXPECT_EQ(kv.Get("hb", Soon()).status().code(), Code::kNotFound);

  Result<std::vector<WatchEvent>> ev = (*w)->Poll(Soon());
  ASSERT_TRUE(ev.ok());
  ASSERT_EQ(ev->size(), 1u);
  EXPECT_EQ((*ev)[0].type, WatchEvent::Type::kDelete);
}

TEST(FakeKvStoreTest, AdvanceClockNeedsManualClock) {
  FakeKvStore kv;
  EXPECT_EQ(kv.AdvanceClock(1ms).code(), Code::kFailedPrecondition);
}

TEST(FakeKvStoreTest, InjectedOutageFailsCallsAndBreaksWatches) {
  FakeKvStore kv;
  Result<std::unique_ptr<Watch>> w = kv.WatchPrefix("", 0, Soon());
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE(kv.Put("a", "1", Soon()).ok());
  kv.SetUnavailable(true);
  EXPECT_EQ(kv.Put("a", "2", Soon()).status().code(), Code::kUnavailable);
  EXPECT_EQ(kv.LeaseGrant(5, Soon()).status().code(), Code::kUnavailable);
  Result<std::vector<WatchEvent>> first = (*w)->Poll(Soon());
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->size(), 1u);
  EXPECT_EQ((*w)->Poll(Soon()).status().code(), Code::kUnavailable);
  kv.SetUnavailable(false);
  EXPECT_TRUE(kv.Put("a", "3", Soon()).ok());
}

TEST(FakeKvStoreTest, CompactedHistoryAbortsOldWatch) {
  FakeKvStore::Options o;
  o.history_limit = 2;
  FakeKvStore kv(o);
  Result<int64_t> first = kv.Put("k", "1", Soon());
  ASSERT_TRUE(first.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(kv.Put("k", "x", Soon()).ok());
  Result<std::unique_ptr<Watch>> w = kv.WatchPrefix("k", *first, Soon());
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->Poll(Soon()).status().code(), Code::kAborted);
}

TEST(FakeKvStoreTest, LeaseKeeperReportsLossDuringOutage) {
  auto kv = std::make_shared<FakeKvStore>();
  Result<LeaseInfo> lease = kv->LeaseGrant(1, Soon());
  ASSERT_TRUE(lease.ok());
  LeaseKeeper keeper(kv, *lease);
  kv->SetUnavailable(true);
  const Deadline end = DeadlineAfter(15s);
  while (keeper.status().ok() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(keeper.status().code(), Code::kAborted) << keeper.status().ToString();
}

}  // namespace
}  // namespace gemini
