#include "persist/persistent_tier.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "persist/catalog.h"
#include "persist/fault_env.h"
#include "persist/layout.h"
#include "persist/shard_file.h"
#include "persist/test_util.h"
#include "store/store.h"

namespace gemini {
namespace {

using persist_test::AppendLogEnv;
using persist_test::At;
using persist_test::IterationsOf;
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
                             uint32_t world = 1, int64_t epoch = 0) {
    shards_.push_back(std::make_unique<TestShard>(MakeShard("job", iteration, rank, world)));
    const TestShard& s = *shards_.back();
    return tier->Offer("job", rank, iteration, epoch, s.manifest, s.crcs, s.data.data(),
                       [this] { ++released_; });
  }
  int offered() const { return static_cast<int>(shards_.size()); }
  int released() const { return released_; }

 private:
  std::vector<std::unique_ptr<TestShard>> shards_;
  std::atomic<int> released_{0};
};

bool Persisted(const std::string& root, int64_t iteration, uint32_t rank = 0, int64_t epoch = 0) {
  return std::filesystem::exists(ShardPath(root, "job", At(iteration, epoch), rank));
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
  EXPECT_EQ(*tier->NewestComplete("job"), At(30));
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
  EXPECT_EQ(*tier->NewestComplete("job"), At(3));  // Both ranks here: complete.
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
  EXPECT_EQ(*tier->NewestComplete("job"), At(4));
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
  EXPECT_EQ(IterationsOf(*ListIterations(PersistEnv::Posix(), dir.path(), "job")),
            (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(*tier->NewestComplete("job"), At(5));
  PersistStats st = tier->Stats();
  EXPECT_EQ(st.completed, 5u);
  EXPECT_EQ(st.removed, 3u);
  auto loaded = ReadShardFor(PersistEnv::Posix(), dir.path(), {"job", 1, At(5), 2});
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
  EXPECT_EQ(tier->MarkComplete("job", At(3), 2).code(), Code::kFailedPrecondition);
  // The peer's rank lands on the shared mount; its agent (or anyone) completes it.
  TestShard peer = MakeShard("job", 3, 1, 2);
  ASSERT_TRUE(
      WriteShard(PersistEnv::Posix(), dir.path(), 0, peer.manifest, peer.crcs, peer.data.data())
          .ok());
  ASSERT_TRUE(tier->MarkComplete("job", At(3), 2).ok());
  EXPECT_EQ(*tier->NewestComplete("job"), At(3));
  EXPECT_EQ(IterationsOf(*tier->ApplyRetention("job")), (std::vector<int64_t>{1, 2}));
}

// Epoch 1 wrote iteration 10 on rank 0 only; a recovery resumed an earlier
// iteration in epoch 2, which reaches iteration 10 again on both ranks.
TEST(PersistTier, EachTimelineIsWrittenAndCompletedApart) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 10));
  Offers offers;
  offers.Offer(tier.get(), 10, 0, 2, /*epoch=*/1);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  offers.Offer(tier.get(), 10, 1, 2, /*epoch=*/2);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  EXPECT_EQ(tier->NewestComplete("job").status().code(), Code::kNotFound);  // Never mixed.
  offers.Offer(tier.get(), 10, 0, 2, /*epoch=*/2);
  ASSERT_TRUE(tier->Flush(kWait).ok());
  EXPECT_EQ(*tier->NewestComplete("job"), At(10, 2));
  EXPECT_TRUE(Persisted(dir.path(), 10, 0, 1));  // Epoch 1's file is still its own.
  auto loaded = ReadShardFor(PersistEnv::Posix(), dir.path(), {"job", 0, At(10, 2), 2});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->epoch, 2);
}

