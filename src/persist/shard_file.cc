#include "persist/shard_file.h"

#include <algorithm>
#include <cstdio>

#include "common/crc32c.h"
#include "common/wire.h"
#include "persist/layout.h"

namespace gemini {
namespace {

constexpr uint32_t kMagic = 0x46485347;  // "GSHF" in the file.
constexpr uint64_t kMagicAndVersionBytes = 8;

struct Header {
  int64_t epoch = 0;
  uint64_t manifest_bytes = 0;
  uint64_t num_chunks = 0;
  uint64_t data_bytes = 0;
};

Status InFile(const std::string& path, const Status& st) {
  return st.ok() ? st : Status(st.code(), path + ": " + st.message());
}

std::string Hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%08x", v);
  return buf;
}

std::string ShardName(const Manifest& m) {
  return "job " + m.job + " rank " + std::to_string(m.rank) + " iteration " +
         std::to_string(m.iteration);
}

// Header, manifest and CRC list: everything before the data.
std::string EncodePrefix(int64_t epoch, const Manifest& m, const std::vector<uint32_t>& crcs) {
  std::string manifest = m.Encode();
  Writer w;
  w.PutU32(kMagic);
  w.PutU32(kShardFileVersion);
  w.PutU64(static_cast<uint64_t>(epoch));
  w.PutU64(manifest.size());
  w.PutU64(crcs.size());
  w.PutU64(m.data_bytes);
  w.PutU32(0);  // Flags.
  w.PutU32(Crc32c(w.str().data(), w.str().size()));
  w.PutRaw(manifest.data(), manifest.size());
  size_t list_start = w.str().size();
  for (uint32_t c : crcs) w.PutU32(c);
  w.PutU32(Crc32c(w.str().data() + list_start, w.str().size() - list_start));
  return w.Take();
}

uint64_t PrefixBytes(const Header& h) {
  return kShardHeaderBytes + h.manifest_bytes + 4 * h.num_chunks + 4;
}

Status CheckWriteArgs(int64_t epoch, const Manifest& m, const std::vector<uint32_t>& crcs,
                      const uint8_t* data) {
  GEMINI_RETURN_IF_ERROR(m.Validate());
  GEMINI_RETURN_IF_ERROR(ValidateJobName(m.job));
  GEMINI_RETURN_IF_ERROR(ValidateKey({m.iteration, epoch}));
  if (crcs.size() != m.NumChunks())
    return InvalidArgument(ShardName(m) + ": " + std::to_string(crcs.size()) + " CRCs for " +
                           std::to_string(m.NumChunks()) + " chunks");
  if (data == nullptr && m.data_bytes > 0) return InvalidArgument(ShardName(m) + ": no data");
  return Status::Ok();
}

Status CheckCancel(const ShardWriteOptions& options) {
  if (options.cancel != nullptr && options.cancel->load(std::memory_order_relaxed))
    return Aborted("write cancelled");
  return Status::Ok();
}

// Chunks per Append: whole chunks, about piece_bytes, at least one.
uint64_t ChunksPerPiece(uint64_t chunk_size, uint64_t piece_bytes) {
  return std::max<uint64_t>(1, piece_bytes / chunk_size);
}

// Verifies chunks [first, last) of `data` against their CRCs.
// `cause` ends the message: what a mismatch means where it was found.
Status VerifyChunks(const Manifest& m, const std::vector<uint32_t>& crcs, const uint8_t* data,
                    uint64_t first, uint64_t last, const char* cause) {
  for (uint64_t c = first; c < last; ++c) {
    uint64_t pos = c * m.chunk_size, n = std::min(m.chunk_size, m.data_bytes - pos);
    uint32_t got = Crc32c(data + pos, n);
    if (got != crcs[c])
      return DataLoss(ShardName(m) + ": chunk " + std::to_string(c) + " (data bytes " +
                      std::to_string(pos) + ".." + std::to_string(pos + n - 1) +
                      ") does not match its CRC32C (stored " + Hex(crcs[c]) + ", computed " +
                      Hex(got) + "): " + cause);
  }
  return Status::Ok();
}

Status AppendData(WritableFile* file, const Manifest& m, const std::vector<uint32_t>& crcs,
                  const uint8_t* data, const ShardWriteOptions& options) {
  uint64_t chunks = m.NumChunks(), per = ChunksPerPiece(m.chunk_size, options.piece_bytes);
  for (uint64_t c = 0; c < chunks; c += per) {
    GEMINI_RETURN_IF_ERROR(CheckCancel(options));
    uint64_t last = std::min(chunks, c + per);
    GEMINI_RETURN_IF_ERROR(
        VerifyChunks(m, crcs, data, c, last, "the in-memory shard changed or is corrupted"));
    uint64_t begin = c * m.chunk_size, end = std::min(m.data_bytes, last * m.chunk_size);
    GEMINI_RETURN_IF_ERROR(file->Append(data + begin, end - begin));
  }
  return Status::Ok();
}

// Writes the whole file into `file` (named `tmp`), durable and checked for size.
Status WriteTemp(PersistEnv* env, const std::string& tmp, std::unique_ptr<WritableFile> file,
                 int64_t epoch, const Manifest& m, const std::vector<uint32_t>& crcs,
                 const uint8_t* data, const ShardWriteOptions& options) {
  std::string prefix = EncodePrefix(epoch, m, crcs);
  GEMINI_RETURN_IF_ERROR(file->Append(prefix.data(), prefix.size()));
  GEMINI_RETURN_IF_ERROR(AppendData(file.get(), m, crcs, data, options));
  GEMINI_RETURN_IF_ERROR(file->Sync());
  GEMINI_RETURN_IF_ERROR(file->Close());
  GEMINI_ASSIGN_OR_RETURN(uint64_t size, env->FileSize(tmp));
  if (size != prefix.size() + m.data_bytes)
    return DataLoss(tmp + ": wrote " + std::to_string(prefix.size() + m.data_bytes) +
                    " bytes but the file has " + std::to_string(size) +
                    " (the disk dropped a write)");
  return CheckCancel(options);
}

Status ReadExact(ReadableFile* file, const std::string& path, uint64_t offset, void* dst,
                 uint64_t n) {
  GEMINI_ASSIGN_OR_RETURN(size_t got, file->ReadAt(offset, dst, n));
  if (got != n)
    return DataLoss(path + ": truncated: " + std::to_string(n) + " bytes wanted at offset " +
                    std::to_string(offset) + ", " + std::to_string(got) + " there");
  return Status::Ok();
}

// Magic and version come first and are checked before anything else, so a
// file of another version gets a clear error whatever its layout.
Status CheckMagicAndVersion(const std::string& path, const uint8_t* bytes) {
  Reader r(std::string_view(reinterpret_cast<const char*>(bytes), kMagicAndVersionBytes));
  uint32_t magic = 0, version = 0;
  r.GetU32(&magic);
  r.GetU32(&version);
  if (magic != kMagic) return InvalidArgument(path + ": not a Gemini shard file (bad magic)");
  if (version != kShardFileVersion)
    return InvalidArgument(
        path + ": unsupported shard file version " + std::to_string(version) +
        " (this build reads version " + std::to_string(kShardFileVersion) +
        (version < kShardFileVersion ? ", with the epoch; rewrite or remove it)" : ")"));
  return Status::Ok();
}

Result<Header> ParseHeader(const std::string& path, const uint8_t* bytes, uint64_t file_size) {
  GEMINI_RETURN_IF_ERROR(CheckMagicAndVersion(path, bytes));
  Reader r(std::string_view(reinterpret_cast<const char*>(bytes), kShardHeaderBytes));
  uint32_t magic = 0, version = 0, flags = 0, crc = 0;
  uint64_t epoch = 0;
  Header h;
  r.GetU32(&magic);
  r.GetU32(&version);
  r.GetU64(&epoch);
  r.GetU64(&h.manifest_bytes);
  r.GetU64(&h.num_chunks);
  r.GetU64(&h.data_bytes);
  r.GetU32(&flags);
  r.GetU32(&crc);
  if (Crc32c(bytes, kShardHeaderBytes - 4) != crc)
    return DataLoss(path + ": header CRC32C mismatch: the file is corrupted");
  h.epoch = static_cast<int64_t>(epoch);
  if (h.epoch < 0) return InvalidArgument(path + ": negative epoch in the header");
  if (flags != 0) return InvalidArgument(path + ": unknown header flags " + std::to_string(flags));
  if (h.manifest_bytes > file_size || h.num_chunks > file_size / 4 || h.data_bytes > file_size ||
      PrefixBytes(h) + h.data_bytes != file_size)
    return DataLoss(path + ": file has " + std::to_string(file_size) + " bytes but its header " +
                    "describes " + std::to_string(PrefixBytes(h) + h.data_bytes) +
                    " (truncated or overwritten)");
  return h;
}

Result<std::vector<uint32_t>> ParseCrcList(const std::string& path, const std::string& bytes) {
  size_t n = bytes.size() / 4 - 1;
  Reader r(bytes);
  std::vector<uint32_t> crcs(n);
  for (auto& c : crcs) r.GetU32(&c);
  uint32_t want = 0;
  r.GetU32(&want);
  if (Crc32c(bytes.data(), n * 4) != want)
    return DataLoss(path + ": chunk CRC list CRC32C mismatch: the file is corrupted");
  return crcs;
}

Result<ShardInfo> ReadPrefix(ReadableFile* file, const std::string& path) {
  GEMINI_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  uint8_t raw[kShardHeaderBytes];
  if (size >= kMagicAndVersionBytes) {
    GEMINI_RETURN_IF_ERROR(ReadExact(file, path, 0, raw, kMagicAndVersionBytes));
    GEMINI_RETURN_IF_ERROR(CheckMagicAndVersion(path, raw));
  }
  if (size < kShardHeaderBytes)
    return DataLoss(path + ": " + std::to_string(size) + " bytes, too short for a shard header");
  GEMINI_RETURN_IF_ERROR(ReadExact(file, path, 0, raw, kShardHeaderBytes));
  GEMINI_ASSIGN_OR_RETURN(Header h, ParseHeader(path, raw, size));
  std::string rest(PrefixBytes(h) - kShardHeaderBytes, '\0');
  GEMINI_RETURN_IF_ERROR(ReadExact(file, path, kShardHeaderBytes, rest.data(), rest.size()));
  ShardInfo info;
  info.epoch = h.epoch;
  auto manifest = Manifest::Decode(std::string_view(rest).substr(0, h.manifest_bytes));
  if (!manifest.ok()) return InFile(path, manifest.status());
  info.manifest = std::move(manifest).value();
  if (info.manifest.data_bytes != h.data_bytes || info.manifest.NumChunks() != h.num_chunks)
    return DataLoss(path + ": manifest and header disagree on the data size");
  GEMINI_ASSIGN_OR_RETURN(info.crcs, ParseCrcList(path, rest.substr(h.manifest_bytes)));
  info.data_offset = PrefixBytes(h);
  return info;
}

Status ReadData(ReadableFile* file, const std::string& path, const ShardInfo& info, uint8_t* dst) {
  const Manifest& m = info.manifest;
  uint64_t chunks = m.NumChunks(), per = ChunksPerPiece(m.chunk_size, 8u << 20);
  for (uint64_t c = 0; c < chunks; c += per) {
    uint64_t last = std::min(chunks, c + per);
    uint64_t begin = c * m.chunk_size, end = std::min(m.data_bytes, last * m.chunk_size);
    GEMINI_RETURN_IF_ERROR(
        ReadExact(file, path, info.data_offset + begin, dst + begin, end - begin));
    GEMINI_RETURN_IF_ERROR(
        InFile(path, VerifyChunks(m, info.crcs, dst, c, last, "the file is corrupted")));
  }
  return Status::Ok();
}

}  // namespace

