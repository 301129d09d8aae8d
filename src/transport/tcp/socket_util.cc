#include "transport/tcp/socket_util.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>

namespace gemini::transport::tcp_internal {
namespace {

// Milliseconds until the deadline, rounded up so that a wait never ends early.
int64_t MillisUntil(Deadline deadline) {
  auto left = deadline - std::chrono::steady_clock::now();
  if (left <= left.zero()) return 0;
  return std::chrono::ceil<std::chrono::milliseconds>(left).count();
}

size_t ReadSysctl(const char* path) {
  std::ifstream in(path);
  size_t v = 0;
  return (in >> v) ? v : 0;
}

// The largest SO_SNDBUF / SO_RCVBUF an unprivileged setsockopt gets in full.
size_t BufferCap() {
  static const size_t cap = std::min(ReadSysctl("/proc/sys/net/core/wmem_max"),
                                     ReadSysctl("/proc/sys/net/core/rmem_max"));
  return cap;
}

Status SetInt(int fd, int level, int name, int value, const char* what) {
  if (setsockopt(fd, level, name, &value, sizeof(value)) == 0) return Status::Ok();
  return ErrnoStatus(what, errno);
}

}  // namespace

Status WaitAny(pollfd* fds, nfds_t count, Deadline deadline) {
  for (;;) {
    int64_t ms = MillisUntil(deadline);
    if (ms <= 0) return DeadlineExceeded("deadline exceeded");
    int r = poll(fds, count, static_cast<int>(std::min<int64_t>(ms, 1 << 30)));
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
  }
}

Status WaitFd(int fd, short events, Deadline deadline) {
  pollfd p{fd, events, 0};
  return WaitAny(&p, 1, deadline);
}

Status Annotate(const Status& s, const std::string& what) {
  return s.ok() ? s : Status(s.code(), what + ": " + s.message());
}

Status SetBlocking(int fd, bool blocking) {
  int flags = fcntl(fd, F_GETFL);
  int want = blocking ? (flags & ~O_NONBLOCK) : (flags | O_NONBLOCK);
  if (flags < 0 || fcntl(fd, F_SETFL, want) != 0) return ErrnoStatus("fcntl O_NONBLOCK", errno);
  return Status::Ok();
}

Status SetTimeoutUntil(int fd, int option, Deadline deadline) {
  auto left =
      std::chrono::ceil<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return DeadlineExceeded("deadline exceeded");
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(std::min<int64_t>(left.count() / 1000000, 1 << 30));
  tv.tv_usec = static_cast<suseconds_t>(left.count() % 1000000);
  if (setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv)) == 0) return Status::Ok();
  return ErrnoStatus(option == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO", errno);
}

Status Configure(int fd, const TcpOptions& options) {
  GEMINI_RETURN_IF_ERROR(SetInt(fd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY"));
  if (int ms = options.dead_peer_timeout_ms; ms > 0) {
    int idle_s = std::max(1, ms / 2000);
    GEMINI_RETURN_IF_ERROR(SetInt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, ms, "TCP_USER_TIMEOUT"));
    GEMINI_RETURN_IF_ERROR(SetInt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE"));
    GEMINI_RETURN_IF_ERROR(SetInt(fd, IPPROTO_TCP, TCP_KEEPIDLE, idle_s, "TCP_KEEPIDLE"));
    GEMINI_RETURN_IF_ERROR(SetInt(fd, IPPROTO_TCP, TCP_KEEPINTVL, 1, "TCP_KEEPINTVL"));
    GEMINI_RETURN_IF_ERROR(SetInt(fd, IPPROTO_TCP, TCP_KEEPCNT, 3, "TCP_KEEPCNT"));
  }
  size_t want = options.buffer_bytes;
  if (want == 0 || want > BufferCap() || want > (1u << 30)) return Status::Ok();
  GEMINI_RETURN_IF_ERROR(SetInt(fd, SOL_SOCKET, SO_SNDBUF, static_cast<int>(want), "SO_SNDBUF"));
  return SetInt(fd, SOL_SOCKET, SO_RCVBUF, static_cast<int>(want), "SO_RCVBUF");
}

std::string FormatAddress(const sockaddr* addr, socklen_t len) {
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getnameinfo(addr, len, host, sizeof(host), port, sizeof(port),
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return "?";
  if (addr->sa_family == AF_INET6) return "[" + std::string(host) + "]:" + port;
  return std::string(host) + ":" + port;
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

std::string LocalAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  return FormatAddress(reinterpret_cast<sockaddr*>(&ss), len);
}

uint16_t LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return 0;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return 0;
}

Result<AddrInfoPtr> Resolve(const std::string& host, uint16_t port, bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
  addrinfo* out = nullptr;
  std::string service = std::to_string(port);
  int r = getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &out);
  if (r == EAI_AGAIN) return Unavailable("resolving '" + host + "': " + gai_strerror(r));
  if (r != 0) return InvalidArgument("resolving '" + host + "': " + gai_strerror(r));
  return AddrInfoPtr(out);
}

}  // namespace gemini::transport::tcp_internal