// The agent offers a pinned store slot: the tier writes from the slot's own
// memory (no copy of the shard) and unpins it when done.
TEST(PersistTier, OfferPinnedWritesFromTheSlotAndUnpinsIt) {
  TempDir dir;
  Store store(StoreOptions{.budget_bytes = 8 << 20,
                           .shm_prefix = "gemini-persist-test-" + std::to_string(getpid())});
  TestShard s = MakeShard("job", 5, 0, 1, 32 * 4096 + 9);
  auto grant = store.Begin(1, s.manifest, std::chrono::milliseconds(100));
  ASSERT_TRUE(grant.ok()) << grant.status().ToString();
  ::close(grant->fd);
  std::memcpy(grant->data, s.data.data(), s.data.size());
  ASSERT_TRUE(store.Commit(1, "job", 0, 5, s.crcs).ok());
  auto pin = store.Pin("job", 0, 5);
  ASSERT_TRUE(pin.ok()) << pin.status().ToString();
  const uint8_t* slot = (*pin)->data;

  FaultInjectionEnv faults(PersistEnv::Posix());
  AppendLogEnv env(&faults);
  PersistOptions o = Options(dir.path(), 5);
  o.piece_bytes = 4 * 4096;
  auto tier = *PersistentTier::Open(&env, o);
  faults.HoldWrites();
  EXPECT_EQ(*tier->OfferPinned("job", 0, 5, /*epoch=*/3, std::move(*pin)), OfferOutcome::kQueued);
  ASSERT_TRUE(faults.WaitUntilHeld(kWait));
  EXPECT_EQ(store.DropJob("job").code(), Code::kFailedPrecondition);  // Still pinned.
  faults.ReleaseWrites();
  ASSERT_TRUE(tier->Flush(kWait).ok());
  EXPECT_EQ(tier->Stats().written, 1u) << tier->Stats().last_error.ToString();
  uint64_t from_slot = 0;
  for (const auto& call : env.calls())
    if (call.p >= slot && call.p + call.n <= slot + s.data.size()) {
      EXPECT_LE(call.n, o.piece_bytes);
      from_slot += call.n;
    }
  EXPECT_EQ(from_slot, s.data.size());  // Every data byte straight from the slot.
  auto loaded = ReadShardFor(PersistEnv::Posix(), dir.path(), {"job", 0, At(5, 3), 1});
  ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
  EXPECT_EQ(loaded->data, s.data);
  EXPECT_TRUE(store.DropJob("job").ok());  // Unpinned.
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
  EXPECT_EQ(*tier->NewestComplete("job"), At(1));
  EXPECT_FALSE(Persisted(dir.path(), 2));
  EXPECT_EQ(offers.released(), 2);
}

TEST(PersistTier, InvalidOffersAreRejectedAndReleased) {
  TempDir dir;
  auto tier = *PersistentTier::Open(PersistEnv::Posix(), Options(dir.path(), 1));
  TestShard s = MakeShard("job", 5, 0, 1);
  int released = 0;
  auto release = [&] { ++released; };
  EXPECT_EQ(tier->Offer("job", 1, 5, 0, s.manifest, s.crcs, s.data.data(), release).status().code(),
            Code::kInvalidArgument);  // Manifest of another rank.
  EXPECT_EQ(tier->Offer("job", 0, 5, 0, s.manifest, {}, s.data.data(), release).status().code(),
            Code::kInvalidArgument);  // No CRCs.
  EXPECT_EQ(tier->Offer("job", 0, 5, 0, s.manifest, s.crcs, nullptr, release).status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(
      tier->Offer("job", 0, 5, -1, s.manifest, s.crcs, s.data.data(), release).status().code(),
      Code::kInvalidArgument);  // No timeline.
  EXPECT_EQ(released, 4);
  EXPECT_EQ(tier->Stats().rejected, 4u);
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
  EXPECT_TRUE(persist_test::Names(IterationDir(dir.path(), "job", At(1))).empty());
  EXPECT_EQ(offers.Offer(tier.get(), 2, 0).status().code(), Code::kFailedPrecondition);
  EXPECT_EQ(offers.released(), 3);
  tier->Stop();  // Idempotent.
}

}  // namespace
}  // namespace gemini
