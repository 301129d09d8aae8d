// Private helpers of the TCP backend: deadline-bounded poll, socket options,
// address formatting and resolution. Stateless and thread-safe.
#pragma once

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>

#include "transport/connection.h"
#include "transport/tcp/tcp_options.h"

namespace gemini::transport::tcp_internal {

// Waits until fd has one of `events` (or an error / hangup) pending;
// kDeadlineExceeded once the deadline passed.
Status WaitFd(int fd, short events, Deadline deadline);
// Waits until any of fds has its events pending (revents are filled in).
Status WaitAny(pollfd* fds, nfds_t count, Deadline deadline);
// The same code, the message prefixed with "<what>: ".
Status Annotate(const Status& s, const std::string& what);

// TCP_NODELAY and the buffer sizes of `options`.
Status Configure(int fd, const TcpOptions& options);
// Clears or sets O_NONBLOCK.
Status SetBlocking(int fd, bool blocking);
// Sets SO_RCVTIMEO / SO_SNDTIMEO (`option`) to the time left until the
// deadline (at least 1 us; never 0, which would mean "no timeout");
// kDeadlineExceeded when none is left.
Status SetTimeoutUntil(int fd, int option, Deadline deadline);

// "10.0.0.2:7000" / "[::1]:7000".
std::string FormatAddress(const sockaddr* addr, socklen_t len);
std::string PeerAddress(int fd);
std::string LocalAddress(int fd);
// The local port of a bound socket, or 0.
uint16_t LocalPort(int fd);

struct AddrInfoDeleter {
  void operator()(addrinfo* a) const { freeaddrinfo(a); }
};
using AddrInfoPtr = std::unique_ptr<addrinfo, AddrInfoDeleter>;

// getaddrinfo for TCP; `passive` for binding (an empty host = every address).
// Name resolution is not bounded by a deadline: give numeric addresses.
Result<AddrInfoPtr> Resolve(const std::string& host, uint16_t port, bool passive);

}  // namespace gemini::transport::tcp_internal
