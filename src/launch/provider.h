// Machine providers: how a job gets a new machine for a lost host when no
// standby is left.
//
// The root asks by writing provider/requests/<host> (value: the plan's
// epoch). A ProviderService serves those requests with a MachineProvider,
// which brings up a machine that runs the job's node launcher with
//   gemini launch <the job's flags> --replace-host <host> SCRIPT ARGS...
// (no rendezvous: it takes over the host id). A replacement that never comes
// is not fatal: at the plan's --prepare-timeout the root goes on with fewer
// machines (--nnodes MIN:MAX) or fails the job with the reason.
//
// Implementations:
//   CommandProvider   a user's command (a script that asks a scheduler for a
//                     node, ssh, kubectl ...): `gemini provider --command`
//   namespace hosts   the harness's (harness/launcher.cc): a new network
//                     namespace on this machine
//   FakeProvider      tests: records what it was asked for
// Every implementation passes provider_test.cc's shared suite.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "coord/kv_store.h"

namespace gemini {

class MachineProvider {
 public:
  virtual ~MachineProvider() = default;
  // Brings up a machine that takes over host id `host` of the job; OK once
  // it is on its way (it registers with the job by itself).
  virtual Status Replace(uint32_t host) = 0;
};

// Runs `command` with /bin/sh -c, its environment extended by
// GEMINI_REPLACE_HOST=<host> and GEMINI_JOB=<job>. The command must start
// the machine and return (e.g. `sbatch`, `ssh node 'nohup gemini launch
// ... --replace-host "$GEMINI_REPLACE_HOST" ... &'`); its exit status is the
// result (an error after `timeout`). Its output is appended to `log_file`
// ("" = this process's stderr).
class CommandProvider : public MachineProvider {
 public:
  CommandProvider(std::string command, std::string job, std::chrono::milliseconds timeout,
                  std::string log_file = "");
  Status Replace(uint32_t host) override;

 private:
  const std::string command_, job_;
  const std::chrono::milliseconds timeout_;
  const std::string log_file_;
};

// Tests: records every host it was asked for; fails while `fail` is set.
class FakeProvider : public MachineProvider {
 public:
  Status Replace(uint32_t host) override;
  std::vector<uint32_t> asked();
  void set_fail(bool fail);

 private:
  std::mutex mu_;
  std::vector<uint32_t> asked_;
  bool fail_ = false;
};

// Serves a job's provider requests (`job_kv` is confined to the job's
// prefix). Only a host the current plan replaces (Plan::Replaces) gets a
// machine: a forged request for a live host would put a second agent on its
// host id. A request is deleted once served, refused, or failed `tries`
// times; a failed one is tried again `retry_after` later (a scheduler that
// was briefly out of nodes). Each outcome is logged.
class ProviderService {
 public:
  using Log = std::function<void(const std::string&)>;
  ProviderService(std::shared_ptr<KvStore> job_kv, MachineProvider* provider, Log log,
                  int tries = 3, std::chrono::milliseconds retry_after = std::chrono::seconds(5));
  // One pass over the requests; how many machines were asked for.
  int ServeOnce();
  // Whether a failed request is due to be tried again (call ServeOnce).
  bool RetryDue();

 private:
  struct Failed {
    int tries = 0;
    std::chrono::steady_clock::time_point next;
  };
  const std::shared_ptr<KvStore> kv_;
  MachineProvider* const provider_;
  const Log log_;
  const int tries_;
  const std::chrono::milliseconds retry_after_;
  std::map<std::string, Failed> failed_;  // by request key and value (its epoch)
};

}  // namespace gemini
