// EtcdProcess: a single-member etcd server run as a child process, for tests,
// the demo and the launcher.
//
// Start() picks free ports (unless given), creates a temporary directory for
// the data and the log (unless a data dir is given), starts /usr/bin/etcd
// listening on `host`, and returns once etcd answers requests. The object owns
// the child: Stop() (also run by the destructor) kills exactly that pid with
// SIGKILL, reaps it, and removes the temporary directory. With
// die_with_parent (default) the kernel also kills the child when the thread
// that started it exits (PR_SET_PDEATHSIG), so a crashed test leaves no etcd
// behind; start it from a thread that outlives its use.
//
// Thread safety: none; one owner drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/status.h"
#include "coord/http_client.h"

namespace gemini {

// The etcd binary Gemini starts: $GEMINI_ETCD if set, else `etcd` on PATH,
// else Debian's /usr/bin/etcd (package etcd-server).
std::string DefaultEtcdBinary();

struct EtcdProcessOptions {
  // The etcd binary. Empty: DefaultEtcdBinary().
  std::string binary;
  // Address to listen on for clients and peers. Default loopback; a cluster
  // bridge address (scripts/cluster) makes it reachable from every host.
  std::string host = "127.0.0.1";
  // Ports; 0 = pick a free one (and retry on a lost race).
  int client_port = 0;
  int peer_port = 0;
  // Where etcd keeps its data. Empty (default) = a fresh temporary directory,
  // removed by Stop(); a given directory is left in place.
  std::string data_dir;
  // Short raft timers (heartbeat 10 ms, election 50 ms by default), so that
  // leases honor TTLs down to 1 s (etcd's default floor is 2 s). Default on.
  bool fast_timers = true;
  int heartbeat_ms = 10;
  int election_ms = 50;
  // Membership: this member's name, and the whole cluster as etcd's
  // --initial-cluster ("name=peer-url,..."; empty: this member alone). See
  // EtcdCluster for several members.
  std::string name = "gemini";
  std::string initial_cluster;
  // Start() returns once etcd answers (default), or right after starting it
  // (a member whose cluster has no quorum yet): then call AwaitReady().
  // History and size limits, so a long job never fills etcd: every write
  // adds a revision, and without compaction the database grows until etcd
  // refuses writes. Periodic compaction keeps this much history (etcd's
  // --auto-compaction-retention, e.g. "5m", "1h"); the quota is etcd's
  // --quota-backend-bytes (beyond it etcd raises NOSPACE and refuses writes).
  std::string compaction_retention = "5m";
  uint64_t quota_backend_bytes = 4ull << 30;
  // TLS. With server_tls.cert_file and key_file etcd serves clients over
  // https; with server_tls.ca_file too it accepts only clients whose
  // certificate that CA signed (--client-cert-auth). probe_tls is what
  // Start() connects with to see etcd up (the CA, and a client certificate
  // when one is required). scripts/etcd-dev makes such files for tests.
  TlsFiles server_tls;
  TlsFiles probe_tls;
  // SIGKILL etcd when the starting thread exits (see above). Default on.
  bool die_with_parent = true;
  bool wait_ready = true;
  // How long Start() waits for etcd to answer. Default 15 s.
  std::chrono::milliseconds start_timeout{15000};
};

class EtcdProcess {
 public:
  // kNotFound if the binary is missing; kUnavailable if etcd did not come up
  // (the end of its log is in the message).
  static Result<std::unique_ptr<EtcdProcess>> Start(EtcdProcessOptions options);
  ~EtcdProcess();
  EtcdProcess(const EtcdProcess&) = delete;
  EtcdProcess& operator=(const EtcdProcess&) = delete;

  // "http://host:port", for EtcdOptions::endpoints.
  const std::string& endpoint() const { return endpoint_; }
  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // Returns once this member answers (start_timeout, probe_tls of Start).
  Status AwaitReady();
  // A port that was free a moment ago on `host` (0 on failure).
  static int PickPort(const std::string& host);

  // Kills (SIGKILL) and reaps the server, removes the temporary directory.
  // Idempotent.
  void Stop();
  // SIGSTOP / SIGCONT: a hung server (requests time out instead of failing).
  // Pause returns once the server has stopped.
  Status Pause();
  Status Resume();

 private:
  EtcdProcess() = default;
  Status Launch(const EtcdProcessOptions& options, int client_port, int peer_port);
  Status WaitReady(std::chrono::milliseconds timeout, const TlsFiles& tls);
  void Kill();  // the child only

  pid_t pid_ = -1;
  std::chrono::milliseconds start_timeout_{15000};
  TlsFiles probe_tls_;
  std::string endpoint_;
  std::string temp_dir_;  // removed by Stop() when non-empty
  std::string log_path_;
};

}  // namespace gemini
