// Catalog: which persisted iterations of a job are complete, and retention.
//
// The unit is an IterationKey, (iteration, epoch): one iteration of one
// timeline, one directory (layout.h). It is complete when a COMPLETE marker
// sits in its directory, names that job, iteration and epoch, and every rank
// file the marker lists exists. The marker is written (atomically) only by
// MarkComplete, and only once rank files 0..world_size-1 are all there and
// each one's header and manifest read back as that rank's shard of that
// iteration of that epoch and world size. On a machine that holds only its own ranks MarkComplete
// fails with FailedPrecondition; on a shared network mount the last writer's
// call succeeds. Several machines may race to write the same marker: each
// writes the same content under its own temp name and renames it into place.
//
// Marker format, version 2 (text, so people can read it):
//   gemini-complete 2
//   job <job>
//   iteration <n>
//   epoch <e>
//   world_size <w>
//   ranks 0 1 ... w-1
//   crc32c <8 hex digits: CRC32C of every byte before this line>
// Markers of another version are InvalidArgument "unsupported COMPLETE marker
// version" (version 1 had no epoch); an iteration with one is not complete.
//
// Retention keeps the K newest complete keys and deletes every key's
// directory older than the K-th newest complete one (complete or not, of any
// timeline, with any leftover temp files), except those in `protect` (keys
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
#include "persist/layout.h"

namespace gemini {

struct CompleteMarker {
  std::string job;
  int64_t iteration = 0;
  int64_t epoch = 0;
  uint32_t world_size = 0;
  std::vector<uint32_t> ranks;  // 0..world_size-1 in order.

  std::string Encode() const;
  // InvalidArgument / DataLoss for anything but a well-formed, intact marker.
  static Result<CompleteMarker> Decode(std::string_view text);
};

// Keys that have a directory under <root>/<job>, ascending; empty if the
// job has no directory.
Result<std::vector<IterationKey>> ListIterations(PersistEnv* env, const std::string& root,
                                                 const std::string& job);

// Writes the COMPLETE marker of `key` (see above). OK if it was already
// complete; FailedPrecondition naming the missing ranks; the error of a rank
// file that is there but unreadable or not that rank's shard of that key.
Status MarkComplete(PersistEnv* env, const std::string& root, const std::string& job,
                    const IterationKey& key, uint32_t world_size);

// Whether `key` is complete: an intact marker naming it, and every rank
// file it lists exists. (Rank files are fully verified only when read.)
bool IsComplete(PersistEnv* env, const std::string& root, const std::string& job,
                const IterationKey& key);

// Complete keys, ascending.
Result<std::vector<IterationKey>> ListComplete(PersistEnv* env, const std::string& root,
                                               const std::string& job);

// The newest complete key; NotFound if there is none.
Result<IterationKey> NewestComplete(PersistEnv* env, const std::string& root,
                                    const std::string& job);

// Applies retention (see above) with K = keep (>= 1); returns the keys it
// deleted, ascending. Deletes what it can and returns the first error.
Result<std::vector<IterationKey>> ApplyRetention(PersistEnv* env, const std::string& root,
                                                 const std::string& job, int keep,
                                                 const std::set<IterationKey>& protect = {});

}  // namespace gemini
