// One suite over every channel (channel.h): the TCP channel against the real
// peer service, and the fake. Each carries whole and streamed pieces
// bit-identical into the holder's store, commits nothing whose CRC32C does
// not match, and refuses chunks that do not continue the piece.
#include "agent/replication/channel.h"

#include <gtest/gtest.h>

#include <future>

#include "agent/replication/fake_channel.h"
#include "agent/replication/peer_service.h"
#include "agent/replication/replica_testing.h"
#include "agent/replication/tcp_channel.h"
#include "transport/testing.h"

namespace gemini {
namespace {

using replica_testing::CopyMaker;
using replica_testing::MakeShard;
using replica_testing::TestStoreOptions;
using transport::testing::Soon;

// A channel under test into `holder`, and whatever serves its other end.
class Subject {
 public:
  virtual ~Subject() = default;
  virtual Channel& channel() = 0;
  // Makes the next piece arrive with one byte flipped (a bad link or memory).
  virtual void CorruptNext(Store& owner, const ShardPin& pin) = 0;
};

class TcpSubject : public Subject {
 public:
  explicit TcpSubject(Store* holder)
      : pair_(transport::testing::RawPair()),
        service_(holder, "job", [](const std::string&, uint32_t) { return false; }),
        server_(std::async(std::launch::async, [this] { return service_.Serve(*pair_.server); })),
        channel_(std::make_unique<TcpChannel>(std::move(pair_.client))) {}
  ~TcpSubject() override {
    channel_.reset();  // Closes the client end: the service returns.
    (void)server_.get();
  }
  Channel& channel() override { return *channel_; }
  void CorruptNext(Store&, const ShardPin& pin) override {
    // Bytes that differ from what the committed CRCs cover, as a bad link delivers.
    const_cast<uint8_t*>(pin.data)[10] ^= 1;
  }

 private:
  transport::testing::Pair pair_;
  PeerService service_;
  std::future<Status> server_;
  std::unique_ptr<TcpChannel> channel_;
};

class FakeSubject : public Subject {
 public:
  explicit FakeSubject(Store* holder) : channel_(holder) {}
  Channel& channel() override { return channel_; }
  void CorruptNext(Store&, const ShardPin&) override { channel_.CorruptNext(); }

 private:
  FakeChannel channel_;
};

using Factory = std::unique_ptr<Subject> (*)(Store*);

class ChannelTest : public ::testing::TestWithParam<Factory> {
 protected:
  Store owner_{TestStoreOptions("chan-owner")}, holder_{TestStoreOptions("chan-holder")};
  std::unique_ptr<Subject> subject_ = GetParam()(&holder_);
};

TEST_P(ChannelTest, AWholePieceArrivesCommitted) {
  auto pin = MakeShard(owner_, 1'000'003);
  ASSERT_TRUE(SendWhole(subject_->channel(), *pin, 100'000, 2, Soon()).ok());
  auto got = holder_.Pin("job", 3, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->crcs, pin->crcs);
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, pin->manifest.data_bytes));
}

// A streamed piece: bytes are made only as their chunk goes; the holder
// checks the sender's CRCs against the bytes it got and commits them.
TEST_P(ChannelTest, AStreamedPieceIsMadeAsItGoes) {
  auto pin = MakeShard(owner_, 1'000'003);
  CopyMaker maker(*pin);
  auto made = maker.Pin();
  auto stream = subject_->channel().Open(*made, &maker, 100'000, 2, Soon());
  ASSERT_TRUE(stream.ok()) << stream.status().ToString();
  const uint64_t n = pin->manifest.data_bytes;
  for (uint64_t off = 0; off < n; off += 100'000) {
    ASSERT_EQ(maker.made(), off);  // Nothing is made before it is due.
    ASSERT_TRUE((*stream)->Send(off, std::min<uint64_t>(100'000, n - off), Soon()).ok());
  }
  ASSERT_TRUE((*stream)->Finish(Soon()).ok());
  EXPECT_FALSE((*stream)->samples().empty());
  auto got = holder_.Pin("job", 3, 1);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)->crcs, pin->crcs);
  EXPECT_EQ(0, std::memcmp((*got)->data, pin->data, n));
}

TEST_P(ChannelTest, APieceThatDoesNotMatchItsCrcsIsNotCommitted) {
  auto pin = MakeShard(owner_, 300'000);
  // Streamed, with a forged trailing CRC.
  CopyMaker forged(*pin, 2);
  auto made = forged.Pin();
  auto stream = subject_->channel().Open(*made, &forged, 100'000, 2, Soon());
  ASSERT_TRUE(stream.ok());
  for (uint64_t off = 0; off < 300'000; off += 100'000)
    ASSERT_TRUE((*stream)->Send(off, 100'000, Soon()).ok());
  EXPECT_EQ((*stream)->Finish(Soon()).code(), Code::kDataLoss);
  stream->reset();
  EXPECT_FALSE(holder_.Pin("job", 3, 1).ok());
}

TEST_P(ChannelTest, CorruptedBytesAreNotCommitted) {
  auto pin = MakeShard(owner_, 300'000);
  subject_->CorruptNext(owner_, *pin);
  EXPECT_EQ(SendWhole(subject_->channel(), *pin, 100'000, 2, Soon()).code(), Code::kDataLoss);
  EXPECT_FALSE(holder_.Pin("job", 3, 1).ok());
}

TEST_P(ChannelTest, ChunksMustContinueThePiece) {
  auto pin = MakeShard(owner_, 10'000);
  EXPECT_EQ(subject_->channel().Open(*pin, nullptr, 0, 2, Soon()).status().code(),
            Code::kInvalidArgument);
  auto stream = subject_->channel().Open(*pin, nullptr, 4096, 2, Soon());
  ASSERT_TRUE(stream.ok());
  EXPECT_EQ((*stream)->Send(100, 10, Soon()).code(), Code::kInvalidArgument);
  EXPECT_EQ((*stream)->Send(0, 5000, Soon()).code(), Code::kInvalidArgument);  // Over max_chunk.
  EXPECT_EQ((*stream)->Finish(Soon()).code(), Code::kFailedPrecondition);
}

INSTANTIATE_TEST_SUITE_P(Channels, ChannelTest,
                         ::testing::Values(
                             +[](Store* holder) -> std::unique_ptr<Subject> {
                               return std::make_unique<TcpSubject>(holder);
                             },
                             +[](Store* holder) -> std::unique_ptr<Subject> {
                               return std::make_unique<FakeSubject>(holder);
                             }),
                         [](const auto& info) {
                           return info.index == 0 ? std::string("Tcp") : "Fake";
                         });

}  // namespace
}  // namespace gemini
