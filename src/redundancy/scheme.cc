#include "redundancy/scheme.h"

#include "redundancy/copies.h"
#include "redundancy/reed_solomon.h"

namespace gemini::redundancy {

Result<std::unique_ptr<Scheme>> MakeScheme(const Redundancy& r) {
  if (r.erasure()) {
    GEMINI_ASSIGN_OR_RETURN(auto rs, ReedSolomon::Make(r.data, r.parity));
    return std::unique_ptr<Scheme>(std::move(rs));
  }
  GEMINI_ASSIGN_OR_RETURN(auto c, Copies::Make(r.copies));
  return std::unique_ptr<Scheme>(std::move(c));
}

Result<std::vector<const Piece*>> CheckPieces(const Scheme& s, std::span<const Piece> have,
                                              uint64_t shard_bytes) {
  const std::string what = s.redundancy().ToString();
  std::vector<const Piece*> by_index(s.pieces(), nullptr);
  const uint64_t want = s.PieceBytes(shard_bytes);
  int distinct = 0;
  for (const Piece& p : have) {
    if (p.index < 0 || p.index >= s.pieces())
      return InvalidArgument(what + ": piece " + std::to_string(p.index) + " does not exist (0.." +
                             std::to_string(s.pieces() - 1) + ")");
    if (by_index[p.index])
      return InvalidArgument(what + ": piece " + std::to_string(p.index) + " given twice");
    if (p.bytes.size() != want)
      return InvalidArgument(what + ": piece " + std::to_string(p.index) + " has " +
                             std::to_string(p.bytes.size()) + " bytes, not " +
                             std::to_string(want));
    by_index[p.index] = &p;
    ++distinct;
  }
  if (distinct < s.needed())
    return InvalidArgument(what + ": " + std::to_string(distinct) + " pieces survive, " +
                           std::to_string(s.needed()) + " are needed to rebuild the shard");
  return by_index;
}

}  // namespace gemini::redundancy
