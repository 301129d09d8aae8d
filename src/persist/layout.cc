#include "persist/layout.h"

#include <cstdio>
#include <string_view>

namespace gemini {
namespace {

constexpr char kIterPrefix[] = "iter-";
constexpr size_t kIterPrefixLen = sizeof(kIterPrefix) - 1;
constexpr char kEpochInfix[] = "-epoch-";
constexpr size_t kEpochInfixLen = sizeof(kEpochInfix) - 1;

}  // namespace

std::string JobDir(const std::string& root, const std::string& job) { return root + "/" + job; }

std::string IterationKey::ToString() const {
  return "iteration " + std::to_string(iteration) + " epoch " + std::to_string(epoch);
}

Status ValidateKey(const IterationKey& key) {
  if (key.iteration < 0 || key.epoch < 0)
    return InvalidArgument("bad persisted " + key.ToString() + ": both must be >= 0");
  return Status::Ok();
}

std::string IterationDirName(const IterationKey& key) {
  char buf[80];
  std::snprintf(buf, sizeof(buf), "%s%012lld%s%lld", kIterPrefix,
                static_cast<long long>(key.iteration), kEpochInfix,
                static_cast<long long>(key.epoch));
  return buf;
}

std::string IterationDir(const std::string& root, const std::string& job, const IterationKey& key) {
  return JobDir(root, job) + "/" + IterationDirName(key);
}

std::string ShardFileName(uint32_t rank) { return "rank-" + std::to_string(rank) + ".gshard"; }

std::string ShardPath(const std::string& root, const std::string& job, const IterationKey& key,
                      uint32_t rank) {
  return IterationDir(root, job, key) + "/" + ShardFileName(rank);
}

std::string CompleteMarkerPath(const std::string& root, const std::string& job,
                               const IterationKey& key) {
  return IterationDir(root, job, key) + "/" + kCompleteMarkerName;
}

std::optional<IterationKey> ParseIterationDirName(const std::string& name) {
  if (name.compare(0, kIterPrefixLen, kIterPrefix) != 0) return std::nullopt;
  size_t infix = name.find(kEpochInfix, kIterPrefixLen);
  if (infix == std::string::npos) return std::nullopt;
  auto number = [](std::string_view digits) -> std::optional<int64_t> {
    if (digits.empty() || digits.size() > 18) return std::nullopt;
    int64_t v = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  std::string_view view(name);
  auto iteration = number(view.substr(kIterPrefixLen, infix - kIterPrefixLen));
  auto epoch = number(view.substr(infix + kEpochInfixLen));
  if (!iteration || !epoch) return std::nullopt;
  IterationKey key{*iteration, *epoch};
  if (name != IterationDirName(key)) return std::nullopt;  // Only the canonical spelling.
  return key;
}

Status CreateDirs(PersistEnv* env, const std::string& path) {
  if (path.empty()) return InvalidArgument("empty directory path");
  size_t pos = path[0] == '/' ? 1 : 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string::npos) slash = path.size();
    if (slash > pos) {
      std::string dir = path.substr(0, slash);
      GEMINI_ASSIGN_OR_RETURN(bool created, env->CreateDir(dir));
      if (created) GEMINI_RETURN_IF_ERROR(env->SyncDir(DirName(dir)));
    }
    pos = slash + 1;
  }
  return Status::Ok();
}

}  // namespace gemini
