#include "store/manifest.h"

#include <algorithm>

#include "common/crc32c.h"
#include "common/wire.h"

namespace gemini {
namespace {

constexpr uint32_t kMagic = 0x4D4E4D47;  // "GMNM"
constexpr uint8_t kVersion = 1;          // A whole shard.
constexpr uint8_t kFragmentVersion = 2;  // Version 1 plus the fragment fields.

struct DtypeInfo {
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {"uint8", 1},          {"int8", 1},        {"int16", 2},           {"int32", 4},
    {"int64", 8},          {"float16", 2},     {"bfloat16", 2},        {"float32", 4},
    {"float64", 8},        {"bool", 1},        {"uint16", 2},          {"uint32", 4},
    {"uint64", 8},         {"complex32", 4},   {"complex64", 8},       {"complex128", 16},
    {"float8_e4m3fn", 1},  {"float8_e5m2", 1}, {"float8_e4m3fnuz", 1}, {"float8_e5m2fnuz", 1},
    {"float8_e8m0fnu", 1},
};
static_assert(sizeof(kDtypes) / sizeof(kDtypes[0]) == static_cast<size_t>(Dtype::kCount));

uint64_t AlignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

Status ValidateEntry(const TensorEntry& e, uint64_t data_bytes) {
  if (e.name.empty() || e.name.size() > Manifest::kMaxNameBytes)
    return InvalidArgument("tensor name empty or longer than 4096 bytes");
  if (DtypeSize(e.dtype) == 0) return InvalidArgument("tensor '" + e.name + "': unknown dtype");
  if (e.shape.size() > Manifest::kMaxRank)
    return InvalidArgument("tensor '" + e.name + "': more than 8 dimensions");
  for (int64_t d : e.shape)
    if (d < 0 || d > (int64_t{1} << 48))
      return InvalidArgument("tensor '" + e.name + "': bad dimension " + std::to_string(d));
  uint64_t whole = e.TensorBytes();
  if (whole == UINT64_MAX) return InvalidArgument("tensor '" + e.name + "': size overflows");
  if (e.tensor_offset > whole || e.length > whole - e.tensor_offset)
    return InvalidArgument("tensor '" + e.name + "': piece [" + std::to_string(e.tensor_offset) +
                           ", +" + std::to_string(e.length) + ") outside its " +
                           std::to_string(whole) + "-byte tensor");
  if (e.offset > data_bytes || e.length > data_bytes - e.offset)
    return InvalidArgument("tensor '" + e.name + "': offset " + std::to_string(e.offset) +
                           " + length " + std::to_string(e.length) + " beyond data region of " +
                           std::to_string(data_bytes) + " bytes");
  return Status::Ok();
}

}  // namespace

Status ValidateJobName(std::string_view job) {
  if (job.empty() || job.size() > 256) return InvalidArgument("job name must have 1 to 256 bytes");
  if (job[0] == '.') return InvalidArgument("job name must not start with '.'");
  for (char c : job)
    if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') && c != '.' &&
        c != '_' && c != '-')
      return InvalidArgument("job name may hold only letters, digits, '.', '_' and '-' (got byte " +
                             std::to_string(static_cast<unsigned char>(c)) + ")");
  return Status::Ok();
}

size_t DtypeSize(Dtype d) {
  auto i = static_cast<size_t>(d);
  return i < static_cast<size_t>(Dtype::kCount) ? kDtypes[i].size : 0;
}

const char* DtypeName(Dtype d) {
  auto i = static_cast<size_t>(d);
  return i < static_cast<size_t>(Dtype::kCount) ? kDtypes[i].name : "unknown";
}

Result<Dtype> DtypeFromName(std::string_view name) {
  for (size_t i = 0; i < static_cast<size_t>(Dtype::kCount); ++i)
    if (name == kDtypes[i].name) return static_cast<Dtype>(i);
  return InvalidArgument("unknown dtype '" + std::string(name) + "'");
}

