#include "transport/frame.h"

#include <cstring>

namespace gemini::transport {
namespace {

// The fixed 16-byte header; every supported host is little-endian (wire.h).
struct WireHeader {
  uint32_t magic;
  uint32_t type;
  uint64_t length;
};
static_assert(sizeof(WireHeader) == kFrameHeaderBytes);

// Fails the connection; returns this error even if another one came first.
Status ProtocolError(Connection& conn, const std::string& what) {
  Status error = InvalidArgument(what + " from " + conn.peer());
  conn.Fail(error);
  return error;
}

}  // namespace

Status FrameLimits::Check(const FrameHeader& header) const {
  auto it = max_.find(header.type);
  if (it == max_.end()) return InvalidArgument("unknown frame type " + std::to_string(header.type));
  if (header.length <= it->second) return Status::Ok();
  return InvalidArgument("frame of type " + std::to_string(header.type) + " is " +
                         std::to_string(header.length) + " bytes, over its limit of " +
                         std::to_string(it->second));
}

Status SendFrame(Connection& conn, uint32_t type, const void* data, size_t size,
                 Deadline deadline) {
  WireHeader h{kFrameMagic, type, size};
  ConstBuffer parts[2] = {{&h, sizeof(h)}, {data, size}};
  return conn.SendParts(parts, deadline);
}

Status SendFrameParts(Connection& conn, uint32_t type, std::span<const ConstBuffer> parts,
                      Deadline deadline) {
  if (parts.size() > 7) return InvalidArgument("at most 7 payload parts in one frame");
  WireHeader h{kFrameMagic, type, 0};
  ConstBuffer all[8];
  all[0] = {&h, sizeof(h)};
  for (size_t i = 0; i < parts.size(); ++i) {
    h.length += parts[i].size;
    all[i + 1] = parts[i];
  }
  return conn.SendParts(std::span<const ConstBuffer>(all, parts.size() + 1), deadline);
}

Result<FrameHeader> RecvFrameHeader(Connection& conn, const FrameLimits& limits,
                                    Deadline deadline) {
  WireHeader h{};
  GEMINI_RETURN_IF_ERROR(conn.RecvAll(&h, sizeof(h), deadline));
  if (h.magic != kFrameMagic) return ProtocolError(conn, "bad frame magic");
  FrameHeader header{h.type, h.length};
  Status s = limits.Check(header);
  if (!s.ok()) return ProtocolError(conn, s.message());
  return header;
}

Status RecvPayload(Connection& conn, const FrameHeader& header, void* buf, size_t capacity,
                   Deadline deadline) {
  if (header.length > capacity)
    return ProtocolError(conn, "payload of " + std::to_string(header.length) +
                                   " bytes for a buffer of " + std::to_string(capacity));
  return conn.RecvAll(buf, header.length, deadline);
}

Result<Frame> RecvFrame(Connection& conn, const FrameLimits& limits, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(FrameHeader header, RecvFrameHeader(conn, limits, deadline));
  Frame frame{header.type, std::string()};
  frame.payload.resize(header.length);
  GEMINI_RETURN_IF_ERROR(
      RecvPayload(conn, header, frame.payload.data(), frame.payload.size(), deadline));
  return frame;
}

}  // namespace gemini::transport
