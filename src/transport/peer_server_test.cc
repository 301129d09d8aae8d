// PeerServer: authenticated clients are served concurrently; hostile ones
// (random bytes, silence, wrong secret, oversized / truncated / unknown
// frames, handler errors) are dropped without disturbing them; the
// connection limit holds; Stop() returns promptly with connections open.
#include "transport/peer_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>
#include <vector>

#include "transport/frame.h"
#include "transport/tcp/dial.h"
#include "transport/testing.h"

namespace gemini::transport {
namespace {

using namespace std::chrono_literals;
using testing::In;
using testing::Soon;
using testing::TestSecret;

constexpr uint32_t kEcho = 7;
const FrameLimits kLimits = {{kEcho, 4096}};
const char* kJob = "job-x";

// Echoes frames until the peer closes; "bad" is a request error.
Status Echo(Connection& conn) {
  for (;;) {
    auto header = RecvFrameHeader(conn, kLimits, In(30s));
    if (!header.ok())
      return header.status().code() == Code::kUnavailable ? Status::Ok() : header.status();
    std::string payload(header->length, '\0');
    GEMINI_RETURN_IF_ERROR(RecvPayload(conn, *header, payload.data(), payload.size(), In(300ms)));
    if (payload == "bad") return InvalidArgument("bad request");
    GEMINI_RETURN_IF_ERROR(SendFrame(conn, kEcho, payload, In(1s)));
  }
}

class TransportPeerServer : public ::testing::Test {
 protected:
  void StartServer(size_t max_connections = 64) {
    auto listener = testing::LoopbackListener();
    ASSERT_TRUE(listener);
    port_ = listener->port();
    PeerServerOptions options;
    options.job = kJob;
    options.max_connections = max_connections;
    options.handshake_timeout = 300ms;
    server_ = std::make_unique<PeerServer>(std::move(listener), TestSecret(), options, Echo);
    ASSERT_TRUE(server_->Start().ok());
  }
  Result<std::unique_ptr<Connection>> Dial(const JobSecret& secret = TestSecret()) {
    return DialPeer("127.0.0.1", port_, secret, kJob, Soon());
  }
  std::unique_ptr<Connection> Raw() {
    auto c = TcpConnection::Connect("127.0.0.1", port_, Soon());
    EXPECT_TRUE(c.ok());
    return c.ok() ? std::move(c).value() : nullptr;
  }
  // True when the server closed `conn` (rather than our deadline firing).
  static bool Dropped(Connection& conn) {
    char c;
    return conn.RecvAll(&c, 1, Soon()).code() == Code::kUnavailable;
  }
  static Status RoundTrip(Connection& conn, const std::string& payload) {
    GEMINI_RETURN_IF_ERROR(SendFrame(conn, kEcho, payload, Soon()));
    GEMINI_ASSIGN_OR_RETURN(Frame f, RecvFrame(conn, kLimits, Soon()));
    return f.payload == payload ? Status::Ok() : DataLoss("echo differs");
  }

  uint16_t port_ = 0;
  std::unique_ptr<PeerServer> server_;
};

TEST_F(TransportPeerServer, ServesAuthenticatedClientsConcurrently) {
  StartServer();
  std::vector<std::future<Status>> clients;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::async(std::launch::async, [this, i] {
      GEMINI_ASSIGN_OR_RETURN(auto conn, Dial());
      for (int j = 0; j < 20; ++j)
        GEMINI_RETURN_IF_ERROR(RoundTrip(*conn, std::to_string(i) + "/" + std::to_string(j)));
      return Status::Ok();
    }));
  }
  for (auto& c : clients) EXPECT_TRUE(c.get().ok());
  EXPECT_EQ(server_->stats().authenticated, 4u);
}

