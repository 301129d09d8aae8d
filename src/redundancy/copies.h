// copies:M: every piece is the whole shard; any one piece rebuilds it.
#pragma once

#include "redundancy/scheme.h"

namespace gemini::redundancy {

class Copies : public Scheme {
 public:
  static Result<std::unique_ptr<Copies>> Make(int m);
  Redundancy redundancy() const override { return Redundancy::Copies(m_); }
  int pieces() const override { return m_; }
  int needed() const override { return 1; }
  uint64_t PieceBytes(uint64_t shard_bytes) const override { return shard_bytes; }
  Status Encode(std::span<const uint8_t> shard, std::span<uint8_t* const> out) const override;
  Status Decode(std::span<const Piece> have, std::span<uint8_t> shard) const override;

 private:
  explicit Copies(int m) : m_(m) {}
  int m_;
};

}  // namespace gemini::redundancy