uint64_t TensorEntry::TensorBytes() const {
  uint64_t n = DtypeSize(dtype);
  for (int64_t d : shape) {
    if (d != 0 && n > UINT64_MAX / static_cast<uint64_t>(d)) return UINT64_MAX;
    n *= static_cast<uint64_t>(d);
  }
  return n;
}

void Manifest::AssignOffsets() {
  uint64_t off = 0;
  for (auto& e : entries) {
    off = AlignUp(off, kAlignment);
    e.offset = off;
    off += e.length;
  }
  data_bytes = off;
}

Status Manifest::Validate() const {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(job));
  if (data_bytes > kMaxDataBytes)
    return InvalidArgument("data region of " + std::to_string(data_bytes) +
                           " bytes is over the 256 TiB limit");
  if (world_size == 0 || rank >= world_size)
    return InvalidArgument("rank " + std::to_string(rank) + " not in world of " +
                           std::to_string(world_size));
  if (iteration < 0) return InvalidArgument("negative iteration");
  if (chunk_size < 4096 || chunk_size > (1u << 30))
    return InvalidArgument("chunk size must be in [4 KiB, 1 GiB]");
  if (entries.size() > kMaxEntries) return InvalidArgument("too many tensors");
  if (is_fragment()) {
    const Fragment& f = fragment;
    if (f.data < 1 || f.parity < 1 || f.data + f.parity > 255)
      return InvalidArgument("fragment of rs:" + std::to_string(f.data) + "+" +
                             std::to_string(f.parity) + ": K, F >= 1 and K+F <= 255");
    if (f.index >= f.data + f.parity)
      return InvalidArgument("fragment " + std::to_string(f.index) + " of " +
                             std::to_string(f.data + f.parity));
    if (f.shard_bytes > kMaxDataBytes) return InvalidArgument("fragment of a shard over 256 TiB");
    if (data_bytes != (f.shard_bytes + f.data - 1) / f.data)
      return InvalidArgument("fragment of " + std::to_string(data_bytes) + " bytes for a " +
                             std::to_string(f.shard_bytes) + "-byte shard cut in " +
                             std::to_string(f.data));
    if (f.shard_crcs.size() != (f.shard_bytes + chunk_size - 1) / chunk_size)
      return InvalidArgument("fragment carries " + std::to_string(f.shard_crcs.size()) +
                             " shard CRCs");
  } else if (fragment.data != 0 || fragment.parity != 0 || fragment.shard_bytes != 0 ||
             !fragment.shard_crcs.empty()) {
    return InvalidArgument("fragment fields on a whole shard");
  }
  std::vector<std::pair<uint64_t, uint64_t>> spans;
  spans.reserve(entries.size());
  for (const auto& e : entries) {
    GEMINI_RETURN_IF_ERROR(ValidateEntry(e, shard_bytes()));
    if (e.length > 0) spans.emplace_back(e.offset, e.offset + e.length);
  }
  std::sort(spans.begin(), spans.end());
  for (size_t i = 1; i < spans.size(); ++i)
    if (spans[i].first < spans[i - 1].second) return InvalidArgument("tensor pieces overlap");
  return Status::Ok();
}

std::string Manifest::Encode() const {
  Writer w;
  w.PutU32(kMagic);
  w.PutU8(is_fragment() ? kFragmentVersion : kVersion);
  w.PutString(job);
  w.PutI64(iteration);
  w.PutU32(rank);
  w.PutU32(world_size);
  w.PutU64(chunk_size);
  w.PutU64(data_bytes);
  w.PutU32(static_cast<uint32_t>(entries.size()));
  for (const auto& e : entries) {
    w.PutString(e.name);
    w.PutU8(static_cast<uint8_t>(e.dtype));
    w.PutU8(static_cast<uint8_t>(e.shape.size()));
    for (int64_t d : e.shape) w.PutI64(d);
    w.PutU64(e.offset);
    w.PutU64(e.length);
    w.PutU64(e.tensor_offset);
  }
  if (is_fragment()) {
    w.PutU32(static_cast<uint32_t>(fragment.index));
    w.PutU32(fragment.data);
    w.PutU32(fragment.parity);
    w.PutU64(fragment.shard_bytes);
    w.PutU64(fragment.shard_crcs.size());
    for (uint32_t c : fragment.shard_crcs) w.PutU32(c);
  }
  w.PutU32(Crc32c(w.str().data(), w.str().size()));
  return w.Take();
}

