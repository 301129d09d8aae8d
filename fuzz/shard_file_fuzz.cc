// Fuzz target `shard_file`: reading persistent-tier shard files
// (src/persist/shard_file.h) through a read-only in-memory env (memory_env.h).
//
// Input: [u8 mode][file bytes...]. With bit 0 of mode set, this target first
// makes every checksum in the file match its bytes, where the layout lets it
// find them (header CRC, the manifest's CRC trailer, each chunk's CRC from
// the data, the CRC list's CRC), so mutations reach the structural checks
// behind the checksums. Then ReadShardInfo, ReadShardInto (a buffer of a
// size from mode's high bits), ReadShard and ReadShardFor must return an
// error for bad files; whatever they accept must be self-consistent.
#include <cstdint>
#include <string>
#include <vector>

#include "common/crc32c.h"
#include "common/wire.h"
#include "fuzz_check.h"
#include "memory_env.h"
#include "persist/shard_file.h"

using namespace gemini;

namespace {

void PutU32At(std::string& s, size_t at, uint32_t v) { std::memcpy(s.data() + at, &v, 4); }

// Best effort: recomputes the checksums the header's sizes point at.
void FixChecksums(std::string& f) {
  if (f.size() < kShardHeaderBytes) return;
  uint64_t manifest_bytes = 0, num_chunks = 0, data_bytes = 0;
  std::memcpy(&manifest_bytes, f.data() + 8, 8);
  std::memcpy(&num_chunks, f.data() + 16, 8);
  std::memcpy(&data_bytes, f.data() + 24, 8);
  PutU32At(f, 36, Crc32c(f.data(), 36));
  const uint64_t rest = f.size() - kShardHeaderBytes;
  if (manifest_bytes < 4 || manifest_bytes > rest || num_chunks > rest / 4) return;
  const size_t m_at = kShardHeaderBytes, crcs_at = m_at + manifest_bytes;
  PutU32At(f, crcs_at - 4, Crc32c(f.data() + m_at, manifest_bytes - 4));
  if (crcs_at + 4 * num_chunks + 4 > f.size()) return;
  const size_t data_at = crcs_at + 4 * num_chunks + 4;
  auto m = Manifest::Decode(std::string_view(f).substr(m_at, manifest_bytes));
  if (m.ok() && m->chunk_size > 0) {
    for (uint64_t c = 0; c < num_chunks; ++c) {
      uint64_t begin = data_at + c * m->chunk_size;
      if (begin > f.size()) break;
      uint64_t n = std::min<uint64_t>(m->chunk_size, f.size() - begin);
      PutU32At(f, crcs_at + 4 * c, Crc32c(f.data() + begin, n));
    }
  }
  PutU32At(f, data_at - 4, Crc32c(f.data() + crcs_at, 4 * num_chunks));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string file(reinterpret_cast<const char*>(data + 1), size - 1);
  if (data[0] & 1) FixChecksums(file);
  fuzz::MemoryEnv env(file);
  const std::string path = "/fuzz/job/iter-000000000001-epoch-0/rank-0.gshard";

  auto info = ReadShardInfo(&env, path);
  if (info.ok()) {
    FUZZ_CHECK(info->crcs.size() == info->manifest.NumChunks(), "CRC count");
    FUZZ_CHECK(info->data_offset + info->manifest.data_bytes == file.size(), "file size");
  }
  // A destination buffer smaller than, equal to, or larger than the data.
  uint64_t want = info.ok() ? info->manifest.data_bytes : file.size();
  static const int64_t kSlack[] = {0, -1, 1, 64};
  uint64_t cap = std::max<int64_t>(0, static_cast<int64_t>(want) + kSlack[(data[0] >> 1) & 3]);
  std::vector<uint8_t> dst(cap);
  auto into = ReadShardInto(&env, path, dst.data(), cap);
  if (into.ok()) FUZZ_CHECK(info.ok() && cap >= into->manifest.data_bytes, "ReadShardInto");

  auto whole = ReadShard(&env, path);
  FUZZ_CHECK(whole.ok() == into.ok() || cap < want, "ReadShard and ReadShardInto disagree");
  if (whole.ok()) {
    FUZZ_CHECK(whole->data.size() == whole->manifest.data_bytes, "data size");
    ShardId id{whole->manifest.job,
               whole->manifest.rank,
               {whole->manifest.iteration, whole->epoch},
               whole->manifest.world_size};
    auto again = ReadShardFor(&env, "/fuzz", id);
    // May refuse a job name that is not a directory name, never another shard.
    if (again.ok()) FUZZ_CHECK(again->epoch == whole->epoch, "ReadShardFor: epoch");
  }
  (void)ReadShardFor(&env, "/fuzz", ShardId{"job", 0, {1, 0}, 0});
  return 0;
}
