// Fuzz target `frame`: transport frame decoding (src/transport/frame.h).
//
// Input: [u8 mode][frame bytes...]; mode bits 0-1 pick the limits, bit 2
// RecvFrame instead of header + payload, bit 3 a caller capacity too small. The bytes are what a
// peer sent on a connection; they go through RecvFrame / RecvFrameHeader + RecvPayload against a
// few FrameLimits (a small fixed set, the peer request limits, or one big type), frame after frame
// until the first error. Every error must be a Status that also failed the connection (frame.h's
// contract); a frame that is accepted must be within its limit and the caller's capacity.
#include <cstdint>
#include <string>
#include <vector>

#include "agent/replication/peer_protocol.h"
#include "fuzz_check.h"
#include "memory_connection.h"
#include "transport/frame.h"

using namespace gemini;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  fuzz::MemoryConnection conn(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  transport::FrameLimits limits;
  uint64_t max_len = 0;
  switch ((mode & 3) % 3) {
    case 0:
      limits = transport::FrameLimits{{1, 64}, {2, 0}, {3, 4096}};
      max_len = 4096;
      break;
    case 1:
      limits = PeerRequestLimits();
      max_len = 4096;  // Bounds this target's buffers, not the limits.
      break;
    default:
      limits.Allow(7, 1 << 16);
      max_len = 1 << 16;
      break;
  }
  auto deadline = std::chrono::steady_clock::now();
  std::vector<char> buf(64);
  for (int i = 0; i < 64; ++i) {
    if ((mode >> 2) & 1) {
      auto f = transport::RecvFrame(conn, limits, deadline);
      if (!f.ok()) {
        FUZZ_CHECK(!conn.status().ok(), "a frame error left the connection usable");
        break;
      }
      FUZZ_CHECK(limits.Check({f->type, f->payload.size()}).ok(), "accepted a frame over limit");
    } else {
      auto h = transport::RecvFrameHeader(conn, limits, deadline);
      if (!h.ok()) {
        FUZZ_CHECK(!conn.status().ok(), "a header error left the connection usable");
        break;
      }
      FUZZ_CHECK(limits.Check(*h).ok(), "accepted a header over limit");
      // A caller's capacity that may be smaller than the frame: must be refused, not overrun.
      size_t cap = std::min<uint64_t>(h->length, max_len);
      if ((mode >> 3) & 1) cap = cap / 2;
      buf.assign(cap + 1, '\0');
      Status st = transport::RecvPayload(conn, *h, buf.data(), cap, deadline);
      if (!st.ok()) {
        FUZZ_CHECK(!conn.status().ok(), "a payload error left the connection usable");
        break;
      }
      FUZZ_CHECK(h->length <= cap, "payload longer than capacity was received");
    }
  }
  return 0;
}
