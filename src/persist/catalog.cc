#include "persist/catalog.h"

#include <algorithm>
#include <cstdio>

#include "common/crc32c.h"
#include "persist/layout.h"
#include "persist/shard_file.h"

namespace gemini {
namespace {

constexpr char kMarkerHead[] = "gemini-complete 2";
constexpr char kMarkerMagic[] = "gemini-complete ";
constexpr char kCrcKey[] = "crc32c ";
constexpr uint64_t kMaxMarkerBytes = 16u << 20;
constexpr uint32_t kMaxWorld = 1u << 20;

bool ParseDecimal(std::string_view s, uint64_t* out) {
  if (s.empty() || s.size() > 18) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *out = v;
  return true;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    lines.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return lines;
}

// "key value" -> value, or false when the line has another key.
bool Field(std::string_view line, std::string_view key, std::string_view* value) {
  if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ' ')
    return false;
  *value = line.substr(key.size() + 1);
  return true;
}

Status ParseRanks(std::string_view list, uint32_t world_size, std::vector<uint32_t>* ranks) {
  for (std::string_view rest = list; !rest.empty();) {
    size_t sp = rest.find(' ');
    uint64_t r = 0;
    if (!ParseDecimal(rest.substr(0, sp), &r) || r != ranks->size())
      return InvalidArgument("COMPLETE marker: ranks must be 0.." + std::to_string(world_size - 1));
    ranks->push_back(static_cast<uint32_t>(r));
    rest = sp == std::string_view::npos ? std::string_view() : rest.substr(sp + 1);
  }
  if (ranks->size() != world_size)
    return InvalidArgument("COMPLETE marker lists " + std::to_string(ranks->size()) +
                           " ranks for a world of " + std::to_string(world_size));
  return Status::Ok();
}

Status CheckMarkerCrc(std::string_view text, size_t* body_end) {
  size_t pos = text.rfind(kCrcKey);
  if (pos == std::string_view::npos || (pos > 0 && text[pos - 1] != '\n') ||
      text.size() != pos + sizeof(kCrcKey) - 1 + 9 || text.back() != '\n')
    return DataLoss("COMPLETE marker has no well-formed crc32c line (truncated?)");
  unsigned int want = 0;
  std::string hex(text.substr(pos + sizeof(kCrcKey) - 1, 8));
  if (std::sscanf(hex.c_str(), "%8x", &want) != 1)
    return DataLoss("COMPLETE marker has a malformed crc32c");
  if (Crc32c(text.data(), pos) != want) return DataLoss("COMPLETE marker CRC32C mismatch");
  *body_end = pos;
  return Status::Ok();
}

Status MissingRanks(const std::string& root, const std::string& job, const IterationKey& key,
                    uint32_t world_size, PersistEnv* env) {
  std::string list;
  uint32_t missing = 0;
  for (uint32_t r = 0; r < world_size; ++r) {
    if (env->FileExists(ShardPath(root, job, key, r))) continue;
    if (++missing <= 16) list += (list.empty() ? "" : ", ") + std::to_string(r);
  }
  if (missing == 0) return Status::Ok();
  if (missing > 16) list += ", ...";
  return FailedPrecondition("job " + job + " " + key.ToString() + ": " + std::to_string(missing) +
                            " of " + std::to_string(world_size) +
                            " ranks have no shard file yet (" + list + ")");
}

bool IgnorableRemoveError(const Status& st) { return st.ok() || st.code() == Code::kNotFound; }

// Deletes one iteration directory, marker first.
Status RemoveIteration(PersistEnv* env, const std::string& dir) {
  Status st = env->RemoveFile(dir + "/" + kCompleteMarkerName);
  if (!IgnorableRemoveError(st)) return st;
  auto names = env->ListDir(dir);
  if (!names.ok()) return IgnorableRemoveError(names.status()) ? Status::Ok() : names.status();
  for (const auto& name : *names) {
    st = env->RemoveFile(dir + "/" + name);
    if (!IgnorableRemoveError(st)) return st;
  }
  st = env->RemoveDir(dir);
  return IgnorableRemoveError(st) ? Status::Ok() : st;
}

}  // namespace

std::string CompleteMarker::Encode() const {
  std::string text = std::string(kMarkerHead) + "\njob " + job + "\niteration " +
                     std::to_string(iteration) + "\nepoch " + std::to_string(epoch) +
                     "\nworld_size " + std::to_string(world_size) + "\nranks";
  for (uint32_t r : ranks) text += " " + std::to_string(r);
  text += "\n";
  char crc[32];
  std::snprintf(crc, sizeof(crc), "%s%08x\n", kCrcKey, Crc32c(text.data(), text.size()));
  return text + crc;
}

