#include "agent/replication/chunked_replica.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <random>

#include "agent/replication/peer_protocol.h"
#include "common/crc32c.h"
#include "common/wire.h"
#include "transport/frame.h"
#include "transport/testing.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;
using transport::testing::RawPair;
using transport::testing::Soon;

// A committed shard of `bytes` random bytes in `store` (as its owner would hold it).
std::unique_ptr<ShardPin> MakeShard(Store& store, uint64_t bytes, int64_t iteration = 1) {
  Manifest m;
  m.job = "job";
  m.rank = 3;
  m.world_size = 4;
  m.iteration = iteration;
  m.chunk_size = 64 << 10;
  m.entries.push_back({"t", Dtype::kUint8, {static_cast<int64_t>(bytes)}, 0, bytes, 0});
  m.AssignOffsets();
  auto g = store.Begin(1, m, 1s);
  EXPECT_TRUE(g.ok()) << g.status().ToString();
  close(g->fd);
  std::mt19937 rng(static_cast<uint32_t>(bytes + iteration));
  for (uint64_t i = 0; i < bytes; ++i) g->data[i] = static_cast<uint8_t>(rng());
  std::vector<uint32_t> crcs;
  for (uint64_t off = 0; off < bytes; off += m.chunk_size)
    crcs.push_back(Crc32c(g->data + off, std::min(m.chunk_size, bytes - off)));
  EXPECT_TRUE(store.Commit(1, "job", 3, iteration, crcs).ok());
  auto pin = store.Pin("job", 3, iteration);
  EXPECT_TRUE(pin.ok());
  return std::move(*pin);
}

StoreOptions Opts(const std::string& name) {
  return StoreOptions{.budget_bytes = 64 << 20,
                      .shm_prefix = "gemini-chunked-" + name + "-" + std::to_string(getpid())};
}

// Serves one chunked replica request on `conn` into `store`.
Status ServeOne(transport::Connection& conn, Store* store) {
  auto frame = transport::RecvFrame(conn, PeerRequestLimits(), Soon());
  if (!frame.ok()) return frame.status();
  if (frame->type != kPeerReplicateChunked && frame->type != kPeerReplicateStreamed)
    return InvalidArgument("not a chunked replica");
  Status st = ReceiveChunkedReplica(
      conn, store, 7, "job", frame->payload, [](const std::string&, uint32_t) { return false; },
      Soon(), frame->type == kPeerReplicateStreamed);
  Status sent = transport::SendFrame(conn, kPeerReplicateAck, EncodeStatusReply(st), Soon());
  return st.ok() ? sent : st;
}

class ChunkedReplicaTest : public ::testing::TestWithParam<uint32_t> {};

TEST_P(ChunkedReplicaTest, ReplicaIsBitIdenticalForAnyWindow) {
  Store owner(Opts("owner")), holder(Opts("holder"));
  auto pin = MakeShard(owner, 1'000'003);
  auto pair = RawPair();
  auto server = std::async(std::launch::async, [&] { return ServeOne(*pair.server, &holder); });
  auto sender = ChunkedSender::Start(*pair.client, *pin, 100'000, GetParam(), Soon());
  ASSERT_TRUE(sender.ok()) << sender.status().ToString();
  for (uint64_t off = 0; off < pin->manifest.data_bytes;) {
    uint64_t len = std::min<uint64_t>(off == 0 ? 5'000 : 100'000, pin->manifest.data_bytes - off);
    ASSERT_TRUE((*sender)->Send(off, len, Soon()).ok());
    off += len;
  }
  ASSERT_TRUE((*sender)->Finish(Soon()).ok());
  ASSERT_TRUE(server.get().ok());
  ASSERT_FALSE((*sender)->samples().empty());  // At least the whole stream: one burst.
  uint64_t burst_bytes = 0;
  for (const auto& s : (*sender)->samples()) burst_bytes += s.bytes;
  EXPECT_EQ(burst_bytes, pin->manifest.data_bytes);
  auto got = holder.Pin("job", 3, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->crcs, pin->crcs);
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, pin->manifest.data_bytes));
}

INSTANTIATE_TEST_SUITE_P(Windows, ChunkedReplicaTest, ::testing::Values(1u, 2u, 4u));

