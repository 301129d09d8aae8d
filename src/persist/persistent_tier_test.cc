#include "persist/persistent_tier.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "persist/catalog.h"
#include "persist/fault_env.h"
#include "persist/layout.h"
#include "persist/shard_file.h"
#include "persist/test_util.h"

namespace gemini {
namespace {

using persist_test::MakeShard;
using persist_test::TempDir;
using persist_test::TestShard;

constexpr std::chrono::seconds kWait{20};  // A deadline for hangs, not a timing assertion.

PersistOptions Options(const std::string& root, int64_t p, double s = 0, int keep = 3) {
  PersistOptions o;
  o.root = root;
  o.every_iterations = p;
  o.every_seconds = s;
  o.keep_complete = keep;
  return o;
}

// Owns the shards offered to a tier and counts their releases.
class Offers {
 public:
  Result<OfferOutcome> Offer(PersistentTier* tier, int64_t iteration, uint32_t rank,
                             uint32_t world = 1) {
    shards_.push_back(std::make_unique<TestShard>(MakeShard("job", iteration, rank, world)));
    const TestShard& s = *shards_.back();
    return tier->Offer("job", rank, iteration, s.manifest, s.crcs, s.data.data(),
                       [this] { ++released_; });
  }
  int offered() const { return static_cast<int>(shards_.size()); }
  int released() const { return released_; }

 private:
  std::vector<std::unique_ptr<TestShard>> shards_;
  std::atomic<int> released_{0};
};

bool Persisted(const std::string& root, int64_t iteration, uint32_t rank = 0) {
  return std::filesystem::exists(ShardPath(root, "job", iteration, rank));
}

TEST(PersistTier, OpenValidatesOptions) {
  TempDir dir;
  PersistEnv* env = PersistEnv::Posix();
  EXPECT_FALSE(PersistentTier::Open(env, Options("", 1)).ok());
  EXPECT_FALSE(PersistentTier::Open(env, Options(dir.path(), -1)).ok());
  EXPECT_FALSE(PersistentTier::Open(env, Options(dir.path(), 1, -1)).ok());
  EXPECT_FALSE(PersistentTier::Open(env, Options(dir.path(), 1, 0, 0)).ok());
  auto tier = PersistentTier::Open(env, Options(dir.path() + "/a/b", 1));
  ASSERT_TRUE(tier.ok()) << tier.status().ToString();
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/a/b"));
  PersistOptions defaults;
  EXPECT_EQ(defaults.every_iterations, 100);
  EXPECT_EQ(defaults.every_seconds, 600);
  EXPECT_EQ(defaults.keep_complete, 3);
}

TEST(PersistTier, PolicyEveryPIterations) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 10, 0, 10));
  Offers offers;
  for (int64_t it = 1; it <= 35; ++it) {
    auto outcome = offers.Offer(tier.get(), it, 0);
    ASSERT_TRUE(outcome.ok()) << outcome.status().ToString();
    EXPECT_EQ(*outcome, it % 10 == 0 ? OfferOutcome::kQueued : OfferOutcome::kSkipped) << it;
    ASSERT_TRUE(tier->Flush(kWait).ok());
  }
  for (int64_t it = 1; it <= 35; ++it) EXPECT_EQ(Persisted(dir.path(), it), it % 10 == 0) << it;
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.offered, 35u);
  EXPECT_EQ(st.skipped, 32u);
  EXPECT_EQ(st.written, 3u);
  EXPECT_EQ(st.completed, 3u);  // World of one: each is complete at once.
  EXPECT_EQ(st.last_written_iteration, 30);
  EXPECT_TRUE(st.last_error.ok()) << st.last_error.ToString();
  EXPECT_EQ(offers.released(), 35);
  EXPECT_EQ(*tier->NewestComplete("job"), 30);
}

