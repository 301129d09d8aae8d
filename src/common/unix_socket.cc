#include "common/unix_socket.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gemini {
namespace {

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path))
    return InvalidArgument("socket path '" + path + "' empty or too long");
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

Status WaitReadable(int fd, Deadline deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return DeadlineExceeded("no message before the deadline");
    pollfd p{fd, POLLIN, 0};
    int r = poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 1 << 30)));
    if (r > 0) return Status::Ok();
    if (r < 0 && errno != EINTR) return ErrnoStatus("poll", errno);
  }
}

// Reads exactly n bytes; collects a passed fd if one arrives.
Status ReadFull(int fd, void* buf, size_t n, Deadline deadline, int* got_fd, bool* eof_at_start) {
  auto* p = static_cast<char*>(buf);
  size_t done = 0;
  while (done < n) {
    GEMINI_RETURN_IF_ERROR(WaitReadable(fd, deadline));
    iovec iov{p + done, n - done};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    ssize_t r = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("recvmsg", errno);
    if (r == 0) {
      if (eof_at_start != nullptr) *eof_at_start = (done == 0);
      return Unavailable("peer closed the connection");
    }
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        int f;
        std::memcpy(&f, CMSG_DATA(c), sizeof(int));
        if (*got_fd >= 0) close(*got_fd);
        *got_fd = f;
      }
    }
    done += static_cast<size_t>(r);
  }
  return Status::Ok();
}

}  // namespace

Result<int> UnixListen(const std::string& path) {
  GEMINI_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  unlink(path.c_str());
  mode_t old = umask(0177);  // The socket file is created 0600.
  int r = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  umask(old);
  if (r != 0 || chmod(path.c_str(), 0600) != 0 || listen(fd, 64) != 0) {
    int err = errno;
    close(fd);
    return ErrnoStatus("listening on " + path, err);
  }
  return fd;
}

Result<int> UnixConnect(const std::string& path) {
  GEMINI_ASSIGN_OR_RETURN(sockaddr_un addr, Address(path));
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return ErrnoStatus("socket", errno);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    return Status(Code::kUnavailable, "cannot reach the gemini agent at " + path + ": " +
                                          std::strerror(err) + " (is `gemini agent` running?)");
  }
  return fd;
}

Result<int> UnixAccept(int listen_fd) {
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) return fd;
    if (errno == EINTR || errno == ECONNABORTED) continue;
    return ErrnoStatus("accept", errno);
  }
}

Status SendFrame(int fd, uint32_t type, const std::string& payload, int pass_fd) {
  if (payload.size() > kMaxFrame) return InvalidArgument("frame too large");
  uint32_t header[2] = {type, static_cast<uint32_t>(payload.size())};
  iovec iov[2] = {{header, sizeof(header)}, {const_cast<char*>(payload.data()), payload.size()}};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  if (pass_fd >= 0) {
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
  }
  size_t total = sizeof(header) + payload.size(), sent = 0;
  while (sent < total) {
    ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return ErrnoStatus("sendmsg", errno);
    sent += static_cast<size_t>(r);
    msg.msg_control = nullptr;  // The fd goes with the first byte only.
    msg.msg_controllen = 0;
    // Advance the iovecs past what was sent.
    size_t skip = static_cast<size_t>(r);
    while (msg.msg_iovlen > 0 && skip >= msg.msg_iov[0].iov_len) {
      skip -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + skip;
      msg.msg_iov[0].iov_len -= skip;
    }
  }
  return Status::Ok();
}

Result<Frame> RecvFrame(int fd, Deadline deadline) {
  Frame f;
  uint32_t header[2];
  bool eof = false;
  Status s = ReadFull(fd, header, sizeof(header), deadline, &f.fd, &eof);
  if (s.ok() && header[1] > kMaxFrame)
    s = InvalidArgument("frame length " + std::to_string(header[1]) + " over the 64 MiB limit");
  if (s.ok()) {
    f.type = header[0];
    f.payload.resize(header[1]);
    s = ReadFull(fd, f.payload.data(), header[1], deadline, &f.fd, nullptr);
  }
  if (!s.ok()) {
    if (f.fd >= 0) close(f.fd);
    return s;
  }
  return f;
}

}  // namespace gemini