// Makes a copy of a shard's bytes as they are asked for (a fragment encoded
// as it is sent); `corrupt_crc` forges the CRC of that chunk.
class CopyMaker : public PieceMaker {
 public:
  CopyMaker(const ShardPin& from, int corrupt_crc = -1)
      : from_(from), out_(from.manifest.data_bytes, 0), corrupt_(corrupt_crc) {}
  Status MakeUpTo(uint64_t end) override {
    if (end < made_) return Internal("asked for less than before");
    std::memcpy(out_.data() + made_, from_.data + made_, end - made_);
    made_ = end;
    return Status::Ok();
  }
  std::vector<uint32_t> Crcs() const override {
    std::vector<uint32_t> crcs;
    const uint64_t cs = from_.manifest.chunk_size;
    for (uint64_t off = 0; off < made_; off += cs)
      crcs.push_back(Crc32c(out_.data() + off, std::min(cs, made_ - off)));
    if (corrupt_ >= 0) crcs.at(corrupt_) ^= 1;
    return crcs;
  }
  std::unique_ptr<ShardPin> Pin() const {
    return std::make_unique<ShardPin>(from_.manifest, std::vector<uint32_t>{}, out_.data(), [] {});
  }
  uint64_t made() const { return made_; }

 private:
  const ShardPin& from_;
  std::vector<uint8_t> out_;
  uint64_t made_ = 0;
  int corrupt_;
};

