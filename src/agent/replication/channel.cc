#include "agent/replication/channel.h"

#include <algorithm>

namespace gemini {

Status SendWhole(Channel& channel, const ShardPin& piece, uint64_t max_chunk, uint32_t window,
                 Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(auto stream, channel.Open(piece, nullptr, max_chunk, window, deadline));
  for (uint64_t off = 0; off < piece.manifest.data_bytes;) {
    uint64_t len = std::min(max_chunk, piece.manifest.data_bytes - off);
    GEMINI_RETURN_IF_ERROR(stream->Send(off, len, deadline));
    off += len;
  }
  return stream->Finish(deadline);
}

}  // namespace gemini
