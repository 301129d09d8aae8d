// Fault-injection specs for `gemini launch --inject` (chaos tests):
//   kill-trainer:RANK@ITER   SIGKILL one trainer once iteration ITER is complete
//   kill-host:HOST@ITER      kill every process of host HOST and delete it
//   kill-root@ITER           the same, for the host running the root agent
//   stop-etcd:SECONDS@ITER   freeze etcd (SIGSTOP) for SECONDS, then resume it
//   kill-etcd-member:M@ITER  kill member M of the launcher's etcd (SIGKILL)
//   freeze-host:HOST:SECONDS@ITER  stop every process of host HOST (SIGSTOP)
//                            for SECONDS, then resume them: a machine that
//                            stalls past its lease and comes back
//   forge-etcd@ITER          write garbage and forged values into the job's
//                            etcd keys (a hostile writer): nothing may crash,
//                            run, or be lost
//   add-standby@ITER         start a new machine as a standby (`gemini launch
//                            --standby`): a job that shrank grows back
// Comma-separated; hosts numbered from 0. Pure parsing; thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "common/status.h"

namespace gemini::harness {

struct Injection {
  enum class Kind {
    kKillTrainer,
    kKillHost,
    kKillRoot,
    kStopEtcd,
    kFreezeHost,
    kForgeEtcd,
    kKillEtcdMember,
    kAddStandby
  };
  Kind kind;
  int64_t target = 0;   // Rank, host, or seconds.
  int64_t seconds = 0;  // freeze-host: how long.
  int64_t iteration = 0;
  std::string text;  // As written.
};

Result<std::vector<Injection>> ParseInjections(const std::string& spec);
// "software", "hardware", "root", "etcd", "etcd_member", "forged", "grow": the event kind the
// report uses.
const char* InjectionEventKind(const Injection& i);

}  // namespace gemini::harness
