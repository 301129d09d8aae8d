// Catalog: which persisted iterations of a job are complete, and retention.
//
// An iteration directory is complete when a COMPLETE marker sits in it and
// every rank file the marker lists exists. The marker is written (atomically)
// only by MarkComplete, and only once rank files 0..world_size-1 are all
// there and each one's header and manifest read back as that rank's shard of
// that iteration. On a machine that holds only its own ranks MarkComplete
// fails with FailedPrecondition; on a shared network mount the last writer's
// call succeeds. Several machines may race to write the same marker: each
// writes the same content under its own temp name and renames it into place.
//
// Marker format (text, so people can read it):
//   gemini-complete 1
//   job <job>
//   iteration <n>
//   world_size <w>
//   ranks 0 1 ... w-1
//   crc32c <8 hex digits: CRC32C of every byte before this line>
//
// Retention keeps the K newest complete iterations and deletes every
// iteration directory older than the K-th newest complete one (complete or
// not, with any leftover temp files), except those in `protect` (iterations
// being written). It never deletes the newest complete iteration, nor any
// iteration newer than the K-th newest complete one (those may still be
// being written by other machines); with fewer than K complete iterations it
// deletes nothing. A directory is deleted marker first, so a crash midway
// leaves an incomplete iteration, never a "complete" one with missing files.
//
// All functions are thread-safe; the filesystem is the only shared state.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "persist/env.h"

namespace gemini {

struct CompleteMarker {
  std::string job;
  int64_t iteration = 0;
  uint32_t world_size = 0;
  std::vector<uint32_t> ranks;  // 0..world_size-1 in order.

  std::string Encode() const;
  // InvalidArgument / DataLoss for anything but a well-formed, intact marker.
  static Result<CompleteMarker> Decode(std::string_view text);
};

// Iterations that have a directory under <root>/<job>, ascending; empty if
// the job has no directory.
Result<std::vector<int64_t>> ListIterations(PersistEnv* env, const std::string& root,
                                            const std::string& job);

// Writes the COMPLETE marker of `iteration` (see above). OK if it was already
// complete; FailedPrecondition naming the missing ranks; the error of a rank
// file that is there but unreadable or not that rank's shard.
Status MarkComplete(PersistEnv* env, const std::string& root, const std::string& job,
                    int64_t iteration, uint32_t world_size);

// Whether `iteration` is complete: an intact marker for it, and every rank
// file it lists exists. (Rank files are fully verified only when read.)
bool IsComplete(PersistEnv* env, const std::string& root, const std::string& job,
                int64_t iteration);

// Complete iterations, ascending.
Result<std::vector<int64_t>> ListComplete(PersistEnv* env, const std::string& root,
                                          const std::string& job);

// The newest complete iteration; NotFound if there is none.
Result<int64_t> NewestComplete(PersistEnv* env, const std::string& root, const std::string& job);

// Applies retention (see above) with K = keep (>= 1); returns the iterations
// it deleted, ascending. Deletes what it can and returns the first error.
Result<std::vector<int64_t>> ApplyRetention(PersistEnv* env, const std::string& root,
                                            const std::string& job, int keep,
                                            const std::set<int64_t>& protect = {});

}  // namespace gemini