Result<Manifest> Manifest::Decode(std::string_view bytes) {
  if (bytes.size() < 4 + 1 + 4) return InvalidArgument("manifest truncated");
  Reader crc_reader(bytes.substr(bytes.size() - 4));
  uint32_t want = 0;
  crc_reader.GetU32(&want);
  if (Crc32c(bytes.data(), bytes.size() - 4) != want) return DataLoss("manifest CRC32C mismatch");
  Reader r(bytes.substr(0, bytes.size() - 4));
  uint32_t magic = 0, count = 0;
  uint8_t version = 0;
  Manifest m;
  if (!r.GetU32(&magic) || magic != kMagic) return InvalidArgument("not a manifest (bad magic)");
  if (!r.GetU8(&version) || (version != kVersion && version != kFragmentVersion))
    return InvalidArgument("unsupported manifest version");
  if (!r.GetString(&m.job, 256) || !r.GetI64(&m.iteration) || !r.GetU32(&m.rank) ||
      !r.GetU32(&m.world_size) || !r.GetU64(&m.chunk_size) || !r.GetU64(&m.data_bytes) ||
      !r.GetU32(&count))
    return InvalidArgument("manifest truncated in header");
  // Each entry takes at least 4+1+1+24 bytes: reject counts the input cannot hold.
  if (count > kMaxEntries || count > r.remaining() / 30)
    return InvalidArgument("manifest claims " + std::to_string(count) + " tensors");
  m.entries.resize(count);
  for (auto& e : m.entries) {
    uint8_t dtype = 0, ndim = 0;
    if (!r.GetString(&e.name, kMaxNameBytes) || !r.GetU8(&dtype) || !r.GetU8(&ndim))
      return InvalidArgument("manifest truncated in tensor entry");
    if (dtype >= static_cast<uint8_t>(Dtype::kCount))
      return InvalidArgument("tensor '" + e.name + "': unknown dtype " + std::to_string(dtype));
    if (ndim > kMaxRank) return InvalidArgument("tensor '" + e.name + "': too many dimensions");
    e.dtype = static_cast<Dtype>(dtype);
    e.shape.resize(ndim);
    for (auto& d : e.shape)
      if (!r.GetI64(&d)) return InvalidArgument("manifest truncated in shape");
    if (!r.GetU64(&e.offset) || !r.GetU64(&e.length) || !r.GetU64(&e.tensor_offset))
      return InvalidArgument("manifest truncated in tensor entry");
  }
  if (version == kFragmentVersion) {
    uint32_t index = 0, data = 0, parity = 0;
    uint64_t crcs = 0;
    if (!r.GetU32(&index) || !r.GetU32(&data) || !r.GetU32(&parity) ||
        !r.GetU64(&m.fragment.shard_bytes) || !r.GetU64(&crcs))
      return InvalidArgument("manifest truncated in fragment");
    if (index > 254 || data > 255 || parity > 255 || crcs > r.remaining() / 4)
      return InvalidArgument("manifest claims an impossible fragment");
    m.fragment.index = static_cast<int32_t>(index);
    m.fragment.data = static_cast<uint16_t>(data);
    m.fragment.parity = static_cast<uint16_t>(parity);
    m.fragment.shard_crcs.resize(crcs);
    for (uint32_t& c : m.fragment.shard_crcs) r.GetU32(&c);
  }
  if (!r.done()) return InvalidArgument("manifest has trailing bytes");
  GEMINI_RETURN_IF_ERROR(m.Validate());
  return m;
}

}  // namespace gemini
