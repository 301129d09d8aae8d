// Framed messages over Unix domain stream sockets, with file-descriptor
// passing (SCM_RIGHTS) and a deadline on every wait.
//
// A frame is [u32 type][u32 length][payload], at most kMaxFrame bytes of
// payload; a longer length field is a protocol error (InvalidArgument) and the
// caller should drop the connection. A frame may carry one fd, sent with its
// first byte. UnixListen creates the socket file with mode 0600 (only the
// owner may connect). Functions here are stateless; a connection fd must be
// used by one thread at a time.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace gemini {

constexpr uint32_t kMaxFrame = 64u << 20;

struct Frame {
  uint32_t type = 0;
  std::string payload;
  int fd = -1;  // Received fd (owned by the receiver), or -1.
};

using Deadline = std::chrono::steady_clock::time_point;
inline Deadline DeadlineIn(std::chrono::milliseconds ms) {
  return std::chrono::steady_clock::now() + ms;
}

// Listening socket at `path` (an existing socket file there is replaced).
Result<int> UnixListen(const std::string& path);
Result<int> UnixConnect(const std::string& path);
// Accepts one connection; Unavailable once the listener was shut down.
Result<int> UnixAccept(int listen_fd);

Status SendFrame(int fd, uint32_t type, const std::string& payload, int pass_fd = -1);
// Unavailable when the peer closed cleanly before a frame began.
Result<Frame> RecvFrame(int fd, Deadline deadline);

}  // namespace gemini
