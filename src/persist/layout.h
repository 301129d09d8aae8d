// Layout of the persistent tier's directory tree.
//
//   <root>/<job>/iter-<iteration, 12 digits>-epoch-<epoch>/
//       rank-<rank>.gshard       one rank's shard of that iteration of that
//                                timeline (shard_file.h; its header names the
//                                epoch too)
//       COMPLETE                 marker: every rank of the world is there (catalog.h)
//       <name>.tmp-<host>-<pid>-<random>  a file being written (env.h TempPathFor);
//                                never read, removed with its directory by retention
//
// The epoch is the job's timeline (agent/cluster/job_coordinator.h): a recovery that
// resumes from an earlier iteration starts a new epoch, and the iterations
// the abandoned timeline had reached beyond that point are other states of
// the model than the new timeline's iterations of the same number. So the
// unit of the tier is an IterationKey, (iteration, epoch): each has its own
// directory, its own COMPLETE marker and its own files, and a file of one
// timeline is never read as (or completed with) the other's.
//
// Directories of the version-1 layout ("iter-<12 digits>" without an epoch)
// are not parsed: the catalog neither loads nor deletes them.
//
// Job names become directory names, so they are restricted to letters,
// digits, '.', '_' and '-', must not start with '.', and have at most 256
// bytes. Epochs and iterations are >= 0. Pure functions except CreateDirs;
// all thread-safe.
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "persist/env.h"
#include "store/manifest.h"

namespace gemini {

inline constexpr char kCompleteMarkerName[] = "COMPLETE";

// One iteration of one timeline. Ordered by iteration, then epoch (the same
// iteration of a later timeline is newer).
struct IterationKey {
  int64_t iteration = 0;
  int64_t epoch = 0;
  auto operator<=>(const IterationKey&) const = default;
  // "iteration 100 epoch 2".
  std::string ToString() const;
};

// Job names are checked by ValidateJobName (store/manifest.h): usable as one
// directory name.
// InvalidArgument unless iteration and epoch are both >= 0.
Status ValidateKey(const IterationKey& key);

std::string JobDir(const std::string& root, const std::string& job);
// "iter-000000000100-epoch-2".
std::string IterationDirName(const IterationKey& key);
std::string IterationDir(const std::string& root, const std::string& job, const IterationKey& key);
// "rank-3.gshard".
std::string ShardFileName(uint32_t rank);
std::string ShardPath(const std::string& root, const std::string& job, const IterationKey& key,
                      uint32_t rank);
std::string CompleteMarkerPath(const std::string& root, const std::string& job,
                               const IterationKey& key);

// "iter-000000000100-epoch-2" -> {100, 2}; nullopt for any other name (temp
// files, version-1 directories and non-canonical spellings included).
std::optional<IterationKey> ParseIterationDirName(const std::string& name);

// Creates every missing directory of `path` (like mkdir -p, mode 0700),
// fsyncing the parent of each one it creates so that the new entry is durable.
Status CreateDirs(PersistEnv* env, const std::string& path);

}  // namespace gemini
