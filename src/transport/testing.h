// Test helpers for the transport suites (header-only, used by *_test.cc):
// a loopback listener, a connected pair of raw TCP connections, an
// authenticated pair, and a fixed test secret. Not for production code.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <utility>

#include "transport/connection.h"
#include "transport/handshake.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_listener.h"

namespace gemini::transport::testing {

inline Deadline In(std::chrono::milliseconds ms) { return std::chrono::steady_clock::now() + ms; }
inline Deadline Soon() { return In(std::chrono::milliseconds(5000)); }

inline JobSecret TestSecret(const std::string& bytes = "0123456789abcdef-test-secret-1") {
  return std::move(JobSecret::FromBytes(bytes)).value();
}

inline std::unique_ptr<TcpListener> LoopbackListener() {
  auto l = TcpListener::Listen("127.0.0.1", 0);
  EXPECT_TRUE(l.ok()) << l.status().ToString();
  return l.ok() ? std::move(l).value() : nullptr;
}

struct Pair {
  std::unique_ptr<Connection> client;
  std::unique_ptr<Connection> server;
};

// A connected client/server pair over loopback, not authenticated.
inline Pair RawPair() {
  auto listener = LoopbackListener();
  auto client = TcpConnection::Connect("127.0.0.1", listener->port(), Soon());
  auto server = listener->Accept(Soon());
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_TRUE(server.ok()) << server.status().ToString();
  if (!client.ok() || !server.ok()) return {};
  return {std::move(client).value(), std::move(server).value()};
}

// Runs both handshakes concurrently; returns {client status, server status}.
inline std::pair<Status, Status> Handshake(Pair& p, const JobSecret& client_secret,
                                           const std::string& client_job,
                                           const JobSecret& server_secret,
                                           const std::string& server_job,
                                           Deadline deadline = Soon()) {
  auto server = std::async(std::launch::async, [&] {
    return ServerHandshake(*p.server, server_secret, server_job, deadline);
  });
  Status c = ClientHandshake(*p.client, client_secret, client_job, deadline);
  return {c, server.get()};
}

}  // namespace gemini::transport::testing
