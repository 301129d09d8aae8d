// TcpConnection: the TCP backend of transport::Connection (connection.h
// states the contract: deadlines, zero-copy sends / receives, sticky first
// error, one sender + one receiver thread, Fail/Shutdown from any thread).
//
// The socket has TCP_NODELAY and the buffer sizes of TcpOptions. Each call
// first moves what the kernel can take or give at once without waiting;
// the rest it moves in blocking calls whose SO_SNDTIMEO / SO_RCVTIMEO is the
// time left to the deadline (MSG_WAITALL on receive), so a large payload
// goes straight between the socket and the caller's memory with few system
// calls and wakeups. Shutdown is shutdown(2), which wakes blocked calls on
// both sides; the descriptor is closed by the destructor only, so it is
// never reused under a concurrent call.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "transport/connection.h"
#include "transport/tcp/tcp_options.h"

namespace gemini::transport {

class TcpConnection final : public Connection {
 public:
  // Connects to host:port (numeric addresses avoid an unbounded DNS lookup),
  // trying each resolved address until one answers. kUnavailable when refused
  // or unreachable, kDeadlineExceeded when nothing answered by the deadline.
  static Result<std::unique_ptr<Connection>> Connect(const std::string& host, uint16_t port,
                                                     Deadline deadline,
                                                     const TcpOptions& options = {});

  // Takes ownership of a connected socket in blocking mode, its options
  // (TCP_NODELAY, buffers) already set.
  explicit TcpConnection(int fd);
  ~TcpConnection() override;
  TcpConnection(const TcpConnection&) = delete;
  TcpConnection& operator=(const TcpConnection&) = delete;

  Status SendParts(std::span<const ConstBuffer> parts, Deadline deadline) override;
  Status RecvAll(void* data, size_t n, Deadline deadline) override;
  Status Fail(Status error) override;
  Status status() const override;
  std::string peer() const override { return peer_; }

 private:
  // Returns the sticky error if there is one, else OK.
  Status Check() const;
  Status SendIov(::iovec* iov, size_t count, Deadline deadline);

  const int fd_;
  const std::string peer_;
  std::atomic<bool> failed_{false};  // Set once error_ is recorded.
  mutable std::mutex mu_;
  Status error_;  // guarded by mu_
};

}  // namespace gemini::transport
