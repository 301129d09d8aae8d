#include "redundancy/copies.h"

#include <cstring>

namespace gemini::redundancy {

Result<std::unique_ptr<Copies>> Copies::Make(int m) {
  if (m < 1) return InvalidArgument("copies:M needs M >= 1, got " + std::to_string(m));
  return std::unique_ptr<Copies>(new Copies(m));
}

Status Copies::Encode(std::span<const uint8_t> shard, std::span<uint8_t* const> out) const {
  if (out.size() != static_cast<size_t>(m_))
    return InvalidArgument("copies:" + std::to_string(m_) + ": " + std::to_string(out.size()) +
                           " outputs for " + std::to_string(m_) + " pieces");
  for (uint8_t* o : out)
    if (!shard.empty()) std::memcpy(o, shard.data(), shard.size());
  return Status::Ok();
}

Status Copies::Decode(std::span<const Piece> have, std::span<uint8_t> shard) const {
  GEMINI_ASSIGN_OR_RETURN(auto by_index, CheckPieces(*this, have, shard.size()));
  for (const Piece* p : by_index) {
    if (!p) continue;
    if (!shard.empty()) std::memcpy(shard.data(), p->bytes.data(), shard.size());
    return Status::Ok();
  }
  return Internal("copies: no piece after CheckPieces");
}

}  // namespace gemini::redundancy
