// One replicator over any channel: the replicator in-process with fake
// channels into the holders' stores (fake etcd). Whole copies and streamed
// fragments arrive; a piece the holder refuses is sent again, whole, on a
// freshly dialed channel. (Over TCP between agents: replication_test.cc.)
#include "agent/replication/replicator.h"

#include <gtest/gtest.h>

#include <atomic>

#include "agent/replication/fake_channel.h"
#include "agent/replication/replica_testing.h"
#include "coord/fake_kv_store.h"
#include "coord/prefix_kv_store.h"

namespace gemini {
namespace {

using replica_testing::MakeShard;
using replica_testing::TestStoreOptions;

class ReplicatorTest : public ::testing::Test {
 protected:
  // `hosts` hosts registered; host 0 replicates under `redundancy`.
  void Start(uint32_t hosts, Redundancy redundancy) {
    for (uint32_t h = 0; h < hosts; ++h) {
      stores_.push_back(std::make_unique<Store>(TestStoreOptions("rt" + std::to_string(h))));
      coords_.push_back(
          std::make_unique<JobCoordinator>(kv_, HostInfo{h, "h" + std::to_string(h), 1, {}}, 5));
      ASSERT_TRUE(coords_.back()->Register().ok());
    }
    InterleaveOptions io;
    io.mode = InterleaveMode::kNaive;
    io.buffer_bytes = 1 << 20;
    auto il = Interleaver::Create(io);
    ASSERT_TRUE(il.ok());
    interleaver_ = std::move(*il);
    ReplicatorOptions o{"job", 0, hosts, redundancy};
    o.on_replicated = [this](uint32_t, int64_t, int64_t iteration) { replicated_ = iteration; };
    replicator_ = std::make_unique<Replicator>(
        stores_[0].get(), coords_[0].get(),
        [this](const HostInfo& h) -> Result<std::unique_ptr<Channel>> {
          ++dials_;
          auto channel = std::make_unique<FakeChannel>(stores_.at(h.host).get(), 7);
          if (corrupt_first_.exchange(false)) channel->CorruptNext();
          return std::unique_ptr<Channel>(std::move(channel));
        },
        interleaver_.get(), o);
  }
  void TearDown() override {
    if (replicator_) replicator_->Stop();
  }

  std::shared_ptr<KvStore> kv_ =
      std::make_shared<PrefixKvStore>(std::make_shared<FakeKvStore>(), "/gemini/job/");
  std::vector<std::unique_ptr<Store>> stores_;
  std::vector<std::unique_ptr<JobCoordinator>> coords_;
  std::unique_ptr<Interleaver> interleaver_;
  std::unique_ptr<Replicator> replicator_;
  std::atomic<int64_t> replicated_{-1};
  std::atomic<int> dials_{0};
  std::atomic<bool> corrupt_first_{false};
};

TEST_F(ReplicatorTest, AWholeCopyReachesItsHolder) {
  Start(2, Redundancy::Copies(2));
  auto pin = MakeShard(*stores_[0], 3'000'001);
  replicator_->OnCommit(3, 1);
  replicator_->Drain();
  EXPECT_EQ(replicated_, 1);
  auto got = stores_[1]->Pin("job", 3, 1);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ((*got)->crcs, pin->crcs);
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, pin->manifest.data_bytes));
}

TEST_F(ReplicatorTest, StreamedFragmentsRebuildTheShard) {
  Start(3, Redundancy::ReedSolomon(2, 1));
  auto pin = MakeShard(*stores_[0], 3'000'001);
  replicator_->OnCommit(3, 1);
  replicator_->Drain();
  EXPECT_EQ(replicated_, 1);
  std::vector<FetchedPiece> pieces;
  for (int h : {1, 2}) {  // Host 0's group is {0, 1, 2}: hosts 1 and 2 keep fragments 1, 2.
    auto got = stores_[h]->Pin("job", 3, 1);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ((*got)->manifest.fragment.index, h);
    pieces.push_back({(*got)->manifest, (*got)->crcs, {}});
    pieces.back().data.assign((*got)->data, (*got)->data + (*got)->manifest.data_bytes);
  }
  auto shards = GroupPieces(pieces);
  ASSERT_EQ(shards.size(), 1u);
  std::vector<uint8_t> rebuilt(pin->manifest.data_bytes);
  ASSERT_TRUE(RebuildShard(shards[0], rebuilt.data()).ok());
  EXPECT_EQ(0, std::memcmp(rebuilt.data(), pin->data, rebuilt.size()));
}

TEST_F(ReplicatorTest, ARefusedPieceIsSentAgainOnAFreshChannel) {
  Start(2, Redundancy::Copies(2));
  corrupt_first_ = true;  // The first channel delivers a flipped byte: DataLoss.
  auto pin = MakeShard(*stores_[0], 1'000'003);
  replicator_->OnCommit(3, 1);
  replicator_->Drain();
  EXPECT_EQ(replicated_, 1);
  EXPECT_EQ(dials_, 2);
  auto got = stores_[1]->Pin("job", 3, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, pin->manifest.data_bytes));
}

}  // namespace
}  // namespace gemini
