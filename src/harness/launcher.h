// The namespace harness (tests, `gemini demo`; needs root): a whole job on
// this machine, each of its machines a network namespace. What
// `gemini launch` without --rdzv-endpoint runs:
//
//   gemini launch --hosts 4 --nproc-per-node 1 [--replicas 2 | --redundancy rs:4+2]
//       [--standby-hosts 1] [--etcd URL] [--persist-every 10] [--inject SPEC] [--report FILE]
//       -- python3 train.py ...
//
// Run makes the hosts (cluster.h), starts etcd on the bridge over TLS with
// client certificates (scripts/etcd-dev certs) unless `etcd` is given, and
// runs the per-node `gemini launch` (launch/node.h) in every host (plus
// `standby_hosts` spares), exactly what a user runs on real machines. Then
// it serves as the machine provider (launch/provider.h: a lost host's
// replacement is a new namespace host running `gemini launch --replace-host
// H`, when no standby is left), injects the faults of `inject` (inject.h),
// prints a timeline, and writes `report` (report.h): final iteration, final
// state CRC, and per failure its detection and recovery times.
//
// The flags are src/cli/launch_cmd.cc's; Run takes their values.
#pragma once

#include <string>
#include <vector>

#include "launch/job.h"

namespace gemini::harness {

struct Options {
  JobFlags job;                      // Handed on to every node's launcher.
  std::vector<std::string> command;  // The trainer command.
  std::string log_dir;               // Default: the cluster's folder.
  int hosts = 4;
  int standby_hosts = 0;
  int min_hosts = 0;  // The nodes run with --nnodes MIN:hosts (0: hosts).
  std::string etcd;   // Default: start one over TLS.
  int etcd_members = 1;
  std::string inject;
  std::string report;
  double timeout_s = 0;  // 0: none.
  bool show_placement = false;
  std::string rate;  // Link rate of each namespace host ("" = unlimited).
  int mtu = 0;       // Link MTU of each namespace host (0 = 1500).
};

// Runs the job to its end (or `timeout_s`) and tears the hosts down; the
// logs are kept when the job did not finish. Returns 0 when every trainer
// exited 0, else 1.
int Run(const Options& o);

}  // namespace gemini::harness
