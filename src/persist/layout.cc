#include "persist/layout.h"

#include <cstdio>

namespace gemini {
namespace {

constexpr char kIterPrefix[] = "iter-";
constexpr size_t kIterPrefixLen = sizeof(kIterPrefix) - 1;
constexpr size_t kIterDigits = 12;
constexpr size_t kMaxJobBytes = 256;

bool JobChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

}  // namespace

Status ValidateJobName(const std::string& job) {
  if (job.empty() || job.size() > kMaxJobBytes)
    return InvalidArgument("job name must have 1 to 256 bytes");
  if (job[0] == '.') return InvalidArgument("job name '" + job + "' must not start with '.'");
  for (char c : job)
    if (!JobChar(c))
      return InvalidArgument("job name '" + job +
                             "' may hold only letters, digits, '.', '_' and '-'");
  return Status::Ok();
}

std::string JobDir(const std::string& root, const std::string& job) { return root + "/" + job; }

std::string IterationDirName(int64_t iteration) {
  char buf[48];
  std::snprintf(buf, sizeof(buf), "%s%012lld", kIterPrefix, static_cast<long long>(iteration));
  return buf;
}

std::string IterationDir(const std::string& root, const std::string& job, int64_t iteration) {
  return JobDir(root, job) + "/" + IterationDirName(iteration);
}

std::string ShardFileName(uint32_t rank) { return "rank-" + std::to_string(rank) + ".gshard"; }

std::string ShardPath(const std::string& root, const std::string& job, int64_t iteration,
                      uint32_t rank) {
  return IterationDir(root, job, iteration) + "/" + ShardFileName(rank);
}

std::string CompleteMarkerPath(const std::string& root, const std::string& job, int64_t iteration) {
  return IterationDir(root, job, iteration) + "/" + kCompleteMarkerName;
}

std::optional<int64_t> ParseIterationDirName(const std::string& name) {
  if (name.size() < kIterPrefixLen + kIterDigits || name.size() > kIterPrefixLen + 18 ||
      name.compare(0, kIterPrefixLen, kIterPrefix) != 0)
    return std::nullopt;
  int64_t v = 0;
  for (size_t i = kIterPrefixLen; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    v = v * 10 + (name[i] - '0');
  }
  if (name != IterationDirName(v)) return std::nullopt;  // Only the canonical spelling.
  return v;
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
