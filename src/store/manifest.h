// Manifest: what one shard holds.
//
// A shard is one owner rank's state at one iteration of one job: a list of
// named tensor pieces laid out back to back (64-byte aligned) in a data
// region, checksummed with one CRC32C per `chunk_size` bytes of that region.
// A piece is a byte range [tensor_offset, tensor_offset + length) of a tensor
// of the given dtype and shape; a whole tensor is the piece at offset 0 with
// its full byte size. (Ranks of a data-parallel job split one replicated state
// into pieces so that each stores 1/world of it.)
//
// Encode() writes a versioned binary form ending in a CRC32C of everything
// before it; Decode() accepts only input that passes every check in
// Validate() and the CRC, and otherwise returns InvalidArgument / DataLoss
// naming the problem. Plain values; not thread-safe to mutate concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace gemini {

enum class Dtype : uint8_t {
  kUint8 = 0,
  kInt8,
  kInt16,
  kInt32,
  kInt64,
  kFloat16,
  kBFloat16,
  kFloat32,
  kFloat64,
  kBool,
  // Appended (the wire carries the index): every other torch dtype.
  kUint16,
  kUint32,
  kUint64,
  kComplex32,
  kComplex64,
  kComplex128,
  kFloat8E4M3Fn,
  kFloat8E5M2,
  kFloat8E4M3Fnuz,
  kFloat8E5M2Fnuz,
  kFloat8E8M0Fnu,
  kCount  // Not a dtype; the number of them.
};

// A job name is 1 to 256 of [A-Za-z0-9._-], not starting with '.': it becomes
// part of etcd keys, directory and memfd names, and JSON, so nothing else is
// accepted.
Status ValidateJobName(std::string_view job);

// Size in bytes of one element, or 0 for an unknown dtype.
size_t DtypeSize(Dtype d);
const char* DtypeName(Dtype d);
// Parses "float32", "bfloat16", ... (the names DtypeName returns).
Result<Dtype> DtypeFromName(std::string_view name);

struct TensorEntry {
  std::string name;
  Dtype dtype = Dtype::kUint8;
  std::vector<int64_t> shape;
  uint64_t offset = 0;         // Byte offset of the piece in the shard's data region.
  uint64_t length = 0;         // Byte length of the piece.
  uint64_t tensor_offset = 0;  // Byte offset of the piece within the whole tensor.

  // Bytes of the whole tensor (product of shape times element size).
  uint64_t TensorBytes() const;
};

struct Manifest {
  std::string job;
  int64_t iteration = 0;
  uint32_t rank = 0;
  uint32_t world_size = 1;
  uint64_t chunk_size = kDefaultChunkSize;
  uint64_t data_bytes = 0;  // Size of the data region.
  std::vector<TensorEntry> entries;
  // Set on a Reed–Solomon fragment (rs:K+F, src/redundancy) that a holder
  // keeps of another machine's shard: the data region is then fragment
  // `index` of the shard's K+F, and the entries describe the whole shard.
  struct Fragment {
    int32_t index = -1;   // -1: the data region is the whole shard.
    uint16_t data = 0;    // K
    uint16_t parity = 0;  // F
    uint64_t shard_bytes = 0;
    std::vector<uint32_t> shard_crcs;  // One per chunk_size bytes of the whole shard.
  };
  Fragment fragment;

  bool is_fragment() const { return fragment.index >= 0; }
  // The whole shard's size: data_bytes, or the fragment's shard_bytes.
  uint64_t shard_bytes() const { return is_fragment() ? fragment.shard_bytes : data_bytes; }

  static constexpr uint64_t kDefaultChunkSize = 4u << 20;
  static constexpr uint64_t kAlignment = 64;
  static constexpr size_t kMaxEntries = 1u << 20;
  static constexpr size_t kMaxRank = 8;  // Max dims of a shape.
  static constexpr size_t kMaxNameBytes = 4096;
  // Largest data region (256 TiB): sizes derived from it cannot overflow.
  static constexpr uint64_t kMaxDataBytes = uint64_t{1} << 48;

  // Sets each entry's offset (in order, aligned) and data_bytes.
  void AssignOffsets();
  uint64_t NumChunks() const { return (data_bytes + chunk_size - 1) / chunk_size; }
  // Every structural check: names, dtypes, shapes, pieces within their
  // tensors, pieces within the shard and not overlapping, sane chunk size;
  // a fragment: K, F, index in range, data_bytes = ceil(shard_bytes / K),
  // one shard CRC per chunk.
  Status Validate() const;

  std::string Encode() const;
  static Result<Manifest> Decode(std::string_view bytes);
};

}  // namespace gemini
