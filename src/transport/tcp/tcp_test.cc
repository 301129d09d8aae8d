// TCP backend: listener, connect, raw sends / receives, deadlines, sticky
// errors, shutdown from another thread.
#include <gtest/gtest.h>

#include <cstring>
#include <future>
#include <thread>
#include <vector>

#include "transport/testing.h"

namespace gemini::transport {
namespace {

using namespace std::chrono_literals;
using testing::In;
using testing::RawPair;
using testing::Soon;

std::vector<char> Pattern(size_t n, uint32_t seed) {
  std::vector<char> v(n);
  uint32_t x = seed;
  for (auto& c : v) c = static_cast<char>((x = x * 1664525u + 1013904223u) >> 24);
  return v;
}

TEST(TransportTcp, ListenReportsEphemeralPort) {
  auto l = TcpListener::Listen("127.0.0.1", 0);
  ASSERT_TRUE(l.ok()) << l.status().ToString();
  EXPECT_NE((*l)->port(), 0);
  EXPECT_EQ((*l)->address(), "127.0.0.1:" + std::to_string((*l)->port()));
}

TEST(TransportTcp, GatheredSendArrivesAsOneStream) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  std::vector<char> data = Pattern(8u << 20, 1);
  auto sender = std::async(std::launch::async, [&] {
    size_t a = 10, b = data.size() / 2;
    ConstBuffer parts[3] = {
        {data.data(), a}, {data.data() + a, b - a}, {data.data() + b, data.size() - b}};
    return p.client->SendParts(parts, Soon());
  });
  std::vector<char> got(data.size());
  ASSERT_TRUE(p.server->RecvAll(got.data(), 3, Soon()).ok());
  Status s = p.server->RecvAll(got.data() + 3, got.size() - 3, Soon());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(sender.get().ok());
  EXPECT_TRUE(got == data);
}

TEST(TransportTcp, RecvOnIdlePeerHitsDeadlineAndStaysFailed) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  char buf[16];
  EXPECT_EQ(p.server->RecvAll(buf, sizeof(buf), In(100ms)).code(), Code::kDeadlineExceeded);
  // Sticky: every later call returns the first error.
  EXPECT_EQ(p.server->status().code(), Code::kDeadlineExceeded);
  EXPECT_EQ(p.server->SendAll("x", 1, Soon()).code(), Code::kDeadlineExceeded);
  EXPECT_EQ(p.server->RecvAll(buf, 1, Soon()).code(), Code::kDeadlineExceeded);
  // The peer sees the connection go away.
  EXPECT_EQ(p.client->RecvAll(buf, 1, Soon()).code(), Code::kUnavailable);
}

TEST(TransportTcp, ShutdownFromAnotherThreadUnblocksRecv) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  auto reader = std::async(std::launch::async, [&] {
    char buf[1];
    return p.server->RecvAll(buf, 1, In(30s));
  });
  std::this_thread::sleep_for(50ms);
  p.server->Shutdown();
  EXPECT_EQ(reader.get().code(), Code::kAborted);
}

TEST(TransportTcp, ShutdownUnblocksSendIntoFullWindow) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  std::vector<char> big(256u << 20);  // Far more than the socket buffers; nobody reads.
  auto writer = std::async(std::launch::async,
                           [&] { return p.client->SendAll(big.data(), big.size(), In(30s)); });
  std::this_thread::sleep_for(100ms);
  p.client->Shutdown();
  EXPECT_EQ(writer.get().code(), Code::kAborted);
}

TEST(TransportTcp, PeerCloseIsUnavailable) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  p.server.reset();
  char buf[1];
  EXPECT_EQ(p.client->RecvAll(buf, 1, Soon()).code(), Code::kUnavailable);
}

TEST(TransportTcp, SendToClosedPeerFails) {
  auto p = RawPair();
  ASSERT_TRUE(p.client && p.server);
  p.server.reset();
  std::vector<char> data(16u << 20);
  Status s = p.client->SendAll(data.data(), data.size(), Soon());
  EXPECT_EQ(s.code(), Code::kUnavailable) << s.ToString();
}

TEST(TransportTcp, AcceptHitsDeadline) {
  auto l = testing::LoopbackListener();
  EXPECT_EQ(l->Accept(In(50ms)).status().code(), Code::kDeadlineExceeded);
}

TEST(TransportTcp, CloseUnblocksAcceptAndRefusesNewConnections) {
  auto l = testing::LoopbackListener();
  auto acceptor = std::async(std::launch::async, [&] { return l->Accept(In(30s)).status(); });
  std::this_thread::sleep_for(50ms);
  l->Close();
  EXPECT_EQ(acceptor.get().code(), Code::kAborted);
  auto c = TcpConnection::Connect("127.0.0.1", l->port(), In(1s));
  EXPECT_FALSE(c.ok());
}

TEST(TransportTcp, ConnectRefusedIsUnavailable) {
  uint16_t port = testing::LoopbackListener()->port();  // Closed again at once.
  auto c = TcpConnection::Connect("127.0.0.1", port, Soon());
  EXPECT_EQ(c.status().code(), Code::kUnavailable) << c.status().ToString();
}

TEST(TransportTcp, MissingHostOrPortIsInvalidArgument) {
  EXPECT_EQ(TcpConnection::Connect("", 80, Soon()).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(TcpConnection::Connect("127.0.0.1", 0, Soon()).status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace gemini::transport