TEST(PersistTier, PolicyEverySSecondsChoosesOneIterationForAllRanks) {
  TempDir dir;
  PersistOptions o = Options(dir.path(), 0, 60);
  auto now = PersistOptions::Clock::time_point{};
  o.clock = [&now] { return now; };
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), o);
  Offers offers;
  EXPECT_EQ(*offers.Offer(tier.get(), 1, 0, 2), OfferOutcome::kSkipped);  // Starts the timer.
  now += std::chrono::seconds(30);
  EXPECT_EQ(*offers.Offer(tier.get(), 2, 0, 2), OfferOutcome::kSkipped);
  now += std::chrono::seconds(31);
  EXPECT_EQ(*offers.Offer(tier.get(), 3, 0, 2), OfferOutcome::kQueued);
  EXPECT_EQ(*offers.Offer(tier.get(), 3, 1, 2), OfferOutcome::kQueued);  // Same iteration.
  EXPECT_EQ(*offers.Offer(tier.get(), 4, 1, 2), OfferOutcome::kSkipped);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  EXPECT_TRUE(Persisted(dir.path(), 3, 0));
  EXPECT_TRUE(Persisted(dir.path(), 3, 1));
  EXPECT_EQ(*tier->NewestComplete("job"), 3);  // Both ranks here: complete.
}

TEST(PersistTier, DisabledPoliciesPersistOnlyRequestedIterations) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 0, 0));
  tier->PersistIteration("job", 7);
  Offers offers;
  for (int64_t it = 1; it <= 10; ++it) offers.Offer(tier.get(), it, 0);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  for (int64_t it = 1; it <= 10; ++it) EXPECT_EQ(Persisted(dir.path(), it), it == 7) << it;
  EXPECT_EQ(offers.released(), 10);
}

// A disk that does not move does not delay Offer: it returns while the
// worker is stuck, and newer offers replace older pending ones.
TEST(PersistTier, OfferNeverBlocksOnASlowDisk) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  auto tier = *PersistentTier::Open(&env, Options(dir.path(), 1));
  env.HoldWrites();
  Offers offers;
  EXPECT_EQ(*offers.Offer(tier.get(), 1, 0, 2), OfferOutcome::kQueued);
  ASSERT_TRUE(env.WaitUntilHeld(kWait));  // The worker is stuck writing iteration 1.
  EXPECT_EQ(*offers.Offer(tier.get(), 2, 0, 2), OfferOutcome::kQueued);
  EXPECT_EQ(*offers.Offer(tier.get(), 3, 0, 2), OfferOutcome::kReplaced);
  EXPECT_EQ(*offers.Offer(tier.get(), 4, 0, 2), OfferOutcome::kReplaced);
  EXPECT_EQ(*offers.Offer(tier.get(), 4, 1, 2), OfferOutcome::kQueued);  // Another rank.
  EXPECT_EQ(offers.released(), 2);  // Iterations 2 and 3, dropped.
  EXPECT_EQ(tier->Stats().dropped, 2u);
  EXPECT_EQ(tier->Flush(std::chrono::milliseconds(1)).code(), Code::kDeadlineExceeded);
  env.ReleaseWrites();
  ASSERT_TRUE(tier->Flush(kWait).ok());
  EXPECT_TRUE(Persisted(dir.path(), 1));
  EXPECT_FALSE(Persisted(dir.path(), 2));
  EXPECT_FALSE(Persisted(dir.path(), 3));
  EXPECT_TRUE(Persisted(dir.path(), 4));
  EXPECT_TRUE(Persisted(dir.path(), 4, 1));
  EXPECT_EQ(offers.released(), 5);
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.written, 3u);
  EXPECT_TRUE(st.last_error.ok()) << st.last_error.ToString();
  EXPECT_EQ(*tier->NewestComplete("job"), 4);
}

TEST(PersistTier, CompletesAndKeepsTheLastK) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 1, 0, 2));
  Offers offers;
  for (int64_t it = 1; it <= 5; ++it) {
    offers.Offer(tier.get(), it, 0, 2);
    offers.Offer(tier.get(), it, 1, 2);
    ASSERT_TRUE(tier->Flush(kWait).ok());
  }
  EXPECT_EQ(*ListIterations(PersistEnv::Posix(), dir.path(), "job"), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(*tier->NewestComplete("job"), 5);
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.completed, 5u);
  EXPECT_EQ(st.removed, 3u);
  auto loaded = ReadShardFor(PersistEnv::Posix(), dir.path(), "job", 5, 1);
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data, MakeShard("job", 5, 1, 2).data);
}

