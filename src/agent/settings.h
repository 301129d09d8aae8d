// The agent's settings as a command line types them (`gemini agent` and
// `gemini launch`: --replicas/--redundancy, --interleave, --buffer, ...),
// unparsed, so that a launcher hands them on verbatim to the agents it
// starts; To*() parse them. The CLI11 flags that fill them are src/cli's
// (redundancy_flags.h, interleave_flags.h).
//
//   RedundancyFlags  --replicas M | --redundancy SPEC  -> ToRedundancy
//   InterleaveFlags  --interleave, --buffer, ...        -> ToInterleaveOptions
#pragma once

#include <cstdint>
#include <string>

#include "agent/interleave/interleaver.h"
#include "common/status.h"
#include "gemini/placement.h"

namespace gemini {

// copies:M (full copies, --replicas M) or rs:K+F (Reed–Solomon fragments,
// include/gemini/placement.h); the two flags exclude each other.
struct RedundancyFlags {
  int replicas = 0;        // 0: not given.
  std::string redundancy;  // "": not given.
};

// What the flags ask for; `fallback` when neither was given.
Result<Redundancy> ToRedundancy(const RedundancyFlags& f,
                                Redundancy fallback = Redundancy::Copies(2));

// Traffic interleaving (agent/interleave/interleaver.h).
struct InterleaveFlags {
  std::string mode = "interleave";
  std::string buffer = "128MiB";
  uint32_t sub_buffers = 4;
  double mu = 0.9;
  int warmup = 20;
  int replication_nice = 10;
};

Result<InterleaveOptions> ToInterleaveOptions(const InterleaveFlags& f);

}  // namespace gemini
