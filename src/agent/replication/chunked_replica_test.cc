#include "agent/replication/chunked_replica.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <future>
#include <random>

#include "agent/replication/peer_protocol.h"
#include "agent/replication/replica_testing.h"
#include "common/crc32c.h"
#include "common/wire.h"
#include "transport/frame.h"
#include "transport/testing.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;
using transport::testing::RawPair;
using transport::testing::Soon;

StoreOptions Opts(const std::string& name) {
  return gemini::replica_testing::TestStoreOptions(name);
}
using gemini::replica_testing::MakeShard;

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

// A streamed header carries no CRCs (they follow the data): one that does
// is refused. (Streamed replicas themselves: channel_test.cc.)
TEST(ChunkedReplica, AStreamedHeaderWithCrcsIsRefused) {
  Store owner(Opts("owner6"));
  auto pin = MakeShard(owner, 300'000);
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