// A streamed replica: bytes are made only as their chunk goes; the holder
// checks the trailing CRCs against its own and commits them.
TEST(ChunkedReplica, StreamedReplicaIsMadeAsItGoes) {
  Store owner(Opts("owner5")), holder(Opts("holder5"));
  auto pin = MakeShard(owner, 1'000'003);
  CopyMaker maker(*pin);
  auto made = maker.Pin();
  auto pair = RawPair();
  auto server = std::async(std::launch::async, [&] { return ServeOne(*pair.server, &holder); });
  auto sender = ChunkedSender::Start(*pair.client, *made, 100'000, 2, Soon(), &maker);
  ASSERT_TRUE(sender.ok()) << sender.status().ToString();
  for (uint64_t off = 0; off < pin->manifest.data_bytes; off += 100'000) {
    ASSERT_EQ(maker.made(), off);  // Nothing is made before it is due.
    ASSERT_TRUE((*sender)
                    ->Send(off, std::min<uint64_t>(100'000, pin->manifest.data_bytes - off), Soon())
                    .ok());
  }
  ASSERT_TRUE((*sender)->Finish(Soon()).ok());
  ASSERT_TRUE(server.get().ok());
  auto got = holder.Pin("job", 3, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->crcs, pin->crcs);
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, pin->manifest.data_bytes));
}

// A trailing CRC that does not match the bytes the holder received: nothing
// is committed.
TEST(ChunkedReplica, StreamedReplicaWithAWrongTrailerCommitsNothing) {
  Store owner(Opts("owner6")), holder(Opts("holder6"));
  auto pin = MakeShard(owner, 300'000);
  CopyMaker maker(*pin, 2);
  auto made = maker.Pin();
  auto pair = RawPair();
  auto server = std::async(std::launch::async, [&] { return ServeOne(*pair.server, &holder); });
  auto sender = ChunkedSender::Start(*pair.client, *made, 100'000, 2, Soon(), &maker);
  ASSERT_TRUE(sender.ok());
  for (uint64_t off = 0; off < 300'000; off += 100'000)
    ASSERT_TRUE((*sender)->Send(off, 100'000, Soon()).ok());
  EXPECT_EQ((*sender)->Finish(Soon()).code(), Code::kDataLoss);
  EXPECT_EQ(server.get().code(), Code::kDataLoss);
  EXPECT_FALSE(holder.Pin("job", 3, 1).ok());
  // A streamed header that carries CRCs is refused.
  Manifest m;
  std::vector<uint32_t> crcs;
  EXPECT_EQ(DecodeShardHeader(EncodeShardHeader(pin->manifest, pin->crcs), &m, &crcs, true).code(),
            Code::kInvalidArgument);
}

TEST(ChunkedReplica, DrainGivesCleanSamples) {
  Store owner(Opts("owner2")), holder(Opts("holder2"));
  auto pin = MakeShard(owner, 400'000);
  auto pair = RawPair();
  auto server = std::async(std::launch::async, [&] { return ServeOne(*pair.server, &holder); });
  auto sender = ChunkedSender::Start(*pair.client, *pin, 100'000, 4, Soon());
  ASSERT_TRUE(sender.ok());
  for (uint64_t off = 0; off < 400'000; off += 100'000) {
    ASSERT_TRUE((*sender)->Send(off, 100'000, Soon()).ok());
    ASSERT_TRUE((*sender)->Drain(Soon()).ok());  // A span ends: wait for the chunk.
  }
  ASSERT_TRUE((*sender)->Finish(Soon()).ok());
  ASSERT_TRUE(server.get().ok());
  EXPECT_EQ((*sender)->samples().size(), 4u);
  for (const auto& s : (*sender)->samples()) EXPECT_EQ(s.bytes, 100'000u);
}

TEST(ChunkedReplica, SenderRefusesChunksThatDoNotContinue) {
  Store owner(Opts("owner3"));
  auto pin = MakeShard(owner, 10'000);
  auto pair = RawPair();
  auto sender = ChunkedSender::Start(*pair.client, *pin, 4096, 2, Soon());
  ASSERT_TRUE(sender.ok());
  EXPECT_EQ((*sender)->Send(100, 10, Soon()).code(), Code::kInvalidArgument);
  EXPECT_EQ((*sender)->Send(0, 5000, Soon()).code(), Code::kInvalidArgument);  // Over R/p.
  EXPECT_EQ((*sender)->Finish(Soon()).code(), Code::kFailedPrecondition);
  EXPECT_EQ(ChunkedSender::Start(*pair.client, *pin, 0, 2, Soon()).status().code(),
            Code::kInvalidArgument);
}

// A hostile sender: a raw header, then whatever chunks it likes.
Status HostileSend(const ShardPin& pin, uint64_t max_chunk, uint32_t window,
                   const std::vector<std::pair<uint64_t, uint64_t>>& chunks,
                   const std::vector<uint8_t>& data, Store* holder, Status* sender_saw) {
  auto pair = RawPair();
  auto server = std::async(std::launch::async, [&] { return ServeOne(*pair.server, holder); });
  Writer w;
  w.PutString(EncodeShardHeader(pin.manifest, pin.crcs));
  w.PutU64(max_chunk);
  w.PutU32(window);
  *sender_saw = transport::SendFrame(*pair.client, kPeerReplicateChunked, w.Take(), Soon());
  for (auto [off, len] : chunks) {
    transport::ConstBuffer parts[2] = {{&off, 8}, {data.data() + off, len}};
    Status st = transport::SendFrameParts(*pair.client, kPeerChunk, parts, Soon());
    if (!st.ok()) break;
  }
  Status st = server.get();
  pair.client.reset();
  return st;
}

TEST(ChunkedReplica, HolderRejectsBadStreamsAndCommitsNothing) {
  Store owner(Opts("owner4")), holder(Opts("holder4"));
  auto pin = MakeShard(owner, 300'000);
  std::vector<uint8_t> data(pin->data, pin->data + pin->manifest.data_bytes);
  Status ignored;
  // Out of order.
  EXPECT_EQ(
      HostileSend(*pin, 100'000, 2, {{0, 100'000}, {200'000, 100'000}}, data, &holder, &ignored)
          .code(),
      Code::kInvalidArgument);
  // Corrupted bytes: every CRC is checked before commit.
  std::vector<uint8_t> bad = data;
  bad[150'000] ^= 1;
  EXPECT_EQ(HostileSend(*pin, 100'000, 2, {{0, 100'000}, {100'000, 100'000}, {200'000, 100'000}},
                        bad, &holder, &ignored)
                .code(),
            Code::kDataLoss);
  EXPECT_FALSE(holder.Pin("job", 3, 1).ok());
  // Oversized window.
  EXPECT_EQ(HostileSend(*pin, 256ull << 20, 8, {}, data, &holder, &ignored).code(),
            Code::kInvalidArgument);
  // A chunk over R/p.
  EXPECT_EQ(HostileSend(*pin, 1000, 2, {{0, 100'000}}, data, &holder, &ignored).code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(holder.Pin("job", 3, 1).ok());
}

}  // namespace
}  // namespace gemini
