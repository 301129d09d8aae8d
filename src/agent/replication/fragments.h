// Fragments: a shard kept as Reed–Solomon fragments (rs:K+F) by the K+F
// machines of its owner's group, and the shard rebuilt from any K of them.
//
// The holder at position i of the group (Placement::holders, ascending) keeps
// fragment i of every member's shard; the owner keeps its whole shard, which
// stands for its own fragment. A group wider than K+F (the last one, when
// K+F does not divide the machines) codes W-F data fragments: FragmentScheme.
//
// A fragment travels and is stored like a shard whose manifest has
// Manifest::fragment set: its data region is the fragment and its CRCs cover
// the fragment, so the chunked replica protocol, the store and fetches carry
// it unchanged. The manifest also carries the whole shard's entries and
// CRCs, which every rebuilt shard is checked against before it is used.
// Pure computation on caller-owned memory; thread-safe on distinct buffers.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "agent/replication/chunked_replica.h"
#include "gemini/placement.h"
#include "redundancy/reed_solomon.h"
#include "store/manifest.h"
#include "store/store.h"

namespace gemini {

// The code of a group of `width` holders under `redundancy` (rs:K+F):
// rs:(width-F)+F.
Result<Redundancy> FragmentScheme(const Redundancy& redundancy, size_t width);

// The fragments of a pinned shard, each as a ShardPin a ChunkedSender sends.
// Make() lays them out (data fragments are slices of the shard; only short
// ones at the end and the parity fragments live in `buffer`). Fragments are
// made stripe by stripe (a stripe is one manifest chunk of every fragment):
// the first sender to need a stripe's parity encodes every parity row of it
// in one pass over the data, while it is in cache, and each sender computes
// its own fragment's CRC32Cs. Fragment(i) makes fragment i whole; Stream(i)
// gives it to a ChunkedSender that makes each stripe just before its bytes
// go, so sending starts at once and encoding overlaps it.
class EncodedShard {
 public:
  // `buffer` is reused across calls (grown as needed); it and `shard` must
  // outlive the result.
  static Result<std::unique_ptr<EncodedShard>> Make(const ShardPin& shard, const Redundancy& code,
                                                    std::vector<uint8_t>* buffer);
  // Make() and every Fragment().
  static Result<std::unique_ptr<EncodedShard>> Encode(const ShardPin& shard, const Redundancy& code,
                                                      std::vector<uint8_t>* buffer);
  ~EncodedShard();
  // Fragment `index`, whole. Thread-safe for distinct indices; made once.
  Result<const ShardPin*> Fragment(int index);
  // A fragment Fragment() has made.
  const ShardPin& fragment(int index) const { return *made_.at(index); }
  // Fragment `index` to be streamed: its pin (CRCs empty) and the maker a
  // ChunkedSender calls before each chunk. Thread-safe for distinct indices;
  // the pointers live as long as this.
  struct Streamed {
    const ShardPin* pin;
    PieceMaker* maker;
  };
  Result<Streamed> Stream(int index);
  int count() const { return static_cast<int>(slices_.size()); }
  uint64_t fragment_bytes() const { return piece_; }

 private:
  class Maker;
  EncodedShard(const ShardPin& shard, std::unique_ptr<redundancy::ReedSolomon> rs, uint64_t piece);
  Manifest FragmentManifest(int index) const;
  // Bytes [0, end) of fragment `index` and their CRC32Cs.
  Status MakeUpTo(int index, uint64_t end);
  // A data fragment's stripe that is exactly one chunk of the shard has that
  // chunk's committed CRC32C: nothing to compute (and the holder checks the
  // bytes against what was committed).
  std::optional<uint32_t> ShardChunkCrc(int index, uint64_t off, uint64_t len) const;

  const ShardPin& shard_;
  const std::unique_ptr<redundancy::ReedSolomon> rs_;
  const uint64_t piece_, stripe_;       // stripe_: the manifest's chunk size
  std::vector<const uint8_t*> slices_;  // Where each fragment's bytes are (or go).
  std::vector<std::unique_ptr<ShardPin>> made_;
  std::vector<std::unique_ptr<ShardPin>> streamed_;
  std::vector<std::unique_ptr<Maker>> makers_;
  std::unique_ptr<std::once_flag[]> encoded_;  // per stripe: every parity row made
  std::vector<std::vector<uint32_t>> crcs_;    // per fragment, per stripe made
};

// A fragment (or a whole shard) fetched from a holder: its bytes have
// passed their own CRCs.
struct FetchedPiece {
  Manifest manifest;
  std::vector<uint32_t> crcs;
  std::vector<uint8_t> data;
};

// The whole shard's manifest and CRCs, from a fragment's.
Manifest ShardManifestOf(const Manifest& fragment);

// One shard that fetched pieces describe: its manifest and CRCs, and its
// pieces (a whole shard, or distinct fragments).
struct ShardPieces {
  Manifest manifest;
  std::vector<uint32_t> crcs;
  std::vector<const FetchedPiece*> pieces;
  bool whole = false;  // A whole shard is among the pieces.
  int fragments = 0;   // Distinct fragment indices.
  int needed = 0;      // K of its code (0 for a whole shard).
  bool enough() const { return whole || (needed > 0 && fragments >= needed); }
};

// Groups pieces by the shard they describe (manifest and CRCs), in the order
// first seen: a stale or forged piece forms its own group and cannot spoil
// the others. Repeated fragment indices in a group are dropped.
std::vector<ShardPieces> GroupPieces(const std::vector<FetchedPiece>& pieces);

// Rebuilds the shard into `out` (manifest.data_bytes bytes): a whole shard is
// copied, fragments decoded. The result is checked against the shard's CRCs
// (DataLoss on a mismatch); too few fragments is an InvalidArgument.
Status RebuildShard(const ShardPieces& shard, uint8_t* out);

}  // namespace gemini
