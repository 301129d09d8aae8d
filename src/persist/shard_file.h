// ShardFile: one rank's shard at one iteration of one timeline, as one
// self-checking file.
//
// File format, version 2 (little-endian), every part verified on read:
//   header, 48 bytes: u32 magic "GSHF" | u32 version (2) | u64 epoch |
//                     u64 manifest_bytes | u64 num_chunks | u64 data_bytes |
//                     u32 flags (0) | u32 CRC32C of the 44 bytes before it
//   manifest:         manifest_bytes of Manifest::Encode() (its own CRC trailer;
//                     it names the job, rank, iteration and world size)
//   chunk CRCs:       num_chunks x u32, then a u32 CRC32C of that list
//   data:             data_bytes; chunk i (manifest.chunk_size bytes, the last
//                     one shorter) must match CRC i
// The file's size must be exactly the sum of the parts: a truncated file or
// one with trailing bytes is DataLoss before any data is read. Files of
// another version (version 1 had no epoch) are InvalidArgument "unsupported
// shard file version".
//
// Identity: the *For readers take the ShardId the caller wants (job, rank,
// iteration, epoch, and optionally world size) and refuse, with
// InvalidArgument naming what differs, a file that holds another shard, even
// an intact one under the right name (a file copied or renamed by hand, or
// left by another job or timeline). They check before reading the data.
//
// Writing is atomic: the file is written under a temp name unique across
// hosts (env.h TempPathFor, created O_EXCL, mode 0600) in its final
// directory, fsynced, checked for its full size, renamed into place, and the
// directory is fsynced. A failure or crash at any step leaves either the old
// file (or none) or the complete new one under the final name; never a
// partial one. (Should only the final directory fsync fail, the error is
// returned with the new file already in place, maybe not yet durable.)
// The data is appended straight from the caller's memory (e.g. a pinned
// store slot), at most max(piece_bytes, chunk_size) bytes per Append: no
// copy of the shard is made. Each chunk is checked against its CRC before it
// is written, so memory that changed after capture is refused (DataLoss),
// not persisted.
//
// Reading verifies the header CRC, the manifest CRC, the CRC list's CRC and
// every chunk's CRC. Errors name the file (and the chunk): InvalidArgument
// for a file that is not a shard file (or not the one asked for), DataLoss
// for a corrupted or truncated one. After an error the destination buffer
// holds garbage: discard it.
//
// Functions are thread-safe for different paths; the data pointer passed to
// a write must stay valid and unchanged until the call returns.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "persist/env.h"
#include "persist/layout.h"
#include "store/manifest.h"

namespace gemini {

inline constexpr uint64_t kShardHeaderBytes = 48;
inline constexpr uint32_t kShardFileVersion = 2;

// A shard file's header, manifest and chunk CRCs (everything but the data).
struct ShardInfo {
  int64_t epoch = 0;  // The timeline the shard belongs to (header).
  Manifest manifest;
  std::vector<uint32_t> crcs;
  uint64_t data_offset = 0;  // Where the data region starts in the file.
};

struct LoadedShard {
  int64_t epoch = 0;
  Manifest manifest;
  std::vector<uint32_t> crcs;
  std::vector<uint8_t> data;
};

// The shard a reader asks for.
struct ShardId {
  std::string job;
  uint32_t rank = 0;
  IterationKey at;
  uint32_t world_size = 0;  // 0: any.
  // "job j rank 1 iteration 100 epoch 2" (", world size 4" when set).
  std::string ToString() const;
};

struct ShardWriteOptions {
  // When it becomes true, the write stops before its next piece, removes its
  // temp file and returns Aborted. Not owned; may be null (default).
  const std::atomic<bool>* cancel = nullptr;
  // Bytes handed to one Append (whole chunks, at least one), straight from
  // the caller's data. Default 8 MiB.
  uint64_t piece_bytes = 8u << 20;
};

// Writes a shard of timeline `epoch` to exactly `path` (its directory must
// exist), atomically. `crcs` must hold manifest.NumChunks() entries and
// `data` manifest.data_bytes.
Status WriteShardFile(PersistEnv* env, const std::string& path, int64_t epoch,
                      const Manifest& manifest, const std::vector<uint32_t>& crcs,
                      const uint8_t* data, const ShardWriteOptions& options = {});

// Writes a shard of timeline `epoch` to its place under `root` (layout.h),
// creating directories.
Status WriteShard(PersistEnv* env, const std::string& root, int64_t epoch, const Manifest& manifest,
                  const std::vector<uint32_t>& crcs, const uint8_t* data,
                  const ShardWriteOptions& options = {});

// Reads and verifies everything but the data (to size a buffer, or to check
// that a file is a plausible shard without reading it all).
Result<ShardInfo> ReadShardInfo(PersistEnv* env, const std::string& path);

// Reads a whole shard into dst (capacity >= manifest.data_bytes), verifying
// every CRC. Returns the header part.
Result<ShardInfo> ReadShardInto(PersistEnv* env, const std::string& path, uint8_t* dst,
                                uint64_t dst_capacity);

// Reads a whole shard into memory it allocates, verifying every CRC.
Result<LoadedShard> ReadShard(PersistEnv* env, const std::string& path);

// InvalidArgument naming `path` and every field of `want` that `info`
// differs in (job, rank, iteration, epoch, world size); OK if none.
Status CheckShardIdentity(const std::string& path, const ShardInfo& info, const ShardId& want);

// The *For readers: the file of `id` under `root` (layout.h), which must
// also say that it is that shard (CheckShardIdentity, before any data is read).
Result<ShardInfo> ReadShardInfoFor(PersistEnv* env, const std::string& root, const ShardId& id);
Result<ShardInfo> ReadShardIntoFor(PersistEnv* env, const std::string& root, const ShardId& id,
                                   uint8_t* dst, uint64_t dst_capacity);
Result<LoadedShard> ReadShardFor(PersistEnv* env, const std::string& root, const ShardId& id);

}  // namespace gemini