TEST(PersistTier, LocalRanksOnlyNeverMarkComplete) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 1, 0, 1));
  Offers offers;
  for (int64_t it = 1; it <= 3; ++it) {
    offers.Offer(tier.get(), it, 0, 2);
    ASSERT_TRUE(tier->Flush(kWait).ok());
  }
  EXPECT_EQ(tier->NewestComplete("job").status().code(), Code::kNotFound);
  EXPECT_TRUE(tier->Stats().last_error.ok());  // Missing peers are not an error.
  EXPECT_EQ(tier->MarkComplete("job", 3, 2).code(), Code::kFailedPrecondition);
  // The peer's rank lands on the shared mount; its agent (or anyone) completes it.
  TestShard peer = MakeShard("job", 3, 1, 2);
  ASSERT_TRUE(
      WriteShard(PersistEnv::Posix(), dir.path(), peer.manifest, peer.crcs, peer.data.data()).ok());
  ASSERT_TRUE(tier->MarkComplete("job", 3, 2).ok());
  EXPECT_EQ(*tier->NewestComplete("job"), 3);
  EXPECT_EQ(*tier->ApplyRetention("job"), (std::vector<int64_t>{1, 2}));
}

TEST(PersistTier, WriteErrorsAreCountedAndOlderIterationsStay) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  auto tier = *PersistentTier::Open(&env, Options(dir.path(), 1));
  Offers offers;
  offers.Offer(tier.get(), 1, 0);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  env.SetSpaceLimit(1000);
  offers.Offer(tier.get(), 2, 0);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.written, 1u);
  EXPECT_EQ(st.failed, 1u);
  EXPECT_EQ(st.last_error.code(), Code::kResourceExhausted) << st.last_error.ToString();
  EXPECT_EQ(*tier->NewestComplete("job"), 1);
  EXPECT_FALSE(Persisted(dir.path(), 2));
  EXPECT_EQ(offers.released(), 2);
}

TEST(PersistTier, InvalidOffersAreRejectedAndReleased) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 1));
  TestShard s = MakeShard("job", 5, 0, 1);
  int released = 0;
  auto release = [&] { ++released; };
  EXPECT_EQ(tier->Offer("job", 1, 5, s.manifest, s.crcs, s.data.data(), release).status().code(),
            Code::kInvalidArgument);  // Manifest of another rank.
  EXPECT_EQ(tier->Offer("job", 0, 5, s.manifest, {}, s.data.data(), release).status().code(),
            Code::kInvalidArgument);  // No CRCs.
  EXPECT_EQ(tier->Offer("job", 0, 5, s.manifest, s.crcs, nullptr, release).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(released, 3);
  EXPECT_EQ(tier->Stats().rejected, 3u);
}

TEST(PersistTier, StopAbandonsPendingAndCancelsTheWriteInFlight) {
  TempDir dir;
  FaultInjectionEnv env(PersistEnv::Posix());
  PersistOptions o = Options(dir.path(), 1);
  o.piece_bytes = 4096;
  auto tier = *PersistentTier::Open(&env, o);
  env.HoldWrites();
  Offers offers;
  offers.Offer(tier.get(), 1, 0, 2);
  ASSERT_TRUE(env.WaitUntilHeld(kWait));
  offers.Offer(tier.get(), 1, 1, 2);
  std::thread stopper([&] { tier->Stop(); });
  // Stop releases the pending offer at once, then waits for the worker.
  for (auto end = std::chrono::steady_clock::now() + kWait;
       offers.released() < 1 && std::chrono::steady_clock::now() < end;)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(offers.released(), 1);
  env.ReleaseWrites();
  stopper.join();
  EXPECT_EQ(offers.released(), 2);
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.abandoned, 2u);
  EXPECT_EQ(st.written, 0u);
  EXPECT_EQ(st.failed, 0u);
  EXPECT_TRUE(persist_test::Names(IterationDir(dir.path(), "job", 1)).empty());
  EXPECT_EQ(offers.Offer(tier.get(), 2, 0).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(offers.released(), 3);
  tier->Stop();  // Idempotent.
}

}  // namespace
}  // namespace gemini
