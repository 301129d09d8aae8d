#include "transport/tcp/tcp_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "transport/tcp/socket_util.h"

namespace gemini::transport {
namespace {

using tcp_internal::WaitFd;

// Skips `sent` bytes of the iovec array; returns the new first element.
iovec* Advance(iovec* iov, size_t* count, size_t sent) {
  while (*count > 0 && sent >= iov->iov_len) {
    sent -= iov->iov_len;
    ++iov;
    --*count;
  }
  if (*count > 0) {
    iov->iov_base = static_cast<char*>(iov->iov_base) + sent;
    iov->iov_len -= sent;
  }
  return iov;
}

// One non-blocking connect attempt to one address.
Result<int> ConnectOne(const addrinfo* ai, Deadline deadline, const TcpOptions& options) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0) return ErrnoStatus("socket", errno);
  Status s = tcp_internal::Configure(fd, options);
  if (s.ok()) s = tcp_internal::SetBlocking(fd, false);  // Only for a bounded connect.
  if (s.ok() && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno == EINPROGRESS)
      s = WaitFd(fd, POLLOUT, deadline);
    else
      s = ErrnoStatus("connect", errno);
    int err = 0;
    socklen_t len = sizeof(err);
    if (s.ok() && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (s.ok() && err != 0) s = ErrnoStatus("connect", err);
  }
  if (s.ok()) s = tcp_internal::SetBlocking(fd, true);
  if (!s.ok()) {
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace

Result<std::unique_ptr<Connection>> TcpConnection::Connect(const std::string& host, uint16_t port,
                                                           Deadline deadline,
                                                           const TcpOptions& options) {
  if (host.empty() || port == 0) return InvalidArgument("connect: empty host or port 0");
  std::string where = host + ":" + std::to_string(port);
  GEMINI_ASSIGN_OR_RETURN(tcp_internal::AddrInfoPtr list, tcp_internal::Resolve(host, port, false));
  Status last = Unavailable("no address");
  for (const addrinfo* ai = list.get(); ai != nullptr; ai = ai->ai_next) {
    Result<int> fd = ConnectOne(ai, deadline, options);
    if (fd.ok()) return std::unique_ptr<Connection>(new TcpConnection(*fd));
    last = fd.status();
    if (last.code() == Code::kDeadlineExceeded) break;
  }
  Code code = last.code() == Code::kDeadlineExceeded ? last.code() : Code::kUnavailable;
  return Status(code, "connecting to " + where + ": " + last.message());
}

TcpConnection::TcpConnection(int fd) : fd_(fd), peer_(tcp_internal::PeerAddress(fd)) {}

TcpConnection::~TcpConnection() { close(fd_); }

Status TcpConnection::Check() const {
  if (!failed_.load(std::memory_order_acquire)) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

Status TcpConnection::status() const { return Check(); }

Status TcpConnection::Fail(Status error) {
  if (error.ok()) error = Internal("Fail() called with OK");
  std::lock_guard<std::mutex> lock(mu_);
  if (!failed_.load(std::memory_order_relaxed)) {
    error_ = std::move(error);
    failed_.store(true, std::memory_order_release);
    shutdown(fd_, SHUT_RDWR);
  }
  return error_;
}

Status TcpConnection::SendParts(std::span<const ConstBuffer> parts, Deadline deadline) {
  GEMINI_RETURN_IF_ERROR(Check());
  std::vector<iovec> iov;
  iov.reserve(parts.size());
  for (const ConstBuffer& p : parts)
    if (p.size > 0) iov.push_back({const_cast<void*>(p.data), p.size});
  Status s = SendIov(iov.data(), iov.size(), deadline);
  return s.ok() ? s : Fail(s);
}

// Each call first takes what the kernel can do at once (MSG_DONTWAIT); only
// when it must wait does it block in the kernel with SO_SNDTIMEO /
// SO_RCVTIMEO set to the time left, which moves a large payload with far
// fewer wakeups and system calls than polling. shutdown(2) wakes a blocked
// call.
Status TcpConnection::SendIov(iovec* iov, size_t count, Deadline deadline) {
  bool wait = false;
  while (count > 0) {
    if (wait) {
      Status s = tcp_internal::SetTimeoutUntil(fd_, SO_SNDTIMEO, deadline);
      if (!s.ok()) return tcp_internal::Annotate(s, "send to " + peer_);
    }
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = std::min<size_t>(count, IOV_MAX);
    ssize_t r = sendmsg(fd_, &msg, MSG_NOSIGNAL | (wait ? 0 : MSG_DONTWAIT));
    if (r >= 0) {
      iov = Advance(iov, &count, static_cast<size_t>(r));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait = true;
    } else if (errno != EINTR) {
      return ErrnoStatus("send to " + peer_, errno);
    }
  }
  return Status::Ok();
}

Status TcpConnection::RecvAll(void* data, size_t n, Deadline deadline) {
  GEMINI_RETURN_IF_ERROR(Check());
  auto* p = static_cast<char*>(data);
  size_t done = 0;
  bool wait = false;
  while (done < n) {
    if (wait) {
      Status s = tcp_internal::SetTimeoutUntil(fd_, SO_RCVTIMEO, deadline);
      if (!s.ok()) return Fail(tcp_internal::Annotate(s, "receive from " + peer_));
    }
    ssize_t r = recv(fd_, p + done, n - done, wait ? MSG_WAITALL : MSG_DONTWAIT);
    if (r > 0) {
      done += static_cast<size_t>(r);
    } else if (r == 0) {
      return Fail(Unavailable("peer " + peer_ + " closed the connection"));
    } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
      wait = true;
    } else if (errno != EINTR) {
      return Fail(ErrnoStatus("receive from " + peer_, errno));
    }
  }
  return Status::Ok();
}

}  // namespace gemini::transport
