#include "agent/replication/fragments.h"

#include <cstring>
#include <map>
#include <optional>

#include "common/crc32c.h"
#include "redundancy/reed_solomon.h"
#include "store/chunks.h"

namespace gemini {

Result<Redundancy> FragmentScheme(const Redundancy& redundancy, size_t width) {
  if (!redundancy.erasure()) return InvalidArgument(redundancy.ToString() + " has no fragments");
  if (width <= static_cast<size_t>(redundancy.parity) || width > 255)
    return InvalidArgument("a group of " + std::to_string(width) + " machines cannot keep " +
                           redundancy.ToString());
  return Redundancy::ReedSolomon(static_cast<int>(width) - redundancy.parity, redundancy.parity);
}

// A streamed fragment's maker: MakeUpTo on its EncodedShard.
class EncodedShard::Maker : public PieceMaker {
 public:
  Maker(EncodedShard* shard, int index) : shard_(shard), index_(index) {}
  Status MakeUpTo(uint64_t end) override { return shard_->MakeUpTo(index_, end); }
  std::vector<uint32_t> Crcs() const override { return shard_->crcs_[index_]; }

 private:
  EncodedShard* const shard_;
  const int index_;
};

Result<std::unique_ptr<EncodedShard>> EncodedShard::Make(const ShardPin& shard,
                                                         const Redundancy& code,
                                                         std::vector<uint8_t>* buffer) {
  if (shard.manifest.is_fragment()) return InvalidArgument("a fragment is not cut again");
  if (shard.manifest.chunk_size == 0) return InvalidArgument("a shard with chunks of 0 bytes");
  GEMINI_ASSIGN_OR_RETURN(auto rs, redundancy::ReedSolomon::Make(code.data, code.parity));
  const uint64_t bytes = shard.manifest.data_bytes, piece = rs->PieceBytes(bytes);
  const int k = code.data, n = rs->pieces();
  auto slice = [&](int i) {
    const uint64_t off = std::min<uint64_t>(bytes, i * piece);
    return std::pair<uint64_t, uint64_t>(off, std::min(piece, bytes - off));
  };
  int short_ones = 0;
  for (int i = 0; i < k; ++i) short_ones += slice(i).second < piece;
  const uint64_t need = piece * static_cast<uint64_t>(n - k + short_ones);
  if (buffer->size() < need) buffer->resize(need);
  auto encoded = std::unique_ptr<EncodedShard>(new EncodedShard(shard, std::move(rs), piece));
  encoded->slices_.resize(n);
  encoded->made_.resize(n);
  encoded->streamed_.resize(n);
  encoded->makers_.resize(n);
  encoded->crcs_.resize(n);
  const uint64_t stripes = (piece + encoded->stripe_ - 1) / encoded->stripe_;
  encoded->encoded_ = std::make_unique<std::once_flag[]>(stripes);
  uint8_t* next_short = buffer->data() + (n - k) * piece;
  for (int i = 0; i < k; ++i) {
    auto [off, len] = slice(i);
    if (len == piece) {
      encoded->slices_[i] = shard.data + off;
      continue;
    }
    if (len) std::memcpy(next_short, shard.data + off, len);
    std::memset(next_short + len, 0, piece - len);
    encoded->slices_[i] = next_short;
    next_short += piece;
  }
  for (int i = 0; i < n - k; ++i) encoded->slices_[k + i] = buffer->data() + i * piece;
  return encoded;
}

EncodedShard::EncodedShard(const ShardPin& shard, std::unique_ptr<redundancy::ReedSolomon> rs,
                           uint64_t piece)
    : shard_(shard), rs_(std::move(rs)), piece_(piece), stripe_(shard.manifest.chunk_size) {}

EncodedShard::~EncodedShard() = default;

Result<std::unique_ptr<EncodedShard>> EncodedShard::Encode(const ShardPin& shard,
                                                           const Redundancy& code,
                                                           std::vector<uint8_t>* buffer) {
  GEMINI_ASSIGN_OR_RETURN(auto encoded, Make(shard, code, buffer));
  for (int i = 0; i < encoded->count(); ++i) GEMINI_RETURN_IF_ERROR(encoded->Fragment(i).status());
  return encoded;
}

Manifest EncodedShard::FragmentManifest(int index) const {
  const Redundancy code = rs_->redundancy();
  Manifest m = shard_.manifest;
  m.fragment = {index, static_cast<uint16_t>(code.data), static_cast<uint16_t>(code.parity),
                shard_.manifest.data_bytes, shard_.crcs};
  m.data_bytes = piece_;
  return m;
}

Status EncodedShard::MakeUpTo(int index, uint64_t end) {
  const int k = rs_->redundancy().data, n = count();
  std::vector<uint32_t>& crcs = crcs_[index];
  const uint64_t stripes = (std::min(end, piece_) + stripe_ - 1) / stripe_;
  while (crcs.size() < stripes) {
    const uint64_t s = crcs.size(), off = s * stripe_, len = std::min(stripe_, piece_ - off);
    if (index >= k) {
      // Every parity row of this stripe at once: the data is read once, and
      // the row is in cache for its CRC below.
      std::call_once(encoded_[s], [&] {
        std::vector<const uint8_t*> data(k);
        std::vector<uint8_t*> parity(n - k);
        for (int i = 0; i < k; ++i) data[i] = slices_[i] + off;
        for (int j = 0; j < n - k; ++j) parity[j] = const_cast<uint8_t*>(slices_[k + j]) + off;
        // Counts are right by construction (Make): it cannot fail.
        (void)rs_->EncodeParity(data, len, parity);
      });
    }
    crcs.push_back(ShardChunkCrc(index, off, len).value_or(Crc32c(slices_[index] + off, len)));
  }
  return Status::Ok();
}

std::optional<uint32_t> EncodedShard::ShardChunkCrc(int index, uint64_t off, uint64_t len) const {
  if (index >= rs_->redundancy().data) return std::nullopt;  // Parity.
  const uint8_t* at = slices_[index] + off;
  const uint64_t bytes = shard_.manifest.data_bytes;
  if (at < shard_.data || at >= shard_.data + bytes) return std::nullopt;  // A padded copy.
  const uint64_t pos = static_cast<uint64_t>(at - shard_.data);
  const uint64_t c = pos / stripe_;
  if (pos % stripe_ != 0 || c >= shard_.crcs.size() || len != std::min(stripe_, bytes - pos))
    return std::nullopt;
  return shard_.crcs[c];
}

Result<const ShardPin*> EncodedShard::Fragment(int index) {
  if (index < 0 || index >= count()) return InvalidArgument("no fragment " + std::to_string(index));
  if (made_[index]) return made_[index].get();
  GEMINI_RETURN_IF_ERROR(MakeUpTo(index, piece_));
  made_[index] =
      std::make_unique<ShardPin>(FragmentManifest(index), crcs_[index], slices_[index], [] {});
  return made_[index].get();
}

Result<EncodedShard::Streamed> EncodedShard::Stream(int index) {
  if (index < 0 || index >= count()) return InvalidArgument("no fragment " + std::to_string(index));
  if (!streamed_[index]) {
    streamed_[index] = std::make_unique<ShardPin>(FragmentManifest(index), std::vector<uint32_t>{},
                                                  slices_[index], [] {});
    makers_[index] = std::make_unique<Maker>(this, index);
  }
  return Streamed{streamed_[index].get(), makers_[index].get()};
}

Manifest ShardManifestOf(const Manifest& fragment) {
  Manifest m = fragment;
  if (m.is_fragment()) {
    m.data_bytes = m.fragment.shard_bytes;
    m.fragment = {};
  }
  return m;
}

std::vector<ShardPieces> GroupPieces(const std::vector<FetchedPiece>& pieces) {
  std::vector<ShardPieces> groups;
  std::map<std::string, size_t> index_of;
  for (const FetchedPiece& p : pieces) {
    const bool fragment = p.manifest.is_fragment();
    Manifest m = ShardManifestOf(p.manifest);
    const std::vector<uint32_t>& crcs = fragment ? p.manifest.fragment.shard_crcs : p.crcs;
    std::string key = m.Encode();
    key.append(reinterpret_cast<const char*>(crcs.data()), crcs.size() * sizeof(uint32_t));
    if (fragment)
      key += "rs:" + std::to_string(p.manifest.fragment.data) + "+" +
             std::to_string(p.manifest.fragment.parity);
    auto [it, fresh] = index_of.emplace(key, groups.size());
    if (fresh) groups.push_back({std::move(m), crcs, {}, false, 0, 0});
    ShardPieces& g = groups[it->second];
    if (fragment) {
      bool seen = false;
      for (const FetchedPiece* q : g.pieces)
        seen |=
            q->manifest.is_fragment() && q->manifest.fragment.index == p.manifest.fragment.index;
      if (seen) continue;
      ++g.fragments;
      g.needed = p.manifest.fragment.data;
    } else {
      g.whole = true;
    }
    g.pieces.push_back(&p);
  }
  return groups;
}

Status RebuildShard(const ShardPieces& shard, uint8_t* out) {
  const uint64_t bytes = shard.manifest.data_bytes;
  if (!shard.enough())
    return InvalidArgument(std::to_string(shard.fragments) + " fragments of rank " +
                           std::to_string(shard.manifest.rank) + " iteration " +
                           std::to_string(shard.manifest.iteration) + " survive; " +
                           std::to_string(shard.needed) + " are needed");
  const FetchedPiece* whole = nullptr;
  std::vector<redundancy::Piece> fragments;
  for (const FetchedPiece* p : shard.pieces) {
    if (!p->manifest.is_fragment())
      whole = p;
    else
      fragments.push_back({p->manifest.fragment.index, p->data});
  }
  if (whole) {
    if (whole->data.size() != bytes) return InvalidArgument("whole shard of the wrong size");
    std::memcpy(out, whole->data.data(), bytes);
  } else {
    const Manifest::Fragment& f = shard.pieces[0]->manifest.fragment;
    GEMINI_ASSIGN_OR_RETURN(auto code, redundancy::ReedSolomon::Make(f.data, f.parity));
    GEMINI_RETURN_IF_ERROR(code->Decode(fragments, std::span<uint8_t>(out, bytes)));
  }
  return VerifyChunks(out, bytes, shard.manifest.chunk_size, shard.crcs);
}

}  // namespace gemini
