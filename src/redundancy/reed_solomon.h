// rs:K+F: the shard cut into K data fragments (the last padded with zeros to
// ceil(size/K) bytes) plus F parity fragments, ISA-L's erasure code over
// GF(2^8) with a Cauchy generator matrix: any K of the K+F fragments decode.
// K >= 1, F >= 1, K+F <= 255.
#pragma once

#include <vector>

#include "redundancy/scheme.h"

namespace gemini::redundancy {

class ReedSolomon : public Scheme {
 public:
  static Result<std::unique_ptr<ReedSolomon>> Make(int k, int f);
  Redundancy redundancy() const override { return Redundancy::ReedSolomon(k_, f_); }
  int pieces() const override { return k_ + f_; }
  int needed() const override { return k_; }
  uint64_t PieceBytes(uint64_t shard_bytes) const override { return (shard_bytes + k_ - 1) / k_; }
  Status Encode(std::span<const uint8_t> shard, std::span<uint8_t* const> out) const override;
  Status Decode(std::span<const Piece> have, std::span<uint8_t> shard) const override;
  // The F parity fragments from K data fragments of `piece_bytes` each, wherever
  // they are (e.g. slices of the shard itself, no copy).
  Status EncodeParity(std::span<const uint8_t* const> data, uint64_t piece_bytes,
                      std::span<uint8_t* const> parity) const;
  // Parity fragment `row` (0..F-1) alone: fragments can be made on separate
  // threads (each reads the data once more).
  Status EncodeParityRow(std::span<const uint8_t* const> data, uint64_t piece_bytes, int row,
                         uint8_t* out) const;

 private:
  ReedSolomon(int k, int f);
  int k_, f_;
  std::vector<uint8_t> matrix_;  // (K+F) x K: identity on top, Cauchy rows below
  std::vector<uint8_t> encode_;  // ec_init_tables of the F parity rows
};

}  // namespace gemini::redundancy