std::string ShardId::ToString() const {
  std::string s = "job " + job + " rank " + std::to_string(rank) + " " + at.ToString();
  if (world_size != 0) s += ", world size " + std::to_string(world_size);
  return s;
}

Status WriteShardFile(PersistEnv* env, const std::string& path, int64_t epoch,
                      const Manifest& manifest, const std::vector<uint32_t>& crcs,
                      const uint8_t* data, const ShardWriteOptions& options) {
  GEMINI_RETURN_IF_ERROR(CheckWriteArgs(epoch, manifest, crcs, data));
  GEMINI_ASSIGN_OR_RETURN(TempFile temp, NewTempFileFor(env, path));
  Status st = WriteTemp(env, temp.path, std::move(temp.file), epoch, manifest, crcs, data, options);
  if (st.ok()) st = env->RenameFile(temp.path, path);
  if (!st.ok()) {
    env->RemoveFile(temp.path);  // Best effort: a leftover temp is never read as a shard.
    return st;
  }
  return env->SyncDir(DirName(path));
}

Status WriteShard(PersistEnv* env, const std::string& root, int64_t epoch, const Manifest& manifest,
                  const std::vector<uint32_t>& crcs, const uint8_t* data,
                  const ShardWriteOptions& options) {
  GEMINI_RETURN_IF_ERROR(CheckWriteArgs(epoch, manifest, crcs, data));
  IterationKey key{manifest.iteration, epoch};
  GEMINI_RETURN_IF_ERROR(CreateDirs(env, IterationDir(root, manifest.job, key)));
  return WriteShardFile(env, ShardPath(root, manifest.job, key, manifest.rank), epoch, manifest,
                        crcs, data, options);
}

