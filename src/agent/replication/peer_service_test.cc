// The client half of a fetch against the real peer service, and against a
// peer that sends bytes its CRCs do not cover: every chunk is checked as it
// arrives, and nothing unchecked is kept.
#include "agent/replication/peer_service.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>

#include "agent/replication/peer_protocol.h"
#include "agent/replication/replica_testing.h"
#include "common/wire.h"
#include "transport/testing.h"

namespace gemini {
namespace {

using namespace std::chrono_literals;
using replica_testing::MakeShard;
using replica_testing::TestStoreOptions;
using transport::testing::Soon;

TEST(PeerFetch, AShardFetchedFromTheServiceIsCheckedAndKept) {
  Store peer(TestStoreOptions("fetch-peer")), mine(TestStoreOptions("fetch-mine"));
  auto pin = MakeShard(peer, 1'000'003);
  auto pair = transport::testing::RawPair();
  PeerService service(&peer, "job", [](const std::string&, uint32_t) { return false; });
  auto server = std::async(std::launch::async, [&] { return service.Serve(*pair.server); });
  auto got = FetchInto(*pair.client, &mine, 9, "job", 3, -1, 5s);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, 1);
  auto kept = mine.Pin("job", 3, 1);
  ASSERT_TRUE(kept.ok());
  EXPECT_EQ(0, std::memcmp((*kept)->data, pin->data, pin->manifest.data_bytes));
  auto piece = FetchPiece(*pair.client, "job", 3, -1, 64 << 20, 5s);
  ASSERT_TRUE(piece.ok());
  EXPECT_EQ(0, std::memcmp(piece->data.data(), pin->data, pin->manifest.data_bytes));
  pair.client.reset();
  EXPECT_TRUE(server.get().ok());
}

// A peer that answers with the right header and a flipped byte in chunk 5.
Status ServeCorrupt(transport::Connection& conn, const ShardPin& pin) {
  GEMINI_RETURN_IF_ERROR(transport::RecvFrame(conn, PeerRequestLimits(), Soon()).status());
  GEMINI_RETURN_IF_ERROR(transport::SendFrame(
      conn, kPeerFetchReply,
      EncodeStatusReply(Status::Ok(), EncodeShardHeader(pin.manifest, pin.crcs)), Soon()));
  std::string data(reinterpret_cast<const char*>(pin.data), pin.manifest.data_bytes);
  data[5 * pin.manifest.chunk_size + 7] ^= 1;
  return transport::SendFrame(conn, kPeerData, data, Soon());
}

TEST(PeerFetch, BytesThatDoNotMatchTheirCrcsAreNeverKept) {
  Store peer(TestStoreOptions("fetch-peer2")), mine(TestStoreOptions("fetch-mine2"));
  auto pin = MakeShard(peer, 1'000'003);
  for (bool into_store : {true, false}) {
    auto pair = transport::testing::RawPair();
    auto server = std::async(std::launch::async, [&] { return ServeCorrupt(*pair.server, *pin); });
    Status st = into_store ? FetchInto(*pair.client, &mine, 9, "job", 3, -1, 5s).status()
                           : FetchPiece(*pair.client, "job", 3, -1, 64 << 20, 5s).status();
    EXPECT_EQ(st.code(), Code::kDataLoss) << st.ToString();
    EXPECT_NE(st.message().find("chunk 5"), std::string::npos) << st.ToString();
    pair.client.reset();
    (void)server.get();
  }
  EXPECT_FALSE(mine.Pin("job", 3, 1).ok());
}

}  // namespace
}  // namespace gemini