TEST_F(TransportPeerServer, HostileClientsAreDroppedWhileAGoodClientKeepsWorking) {
  StartServer();
  std::atomic<bool> stop{false};
  auto good = std::async(std::launch::async, [&]() -> Result<int> {
    GEMINI_ASSIGN_OR_RETURN(auto conn, Dial());
    int n = 0;
    for (; !stop.load(); ++n) GEMINI_RETURN_IF_ERROR(RoundTrip(*conn, "ok " + std::to_string(n)));
    return n;
  });
  auto random_bytes = std::async(std::launch::async, [&] {
    auto c = Raw();
    std::string junk(4096, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>(i * 131 + 7);
    c->SendAll(junk.data(), junk.size(), Soon());
    return Dropped(*c);
  });
  auto silent = std::async(std::launch::async, [&] { return Dropped(*Raw()); });
  auto wrong_secret = std::async(std::launch::async, [&] {
    return Dial(TestSecret("not-the-job-secret-at-all")).status().code() == Code::kAborted;
  });
  auto hostile_frame = [&](std::string bytes) {
    return std::async(std::launch::async, [this, bytes] {
      auto conn = Dial();
      if (!conn.ok()) return false;
      (*conn)->SendAll(bytes.data(), bytes.size(), Soon());
      return Dropped(**conn);
    });
  };
  auto header = [](uint32_t type, uint64_t length) {
    uint32_t h[4] = {kFrameMagic, type, static_cast<uint32_t>(length),
                     static_cast<uint32_t>(length >> 32)};
    return std::string(reinterpret_cast<char*>(h), sizeof(h));
  };
  auto oversized = hostile_frame(header(kEcho, 1ull << 40));
  auto truncated = hostile_frame(header(kEcho, 1000) + std::string(10, 'x'));
  auto unknown_type = hostile_frame(header(12345, 1) + "x");
  auto bad_request = hostile_frame(header(kEcho, 3) + "bad");

  EXPECT_TRUE(random_bytes.get());
  EXPECT_TRUE(silent.get());
  EXPECT_TRUE(wrong_secret.get());
  EXPECT_TRUE(oversized.get());
  EXPECT_TRUE(truncated.get());
  EXPECT_TRUE(unknown_type.get());
  EXPECT_TRUE(bad_request.get());
  stop = true;
  auto rounds = good.get();
  ASSERT_TRUE(rounds.ok()) << rounds.status().ToString();
  EXPECT_GT(*rounds, 0);
  // The server counts a drop just after the client may have seen it.
  Deadline until = Soon();
  while (server_->stats().failed_handshake < 3 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  PeerServer::Stats st = server_->stats();
  EXPECT_EQ(st.failed_handshake, 3u);  // Random bytes, silence, wrong secret.
  EXPECT_EQ(st.authenticated, 5u);     // The good client and four hostile ones.
}

TEST_F(TransportPeerServer, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  StartServer(/*max_connections=*/2);
  auto a = Dial();
  auto b = Dial();
  ASSERT_TRUE(a.ok() && b.ok());
  // A client's handshake ends a moment before its server thread counts it as
  // served: wait for both, or the third may still be let in.
  Deadline served = Soon();
  while (server_->serving_connections() < 2 && std::chrono::steady_clock::now() < served)
    std::this_thread::sleep_for(1ms);
  EXPECT_EQ(Dial().status().code(), Code::kAborted);
  EXPECT_EQ(server_->stats().refused_over_limit, 1u);
  ASSERT_TRUE(RoundTrip(**a, "still served").ok());
  a->reset();  // Frees a place once its handler saw the close.
  Deadline until = Soon();
  while (server_->active_connections() > 1 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(10ms);
  auto c = Dial();
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(RoundTrip(**c, "new").ok());
}

TEST_F(TransportPeerServer, StopWithOpenConnectionsReturnsPromptly) {
  StartServer();
  auto a = Dial();
  auto b = Dial();
  ASSERT_TRUE(a.ok() && b.ok());
  auto half_open = Raw();  // Never says hello.
  std::this_thread::sleep_for(50ms);
  auto stopped = std::async(std::launch::async, [&] { server_->Stop(); });
  ASSERT_EQ(stopped.wait_for(10s), std::future_status::ready);  // Handlers waited 30 s.
  EXPECT_TRUE(Dropped(**a));
  EXPECT_TRUE(Dropped(**b));
  EXPECT_TRUE(Dropped(*half_open));
  EXPECT_FALSE(Dial().ok());
  server_->Stop();  // Idempotent.
}

TEST_F(TransportPeerServer, StartChecksItsArguments) {
  PeerServer no_job(testing::LoopbackListener(), TestSecret(), PeerServerOptions{}, Echo);
  EXPECT_EQ(no_job.Start().code(), Code::kInvalidArgument);
  StartServer();
  EXPECT_EQ(server_->Start().code(), Code::kFailedPrecondition);
}

}  // namespace
}  // namespace gemini::transport