Result<ShardInfo> ReadShardInfo(PersistEnv* env, const std::string& path) {
  GEMINI_ASSIGN_OR_RETURN(auto file, env->NewReadableFile(path));
  return ReadPrefix(file.get(), path);
}

namespace {

Status CheckCapacity(const std::string& path, const ShardInfo& info, const uint8_t* dst,
                     uint64_t dst_capacity) {
  if (dst_capacity < info.manifest.data_bytes || (dst == nullptr && info.manifest.data_bytes > 0))
    return InvalidArgument(path + ": shard has " + std::to_string(info.manifest.data_bytes) +
                           " data bytes, the buffer holds " + std::to_string(dst_capacity));
  return Status::Ok();
}

// Reads prefix, checks identity (when `want` is set), then data into dst, or
// into memory it allocates when `out` is set.
Result<ShardInfo> ReadWhole(PersistEnv* env, const std::string& path, const ShardId* want,
                            uint8_t* dst, uint64_t dst_capacity, std::vector<uint8_t>* out) {
  GEMINI_ASSIGN_OR_RETURN(auto file, env->NewReadableFile(path));
  GEMINI_ASSIGN_OR_RETURN(ShardInfo info, ReadPrefix(file.get(), path));
  if (want != nullptr) GEMINI_RETURN_IF_ERROR(CheckShardIdentity(path, info, *want));
  if (out != nullptr) {
    out->resize(info.manifest.data_bytes);
    dst = out->data();
    dst_capacity = out->size();
  }
  GEMINI_RETURN_IF_ERROR(CheckCapacity(path, info, dst, dst_capacity));
  GEMINI_RETURN_IF_ERROR(ReadData(file.get(), path, info, dst));
  return info;
}

Result<LoadedShard> Loaded(Result<ShardInfo> info, std::vector<uint8_t> data) {
  if (!info.ok()) return info.status();
  LoadedShard out;
  out.epoch = info->epoch;
  out.manifest = std::move(info->manifest);
  out.crcs = std::move(info->crcs);
  out.data = std::move(data);
  return out;
}

}  // namespace

