// What the namespace harness reports when a job ends (`gemini launch
// --report FILE`, JSON; `gemini demo` compares two runs' final states):
//
//   {"final_iteration": I, "final_state_crc": C, "epochs": E,
//    "events": [{"kind", "inject", "injected_at_iteration", "detect_s",
//                "resume_s", "resumed_iteration", "iterations_lost",
//                "source", "plan_kind", ...}, ...],
//    "memory": {"hosts": [{"host", "own_bytes", "held_bytes", "factor"}],
//               "factor_max": F}}
//
// Per injected fault (a Fired, kept by the harness as it fires them): its
// detection (the first plan made after it) and recovery (the first plan from
// then on whose trainers resumed) times.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "agent/cluster/plan.h"
#include "coord/kv_store.h"
#include "harness/inject.h"

namespace gemini::harness {

// A fault the harness injected, and what it saw around it.
struct Fired {
  Injection inj;
  double at = 0;                    // Wall time of the injection.
  int64_t complete = -1;            // Complete iteration when it fired.
  double etcd_back = 0;             // stop-etcd: when etcd is (negative: was) resumed.
  double thaw_at = 0;               // freeze-host: when the host is (negative: was) resumed.
  int64_t complete_at_resume = -1;  // stop-etcd: complete iteration when etcd came back.
  double completion_resumed = 0;    // stop-etcd: when `complete` advanced again.
  int frozen_ns = -1;               // freeze-host: the namespace frozen.
};

// The report of a job whose last plan is `plan`, less "memory": the final
// state from the trainers' final-state file (`logs`/final.json), and per
// fault its times, from the job's keys in `kv` (plans/<epoch>, which the
// harness keeps, and the trainers' resumed/<epoch>/ records).
nlohmann::json Report(KvStore& kv, const Plan& plan, const std::vector<Fired>& fired,
                      const std::string& logs);

// The report's "memory": what each host's store keeps of the newest
// iteration of every rank it holds (its own ranks' shards, and what it holds
// of others': replicas or fragments), from the status of the agents at
// `sockets` (every machine started; those not serving a member host are
// left out). {} when no agent answered.
nlohmann::json Memory(const std::vector<std::string>& sockets, const std::string& job, int nproc);

}  // namespace gemini::harness
