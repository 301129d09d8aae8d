// Frames: round trips (small and a 64 MiB payload into a caller buffer) and
// every protocol error a hostile peer can cause.
#include "transport/frame.h"

#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <memory>
#include <vector>

#include "transport/testing.h"

namespace gemini::transport {
namespace {

using namespace std::chrono_literals;
using testing::In;
using testing::RawPair;
using testing::Soon;

constexpr uint32_t kControl = 1;
constexpr uint32_t kData = 2;
const FrameLimits kLimits = {{kControl, 1024}, {kData, 64u << 20}};

// A frame header as raw bytes, for peers that misbehave.
std::string RawHeader(uint32_t magic, uint32_t type, uint64_t length) {
  std::string h(16, '\0');
  std::memcpy(h.data(), &magic, 4);
  std::memcpy(h.data() + 4, &type, 4);
  std::memcpy(h.data() + 8, &length, 8);
  return h;
}

// The server's status after receiving one frame that `client_bytes` start.
Status RecvAfter(const std::string& client_bytes, bool close_after) {
  auto p = RawPair();
  if (!p.client) return Internal("no pair");
  EXPECT_TRUE(p.client->SendAll(client_bytes.data(), client_bytes.size(), Soon()).ok());
  if (close_after) p.client.reset();
  return p.server->status().ok() ? RecvFrame(*p.server, kLimits, In(200ms)).status()
                                 : p.server->status();
}

TEST(TransportFrame, SmallFramesRoundTrip) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  ASSERT_TRUE(SendFrame(*p.client, kControl, "hello", Soon()).ok());
  ASSERT_TRUE(SendFrame(*p.client, kControl, "", Soon()).ok());
  ASSERT_TRUE(SendFrame(*p.client, kData, std::string(1000, 'x'), Soon()).ok());
  auto a = RecvFrame(*p.server, kLimits, Soon());
  auto b = RecvFrame(*p.server, kLimits, Soon());
  auto c = RecvFrame(*p.server, kLimits, Soon());
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(a->type, kControl);
  EXPECT_EQ(a->payload, "hello");
  EXPECT_EQ(b->payload, "");
  EXPECT_EQ(c->type, kData);
  EXPECT_EQ(c->payload, std::string(1000, 'x'));
}

TEST(TransportFrame, LargePayloadStreamsIntoCallerBuffer) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  const size_t n = 64u << 20;
  std::vector<uint64_t> src(n / 8);
  for (size_t i = 0; i < src.size(); ++i) src[i] = i * 0x9E3779B97F4A7C15ull;
  auto sender = std::async(std::launch::async, [&] {
    Status s = SendFrame(*p.client, kData, src.data(), n, Soon());
    return s.ok() ? SendFrame(*p.client, kControl, "done", Soon()) : s;
  });
  auto header = RecvFrameHeader(*p.server, kLimits, Soon());
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  ASSERT_EQ(header->type, kData);
  ASSERT_EQ(header->length, n);
  std::unique_ptr<uint64_t[]> dst(new uint64_t[n / 8]);  // Stands in for a shm slot.
  Status s = RecvPayload(*p.server, *header, dst.get(), n, Soon());
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(std::memcmp(dst.get(), src.data(), n), 0);
  auto tail = RecvFrame(*p.server, kLimits, Soon());
  ASSERT_TRUE(tail.ok());
  EXPECT_EQ(tail->payload, "done");
  EXPECT_TRUE(sender.get().ok());
}

TEST(TransportFrame, UnknownTypeIsProtocolErrorAndFailsConnection) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  ASSERT_TRUE(SendFrame(*p.client, 99, "x", Soon()).ok());
  EXPECT_EQ(RecvFrame(*p.server, kLimits, Soon()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(p.server->status().code(), Code::kInvalidArgument);
  char c;
  EXPECT_EQ(p.client->RecvAll(&c, 1, Soon()).code(), Code::kUnavailable);  // Dropped.
}

TEST(TransportFrame, OverLimitLengthIsRejectedBeforeAnyPayload) {
  EXPECT_EQ(RecvAfter(RawHeader(kFrameMagic, kControl, 1025), false).code(),
            Code::kInvalidArgument);
  EXPECT_EQ(RecvAfter(RawHeader(kFrameMagic, kData, ~0ull), false).code(), Code::kInvalidArgument);
}

TEST(TransportFrame, BadMagicIsProtocolError) {
  EXPECT_EQ(RecvAfter(RawHeader(0xdeadbeef, kControl, 1), false).code(), Code::kInvalidArgument);
}

TEST(TransportFrame, TruncatedFrameFails) {
  std::string frame = RawHeader(kFrameMagic, kControl, 100) + std::string(10, 'x');
  EXPECT_EQ(RecvAfter(frame, /*close_after=*/true).code(), Code::kUnavailable);
  EXPECT_EQ(RecvAfter(frame, /*close_after=*/false).code(), Code::kDeadlineExceeded);
  EXPECT_EQ(RecvAfter(frame.substr(0, 7), false).code(), Code::kDeadlineExceeded);
}

TEST(TransportFrame, PayloadLargerThanCallerBufferIsRejected) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  ASSERT_TRUE(SendFrame(*p.client, kData, std::string(100, 'x'), Soon()).ok());
  auto header = RecvFrameHeader(*p.server, kLimits, Soon());
  ASSERT_TRUE(header.ok());
  char buf[50];
  EXPECT_EQ(RecvPayload(*p.server, *header, buf, sizeof(buf), Soon()).code(),
            Code::kInvalidArgument);
  EXPECT_FALSE(p.server->status().ok());
}

TEST(TransportFrame, CleanCloseBeforeFrameIsUnavailable) {
  EXPECT_EQ(RecvAfter("", /*close_after=*/true).code(), Code::kUnavailable);
}

}  // namespace
}  // namespace gemini::transport
