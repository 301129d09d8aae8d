#include "redundancy/reed_solomon.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <cstring>

namespace gemini::redundancy {
namespace {

// ec_encode_data takes an int length: longer fragments go in slices.
constexpr uint64_t kSlice = 1ull << 30;

// out[r][pos..pos+len) = tables-rows x src[..][pos..pos+len), for every slice.
void Apply(int k, int rows, uint8_t* tables, const std::vector<const uint8_t*>& src,
           const std::vector<uint8_t*>& out, uint64_t bytes) {
  std::vector<uint8_t*> s(k), o(rows);
  for (uint64_t pos = 0; pos < bytes; pos += kSlice) {
    int len = static_cast<int>(std::min(kSlice, bytes - pos));
    for (int i = 0; i < k; ++i) s[i] = const_cast<uint8_t*>(src[i]) + pos;
    for (int r = 0; r < rows; ++r) o[r] = out[r] + pos;
    ec_encode_data(len, k, rows, tables, s.data(), o.data());
  }
}

}  // namespace

Result<std::unique_ptr<ReedSolomon>> ReedSolomon::Make(int k, int f) {
  if (k < 1 || f < 1 || k + f > 255)
    return InvalidArgument("rs:" + std::to_string(k) + "+" + std::to_string(f) +
                           ": needs K >= 1, F >= 1 and K+F <= 255");
  return std::unique_ptr<ReedSolomon>(new ReedSolomon(k, f));
}

ReedSolomon::ReedSolomon(int k, int f) : k_(k), f_(f), matrix_((k + f) * k), encode_(32 * k * f) {
  gf_gen_cauchy1_matrix(matrix_.data(), k + f, k);  // Any k rows are invertible.
  ec_init_tables(k, f, &matrix_[k * k], encode_.data());
}

Status ReedSolomon::Encode(std::span<const uint8_t> shard, std::span<uint8_t* const> out) const {
  if (out.size() != static_cast<size_t>(k_ + f_))
    return InvalidArgument(redundancy().ToString() + ": " + std::to_string(out.size()) +
                           " outputs for " + std::to_string(k_ + f_) + " pieces");
  const uint64_t n = shard.size(), piece = PieceBytes(n);
  for (int i = 0; i < k_; ++i) {  // Data fragments: the shard's slices, zero-padded.
    uint64_t off = std::min<uint64_t>(n, i * piece), len = std::min(piece, n - off);
    if (len) std::memcpy(out[i], shard.data() + off, len);
    if (piece > len) std::memset(out[i] + len, 0, piece - len);
  }
  std::vector<const uint8_t*> data(out.begin(), out.begin() + k_);
  return EncodeParity(data, piece, out.subspan(k_));
}

Status ReedSolomon::EncodeParityRow(std::span<const uint8_t* const> data, uint64_t piece_bytes,
                                    int row, uint8_t* out) const {
  if (data.size() != static_cast<size_t>(k_) || row < 0 || row >= f_)
    return InvalidArgument(redundancy().ToString() + ": parity row " + std::to_string(row) +
                           " from " + std::to_string(data.size()) + " data fragments");
  // ec_init_tables lays the tables out row after row, 32*K bytes each.
  Apply(k_, 1, const_cast<uint8_t*>(encode_.data()) + 32 * k_ * row,
        std::vector<const uint8_t*>(data.begin(), data.end()), std::vector<uint8_t*>{out},
        piece_bytes);
  return Status::Ok();
}

Status ReedSolomon::EncodeParity(std::span<const uint8_t* const> data, uint64_t piece_bytes,
                                 std::span<uint8_t* const> parity) const {
  if (data.size() != static_cast<size_t>(k_) || parity.size() != static_cast<size_t>(f_))
    return InvalidArgument(redundancy().ToString() + ": " + std::to_string(data.size()) +
                           " data and " + std::to_string(parity.size()) + " parity fragments");
  Apply(k_, f_, const_cast<uint8_t*>(encode_.data()),
        std::vector<const uint8_t*>(data.begin(), data.end()),
        std::vector<uint8_t*>(parity.begin(), parity.end()), piece_bytes);
  return Status::Ok();
}

Status ReedSolomon::Decode(std::span<const Piece> have, std::span<uint8_t> shard) const {
  GEMINI_ASSIGN_OR_RETURN(auto by_index, CheckPieces(*this, have, shard.size()));
  const uint64_t n = shard.size(), piece = PieceBytes(n);
  // The first k pieces present, data fragments first: with every data
  // fragment there, nothing is decoded.
  std::vector<int> use;
  for (int i = 0; i < k_ + f_ && static_cast<int>(use.size()) < k_; ++i)
    if (by_index[i]) use.push_back(i);
  std::vector<int> missing;
  for (int i = 0; i < k_; ++i)
    if (!by_index[i]) missing.push_back(i);
  std::vector<std::vector<uint8_t>> rebuilt(missing.size());
  if (!missing.empty()) {
    // Rows `use` of the generator times the shard's data give the pieces we
    // have; the inverse of that k x k matrix gives the data back.
    std::vector<uint8_t> b(k_ * k_), inv(k_ * k_);
    for (int r = 0; r < k_; ++r) std::memcpy(&b[r * k_], &matrix_[use[r] * k_], k_);
    if (gf_invert_matrix(b.data(), inv.data(), k_) != 0)
      return Internal(redundancy().ToString() + ": singular decode matrix");
    std::vector<uint8_t> rows(missing.size() * k_), tables(32 * k_ * missing.size());
    for (size_t j = 0; j < missing.size(); ++j)
      std::memcpy(&rows[j * k_], &inv[missing[j] * k_], k_);
    ec_init_tables(k_, static_cast<int>(missing.size()), rows.data(), tables.data());
    std::vector<const uint8_t*> src(k_);
    for (int r = 0; r < k_; ++r) src[r] = by_index[use[r]]->bytes.data();
    std::vector<uint8_t*> out(missing.size());
    for (size_t j = 0; j < missing.size(); ++j) {
      rebuilt[j].resize(piece);
      out[j] = rebuilt[j].data();
    }
    Apply(k_, static_cast<int>(missing.size()), tables.data(), src, out, piece);
  }
  size_t next_missing = 0;
  for (int i = 0; i < k_; ++i) {
    uint64_t off = std::min<uint64_t>(n, i * piece), len = std::min(piece, n - off);
    const uint8_t* from = by_index[i] ? by_index[i]->bytes.data() : rebuilt[next_missing++].data();
    if (len) std::memcpy(shard.data() + off, from, len);
  }
  return Status::Ok();
}

}  // namespace gemini::redundancy
