// TcpListener: the TCP backend of transport::Listener.
//
// Listen() binds host:port (an empty host means every local address; port 0
// picks a free ephemeral port, which port() then reports) and listens with
// the socket options of TcpOptions, which accepted connections inherit.
// Accept() waits up to its deadline; Close(), from any thread, refuses new
// connection attempts and wakes a blocked Accept() (an eventfd, so it never
// depends on how the kernel treats shutdown(2) of a listening socket).
// Ownership: owns both descriptors, closed by the destructor only. Thread
// safety: one thread accepts; Close(), port() and address() from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "transport/connection.h"
#include "transport/tcp/tcp_options.h"

namespace gemini::transport {

class TcpListener final : public Listener {
 public:
  static Result<std::unique_ptr<TcpListener>> Listen(const std::string& host, uint16_t port,
                                                     const TcpOptions& options = {});
  ~TcpListener() override;
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  Result<std::unique_ptr<Connection>> Accept(Deadline deadline) override;
  void Close() override;
  std::string address() const override { return address_; }
  // The bound port (the kernel's choice when Listen() was given 0).
  uint16_t port() const { return port_; }

 private:
  TcpListener(int fd, int wake_fd, const TcpOptions& options);
  // Takes one pending connection without waiting; kUnavailable if none is.
  Result<std::unique_ptr<Connection>> AcceptPending();

  const int fd_;
  const int wake_fd_;
  const TcpOptions options_;
  const uint16_t port_;
  const std::string address_;
  std::atomic<bool> closed_{false};
};

}  // namespace gemini::transport
