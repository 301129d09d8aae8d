// Scheme: turns a shard into the pieces its holders keep and rebuilds it from
// the pieces that survive. Implementations: copies.h (copies:M) and
// reed_solomon.h (rs:K+F); MakeScheme picks one for a Redundancy.
//
// Pieces are numbered 0..pieces()-1 and all have PieceBytes(shard) bytes.
// Decode takes any needed() or more distinct pieces. Bad input (too few
// pieces, duplicates, unknown indices, wrong sizes) is an InvalidArgument,
// never a crash. Schemes are immutable and thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "common/status.h"
#include "gemini/placement.h"

namespace gemini::redundancy {

// One surviving piece: its index and its bytes.
struct Piece {
  int index = 0;
  std::span<const uint8_t> bytes;
};

class Scheme {
 public:
  virtual ~Scheme() = default;
  virtual Redundancy redundancy() const = 0;
  // Pieces per shard (M copies, or K+F fragments) and how many of them any
  // recovery needs (1, or K).
  virtual int pieces() const = 0;
  virtual int needed() const = 0;
  virtual uint64_t PieceBytes(uint64_t shard_bytes) const = 0;
  // Writes every piece: out[i] must hold PieceBytes(shard.size()) bytes.
  virtual Status Encode(std::span<const uint8_t> shard, std::span<uint8_t* const> out) const = 0;
  // Rebuilds the shard (shard.size() bytes) from `have`.
  virtual Status Decode(std::span<const Piece> have, std::span<uint8_t> shard) const = 0;
};

Result<std::unique_ptr<Scheme>> MakeScheme(const Redundancy& r);

// Checks what every Decode checks: enough distinct, known pieces of the right
// size. Returns the pieces by index (nullptr where absent).
Result<std::vector<const Piece*>> CheckPieces(const Scheme& s, std::span<const Piece> have,
                                              uint64_t shard_bytes);

}  // namespace gemini::redundancy
