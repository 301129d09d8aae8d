// Rendezvous: how the nodes of a job, each running its own `gemini launch`,
// agree on who is in the job and which host id each has, through etcd (the
// job's key prefix), in the manner of torchrun's etcd rendezvous:
//
//   rdzv  {"round":R,"nodes":["addr",...],"closed":B,"min":m,"max":M,"settings":S}
//
// A node joins by compare-and-swap on `rdzv`: its address is appended, and
// its position is its host id. The round closes when `max` nodes joined, or
// when at least `min` did and nobody joined for `last_call_s`. The node that
// closes it writes, in the same transaction, the job's first records (config
// and first plan, made from its own flags for the number of nodes that
// joined), so a job exists exactly when its round is closed. A node that
// finds the round closed without it joins as a spare (`standby`) or is
// turned away with the reason. A node that finds no round, or the previous
// run of the job over (its plan done or failed, or closed long ago with no
// live host), clears the job's keys and opens the next round.
//
// Nothing read here is executed; every value is decoded with range checks.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "coord/kv_store.h"

namespace gemini {

struct RendezvousRecord {
  int64_t round = 0;
  std::vector<std::string> nodes;  // Position = host id.
  bool closed = false;
  uint32_t min_nodes = 1, max_nodes = 1;
  double closed_at = 0;  // Wall clock, when closed.
  std::string settings;  // What every node must agree on (the opener's).
};
std::string EncodeRendezvous(const RendezvousRecord& r);
Result<RendezvousRecord> DecodeRendezvous(std::string_view text);

struct RendezvousOptions {
  std::string node;  // This node's address: unique among the job's nodes.
  uint32_t min_nodes = 1, max_nodes = 1;
  // What the nodes must agree on besides --nnodes (e.g. trainers per node,
  // redundancy), as text: a node whose settings differ from the round's is
  // refused before it joins.
  std::string settings;
  double last_call_s = 3;  // With min < max: quiet time before closing short.
  double timeout_s = 600;  // Give up when the round has not closed by then.
  bool standby = false;    // Join a closed round as a spare.
  // A closed round of a job that is not over, with no live host this long
  // after closing, belongs to a run that died: it is cleared.
  double dead_after_s = 30;
  std::function<void(const std::string&)> progress;  // Human-readable lines.
};

struct RendezvousResult {
  int64_t round = 0;
  bool standby = false;  // A spare: no host id until the root assigns one.
  uint32_t host = 0;
  uint32_t num_hosts = 0;
  bool closer = false;  // This node wrote the job's first records.
};

// The records the closer writes with the closed round (key -> value, under
// the job prefix), for `num_hosts` nodes.
using JobStart = std::function<Result<std::map<std::string, std::string>>(uint32_t num_hosts)>;

Result<RendezvousResult> JoinRendezvous(KvStore& kv, const RendezvousOptions& options,
                                        const JobStart& job_start);

}  // namespace gemini
