#include "transport/tcp/tcp_listener.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "transport/tcp/socket_util.h"
#include "transport/tcp/tcp_connection.h"

namespace gemini::transport {
namespace {

// socket + SO_REUSEADDR + options + bind + listen on one address.
Result<int> ListenOne(const addrinfo* ai, const TcpOptions& options) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return ErrnoStatus("socket", errno);
  int one = 1;
  Status s = tcp_internal::Configure(fd, options);
  if (s.ok()) s = tcp_internal::SetBlocking(fd, false);  // accept4 after poll never blocks.
  if (s.ok() && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0)
    s = ErrnoStatus("SO_REUSEADDR", errno);
  if (s.ok() && bind(fd, ai->ai_addr, ai->ai_addrlen) != 0) s = ErrnoStatus("bind", errno);
  if (s.ok() && listen(fd, options.listen_backlog) != 0) s = ErrnoStatus("listen", errno);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<TcpListener>> TcpListener::Listen(const std::string& host, uint16_t port,
                                                         const TcpOptions& options) {
  std::string where = (host.empty() ? "*" : host) + ":" + std::to_string(port);
  GEMINI_ASSIGN_OR_RETURN(tcp_internal::AddrInfoPtr list, tcp_internal::Resolve(host, port, true));
  Status last = InvalidArgument("no address");
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    Result<int> fd = ListenOne(ai, options);
    if (!fd.ok()) {
      last = fd.status();
      continue;
    }
    int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake < 0) {
      close(*fd);
      return ErrnoStatus("eventfd", errno);
    }
    return std::unique_ptr<TcpListener>(new TcpListener(*fd, wake, options));
  }
  return Status(last.code(), "listening on " + where + ": " + last.message());
}

TcpListener::TcpListener(int fd, int wake_fd, const TcpOptions& options)
    : fd_(fd),
      wake_fd_(wake_fd),
      options_(options),
      port_(tcp_internal::LocalPort(fd)),
      address_(tcp_internal::LocalAddress(fd)) {}

TcpListener::~TcpListener() {
  close(fd_);
  close(wake_fd_);
}

void TcpListener::Close() {
  if (closed_.exchange(true)) return;
  shutdown(fd_, SHUT_RDWR);
  uint64_t one = 1;
  while (write(wake_fd_, &one, sizeof(one)) < 0 && errno == EINTR) {
  }
}

Result<std::unique_ptr<Connection>> TcpListener::Accept(Deadline deadline) {
  for (;;) {
    if (closed_.load()) return Aborted("listener " + address_ + " closed");
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    Status s = tcp_internal::WaitAny(fds, 2, deadline);
    if (!s.ok()) return tcp_internal::Annotate(s, "accept on " + address_);
    if (fds[1].revents != 0 || closed_.load()) continue;
    Result<std::unique_ptr<Connection>> conn = AcceptPending();
    if (conn.ok() || conn.status().code() != Code::kUnavailable) return conn;
  }
}

Result<std::unique_ptr<Connection>> TcpListener::AcceptPending() {
  int fd = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    // Gone before we took it, or a spurious wakeup: wait again.
    if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR || err == ECONNABORTED)
      return Unavailable("no pending connection");
    return ErrnoStatus("accept on " + address_, err);
  }
  Status s = tcp_internal::Configure(fd, options_);
  if (!s.ok()) {
    close(fd);
    return Unavailable("configuring an accepted socket: " + s.message());
  }
  return std::unique_ptr<Connection>(new TcpConnection(fd));
}

}  // namespace gemini::transport