Result<CompleteMarker> CompleteMarker::Decode(std::string_view text) {
  size_t body_end = 0;
  GEMINI_RETURN_IF_ERROR(CheckMarkerCrc(text, &body_end));
  auto lines = SplitLines(text.substr(0, body_end));
  if (!lines.empty() && lines[0] != kMarkerHead &&
      lines[0].substr(0, sizeof(kMarkerMagic) - 1) == kMarkerMagic)
    return InvalidArgument("unsupported COMPLETE marker version " +
                           std::string(lines[0].substr(sizeof(kMarkerMagic) - 1)) +
                           " (this build reads " + kMarkerHead + ", with the epoch)");
  std::string_view job, iter, epoch, world, ranks;
  if (lines.size() != 6 || lines[0] != kMarkerHead || !Field(lines[1], "job", &job) ||
      !Field(lines[2], "iteration", &iter) || !Field(lines[3], "epoch", &epoch) ||
      !Field(lines[4], "world_size", &world) || !Field(lines[5], "ranks", &ranks))
    return InvalidArgument(std::string("not a COMPLETE marker (") + kMarkerHead + ")");
  CompleteMarker m;
  m.job = std::string(job);
  GEMINI_RETURN_IF_ERROR(ValidateJobName(m.job));
  uint64_t it = 0, ep = 0, w = 0;
  if (!ParseDecimal(iter, &it) || !ParseDecimal(epoch, &ep) || !ParseDecimal(world, &w) || w == 0 ||
      w > kMaxWorld)
    return InvalidArgument("COMPLETE marker: bad iteration, epoch or world_size");
  m.iteration = static_cast<int64_t>(it);
  m.epoch = static_cast<int64_t>(ep);
  m.world_size = static_cast<uint32_t>(w);
  GEMINI_RETURN_IF_ERROR(ParseRanks(ranks, m.world_size, &m.ranks));
  return m;
}

Result<std::vector<IterationKey>> ListIterations(PersistEnv* env, const std::string& root,
                                                 const std::string& job) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(job));
  auto names = env->ListDir(JobDir(root, job));
  if (!names.ok() && names.status().code() == Code::kNotFound) return std::vector<IterationKey>{};
  if (!names.ok()) return names.status();
  std::vector<IterationKey> keys;
  for (const auto& name : *names)
    if (auto key = ParseIterationDirName(name)) keys.push_back(*key);
  std::sort(keys.begin(), keys.end());
  return keys;
}

Status MarkComplete(PersistEnv* env, const std::string& root, const std::string& job,
                    const IterationKey& key, uint32_t world_size) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(job));
  GEMINI_RETURN_IF_ERROR(ValidateKey(key));
  if (world_size == 0 || world_size > kMaxWorld)
    return InvalidArgument("MarkComplete: bad world size");
  if (IsComplete(env, root, job, key)) return Status::Ok();
  GEMINI_RETURN_IF_ERROR(MissingRanks(root, job, key, world_size, env));
  CompleteMarker marker{job, key.iteration, key.epoch, world_size, {}};
  for (uint32_t r = 0; r < world_size; ++r) {
    GEMINI_RETURN_IF_ERROR(ReadShardInfoFor(env, root, {job, r, key, world_size}).status());
    marker.ranks.push_back(r);
  }
  return WriteFileAtomically(env, CompleteMarkerPath(root, job, key), marker.Encode());
}

bool IsComplete(PersistEnv* env, const std::string& root, const std::string& job,
                const IterationKey& key) {
  auto text = ReadSmallFile(env, CompleteMarkerPath(root, job, key), kMaxMarkerBytes);
  if (!text.ok()) return false;
  auto marker = CompleteMarker::Decode(*text);
  if (!marker.ok() || marker->job != job || marker->iteration != key.iteration ||
      marker->epoch != key.epoch)
    return false;
  for (uint32_t r : marker->ranks)
    if (!env->FileExists(ShardPath(root, job, key, r))) return false;
  return true;
}

Result<std::vector<IterationKey>> ListComplete(PersistEnv* env, const std::string& root,
                                               const std::string& job) {
  GEMINI_ASSIGN_OR_RETURN(std::vector<IterationKey> keys, ListIterations(env, root, job));
  std::vector<IterationKey> complete;
  for (const IterationKey& key : keys)
    if (IsComplete(env, root, job, key)) complete.push_back(key);
  return complete;
}

Result<IterationKey> NewestComplete(PersistEnv* env, const std::string& root,
                                    const std::string& job) {
  GEMINI_ASSIGN_OR_RETURN(std::vector<IterationKey> keys, ListIterations(env, root, job));
  for (auto it = keys.rbegin(); it != keys.rend(); ++it)
    if (IsComplete(env, root, job, *it)) return *it;
  return NotFound("job " + job + " has no complete persisted iteration under " + root);
}

Result<std::vector<IterationKey>> ApplyRetention(PersistEnv* env, const std::string& root,
                                                 const std::string& job, int keep,
                                                 const std::set<IterationKey>& protect) {
  if (keep < 1) return InvalidArgument("retention must keep at least 1 complete iteration");
  GEMINI_ASSIGN_OR_RETURN(std::vector<IterationKey> keys, ListIterations(env, root, job));
  std::vector<IterationKey> complete, removed;
  for (const IterationKey& key : keys)
    if (IsComplete(env, root, job, key)) complete.push_back(key);
  if (complete.size() < static_cast<size_t>(keep)) return removed;
  IterationKey cutoff = complete[complete.size() - static_cast<size_t>(keep)];
  Status first;
  for (const IterationKey& key : keys) {
    if (key >= cutoff || protect.count(key)) continue;
    Status st = RemoveIteration(env, IterationDir(root, job, key));
    if (st.ok()) removed.push_back(key);
    if (!st.ok() && first.ok()) first = st;
  }
  if (!first.ok()) return first;
  return removed;
}

}  // namespace gemini