Result<ShardInfo> ReadShardInto(PersistEnv* env, const std::string& path, uint8_t* dst,
                                uint64_t dst_capacity) {
  return ReadWhole(env, path, nullptr, dst, dst_capacity, nullptr);
}

Result<LoadedShard> ReadShard(PersistEnv* env, const std::string& path) {
  std::vector<uint8_t> data;
  auto info = ReadWhole(env, path, nullptr, nullptr, 0, &data);
  return Loaded(std::move(info), std::move(data));
}

Status CheckShardIdentity(const std::string& path, const ShardInfo& info, const ShardId& want) {
  const Manifest& m = info.manifest;
  std::string differs;
  auto note = [&](bool same, const char* what) {
    if (!same) differs += (differs.empty() ? "" : ", ") + std::string(what);
  };
  note(m.job == want.job, "job");
  note(m.rank == want.rank, "rank");
  note(m.iteration == want.at.iteration, "iteration");
  note(info.epoch == want.at.epoch, "epoch (timeline)");
  note(want.world_size == 0 || m.world_size == want.world_size, "world size");
  if (differs.empty()) return Status::Ok();
  ShardId got{m.job, m.rank, {m.iteration, info.epoch}, m.world_size};
  return InvalidArgument(path + ": holds " + got.ToString() + ", not the " + want.ToString() +
                         " asked for (" + differs + " differ" +
                         (differs.find(',') == std::string::npos ? "s" : "") + ")");
}

Result<ShardInfo> ReadShardInfoFor(PersistEnv* env, const std::string& root, const ShardId& id) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(id.job));
  GEMINI_RETURN_IF_ERROR(ValidateKey(id.at));
  std::string path = ShardPath(root, id.job, id.at, id.rank);
  GEMINI_ASSIGN_OR_RETURN(ShardInfo info, ReadShardInfo(env, path));
  GEMINI_RETURN_IF_ERROR(CheckShardIdentity(path, info, id));
  return info;
}

Result<ShardInfo> ReadShardIntoFor(PersistEnv* env, const std::string& root, const ShardId& id,
                                   uint8_t* dst, uint64_t dst_capacity) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(id.job));
  GEMINI_RETURN_IF_ERROR(ValidateKey(id.at));
  return ReadWhole(env, ShardPath(root, id.job, id.at, id.rank), &id, dst, dst_capacity, nullptr);
}

Result<LoadedShard> ReadShardFor(PersistEnv* env, const std::string& root, const ShardId& id) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(id.job));
  GEMINI_RETURN_IF_ERROR(ValidateKey(id.at));
  std::vector<uint8_t> data;
  auto info = ReadWhole(env, ShardPath(root, id.job, id.at, id.rank), &id, nullptr, 0, &data);
  return Loaded(std::move(info), std::move(data));
}

}  // namespace gemini
