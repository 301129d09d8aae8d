// The flags of `gemini launch` that describe the job (launch/job.h: JobFlags,
// what goes into its config in etcd and how each node's agent runs), shared
// by the per-node launcher and the namespace harness; and the etcd TLS flags
// of every command that talks to etcd.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/interleave_flags.h"
#include "cli/redundancy_flags.h"
#include "coord/etcd_kv_store.h"
#include "launch/job.h"

namespace gemini::cli {

void AddJobFlags(CLI::App* cmd, JobFlags* f);
// --etcd-cacert, --etcd-cert, --etcd-key (every command that talks to an
// https etcd with a client certificate).
void AddEtcdTlsFlags(CLI::App* cmd, TlsFiles* tls);

}  // namespace gemini::cli
