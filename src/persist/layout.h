// Layout of the persistent tier's directory tree.
//
//   <root>/<job>/iter-<iteration, zero-padded to 12 digits>/
//       rank-<rank>.gshard       one rank's shard (shard_file.h)
//       COMPLETE                 marker: every rank of the world is there (catalog.h)
//       <name>.tmp-<pid>-<n>     a file being written; never read, removed with its
//                                iteration directory by retention
//
// Job names become directory names, so they are restricted to letters,
// digits, '.', '_' and '-', must not start with '.', and have at most 256
// bytes. Pure functions except CreateDirs; all thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "persist/env.h"

namespace gemini {

inline constexpr char kCompleteMarkerName[] = "COMPLETE";

// InvalidArgument unless `job` is usable as one directory name (see above).
Status ValidateJobName(const std::string& job);

std::string JobDir(const std::string& root, const std::string& job);
// "iter-000000000100".
std::string IterationDirName(int64_t iteration);
std::string IterationDir(const std::string& root, const std::string& job, int64_t iteration);
// "rank-3.gshard".
std::string ShardFileName(uint32_t rank);
std::string ShardPath(const std::string& root, const std::string& job, int64_t iteration,
                      uint32_t rank);
std::string CompleteMarkerPath(const std::string& root, const std::string& job, int64_t iteration);

// "iter-000000000100" -> 100; nullopt for any other name (temp files included).
std::optional<int64_t> ParseIterationDirName(const std::string& name);

// Creates every missing directory of `path` (like mkdir -p), fsyncing the
// parent of each one it creates so that the new entry is durable.
Status CreateDirs(PersistEnv* env, const std::string& path);

}  // namespace gemini
