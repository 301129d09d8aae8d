// Frames: typed, length-prefixed messages over an authenticated Connection.
//
// Wire format (little-endian): [u32 magic "GMF1"][u32 type][u64 length]
// followed by `length` payload bytes. The receiver says which types it
// accepts and how long each may be (FrameLimits); a bad magic, an unknown
// type or an over-limit length is a protocol error: kInvalidArgument, and
// the connection is failed (Connection::Fail), so it must be dropped. A
// payload is never allocated or read before its header passed the limits.
//
// Two ways to receive:
//   - RecvFrame: header + payload into a std::string, for small control
//     frames.
//   - RecvFrameHeader, then the caller's own checks (e.g. the length against
//     a manifest or a memory budget), then RecvPayload straight into caller
//     memory such as a shared-memory slot (possibly in several pieces with
//     Connection::RecvAll).
// Likewise SendFrame sends the header and the payload from the caller's
// memory in one gathered write, without copying.
//
// Functions are stateless; they follow the Connection's threading rules (one
// sender, one receiver at a time). FrameLimits is a plain value: build it
// once, then share it read-only between threads.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "transport/connection.h"

namespace gemini::transport {

constexpr uint32_t kFrameMagic = 0x31464D47;  // "GMF1" on the wire.
constexpr size_t kFrameHeaderBytes = 16;

struct FrameHeader {
  uint32_t type = 0;
  uint64_t length = 0;
};

struct Frame {
  uint32_t type = 0;
  std::string payload;
};

// Which frame types a receiver accepts, and the longest payload of each.
class FrameLimits {
 public:
  FrameLimits() = default;
  FrameLimits(std::initializer_list<std::pair<const uint32_t, uint64_t>> limits) : max_(limits) {}

  // Accepts `type` with payloads of at most max_length bytes.
  FrameLimits& Allow(uint32_t type, uint64_t max_length) {
    max_[type] = max_length;
    return *this;
  }
  // OK, or kInvalidArgument naming the unknown type / over-limit length.
  Status Check(const FrameHeader& header) const;

 private:
  std::map<uint32_t, uint64_t> max_;
};

// Sends one frame whose payload is `size` bytes at `data` (not copied).
Status SendFrame(Connection& conn, uint32_t type, const void* data, size_t size, Deadline deadline);
// Sends one frame whose payload is the concatenation of `parts` (not copied).
Status SendFrameParts(Connection& conn, uint32_t type, std::span<const ConstBuffer> parts,
                      Deadline deadline);
inline Status SendFrame(Connection& conn, uint32_t type, std::string_view payload,
                        Deadline deadline) {
  return SendFrame(conn, type, payload.data(), payload.size(), deadline);
}

// Receives and validates one header. kUnavailable when the peer closed
// cleanly before a frame began; kInvalidArgument (and the connection failed)
// when the header breaks the limits.
Result<FrameHeader> RecvFrameHeader(Connection& conn, const FrameLimits& limits, Deadline deadline);

// Receives the whole payload of `header` into buf. kInvalidArgument (and the
// connection failed) when it is longer than `capacity`.
Status RecvPayload(Connection& conn, const FrameHeader& header, void* buf, size_t capacity,
                   Deadline deadline);

// Header + payload, for small frames (the limits bound the allocation).
Result<Frame> RecvFrame(Connection& conn, const FrameLimits& limits, Deadline deadline);

}  // namespace gemini::transport
