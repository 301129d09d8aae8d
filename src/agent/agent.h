// Agent: everything `gemini agent` runs on one machine, wired together.
//
// Always: the Store (shared-memory slots) and the AgentServer (Unix socket
// for trainers). With cluster options (multi-machine mode) also:
//   - a JobCoordinator: this host registered in etcd under a lease (its
//     heartbeat), the job's complete iteration watched and fed to the store;
//   - a PeerServer: authenticated TCP listener serving replicas, fetches and
//     status to peer agents (PeerService);
//   - a Replicator: every trainer commit is sent to the other holders that
//     the mixed placement names, then recorded in etcd.
// Stop() tears down in reverse order. Thread-safe after Start().
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/agent_server.h"
#include "agent/cluster/job_coordinator.h"
#include "agent/metrics.h"
#include "agent/protection.h"
#include "agent/recovery/root.h"
#include "agent/recovery/worker.h"
#include "agent/replication/completion.h"
#include "agent/replication/peer_service.h"
#include "agent/replication/replicator.h"
#include "coord/http_client.h"
#include "coord/kv_store.h"
#include "persist/persistent_tier.h"
#include "store/store.h"
#include "transport/handshake.h"
#include "transport/peer_server.h"

namespace gemini {

struct ClusterOptions {
  std::string job;                                // Required: the job this agent serves.
  uint32_t host = 0;                              // This machine's id, 0..num_hosts-1.
  uint32_t num_hosts = 1;                         // Machines in the job (N).
  Redundancy redundancy = Redundancy::Copies(2);  // copies:M (own included) or rs:K+F.
  std::vector<std::string> etcd;                  // etcd endpoints, e.g. http://10.0.0.1:2379.
  TlsFiles etcd_tls;             // For https:// endpoints (CA, client cert and key).
  std::string advertise_addr;    // Address peers connect to.
  std::string listen_addr;       // Address to bind ("" = every address).
  uint16_t port = 0;             // Peer port (0 = any free one).
  std::string secret_file;       // Job secret file; "" = $GEMINI_SECRET.
  int64_t lease_ttl_s = 3;       // Heartbeat TTL.
  std::shared_ptr<KvStore> kv;   // Tests: used instead of etcd when set.
  bool launch = false;           // Follow the job's plan: run trainers, elect a root.
  std::string log_dir = "/tmp";  // Trainer logs (launch mode).
  // Launch mode: what trainers run, from the agent's own command line (the
  // job config in etcd never says what to execute).
  std::vector<std::string> command;
  std::map<std::string, std::string> env;
  // Traffic interleaving; in launch mode the job config's settings win.
  InterleaveOptions interleave;
};

struct AgentOptions {
  std::string socket;
  StoreOptions store;
  int metrics_port = -1;                   // Prometheus text over HTTP; -1: off, 0: any port.
  std::string metrics_addr = "127.0.0.1";  // Local by default.
  std::optional<ClusterOptions> cluster;
};

class Agent {
 public:
  explicit Agent(AgentOptions options);
  ~Agent();

  Status Start();
  void Stop();

  Store& store() { return *store_; }
  Replicator* replicator() { return replicator_.get(); }
  Interleaver* interleaver() { return interleaver_.get(); }
  JobCoordinator* coordinator() { return coord_.get(); }
  // host:port peers connect to (cluster mode).
  std::string peer_address() const;
  // Store status, plus in cluster mode the hosts, each rank's holders and
  // the iterations they hold, and the newest complete iteration.
  std::string StatusJson();
  // The metrics port (after Start), or -1.
  int metrics_port() const { return metrics_port_; }
  // Launch mode: this host was declared lost while the agent ran, and it
  // stood down (its trainers stopped; no registration). The agent should exit.
  bool fenced() const;

 private:
  Status StartCluster();
  Status StartMetrics();
  // Readings served on every metrics scrape: {name, HELP, value[, kCounter]}.
  std::vector<ScrapeReading> Gauges();
  Status LoadJobConfig();
  Status StartLaunchMode();
  void Persist(const std::string& job, uint32_t rank, int64_t iteration);
  void OnTrainerCommit(const std::string& job, uint32_t rank, int64_t iteration);
  Result<int64_t> Fetch(const std::string& job, uint32_t rank, int64_t iteration, int64_t from);
  // rs:K+F: gathers what the owner's group holds of the shard (fragments, or
  // the whole shard), in parallel, this machine's own fragment included, and
  // rebuilds it into the store.
  Result<int64_t> FetchFragments(const JobLayout& layout, uint32_t rank, int64_t iteration);
  // The layout of store job `job`: this epoch's or the one it resumes from.
  Result<LayoutPtr> LayoutOf(const std::string& job);
  // The host whose trainer owns `rank` in `layout`'s world.
  Result<uint32_t> OwnerOf(const JobLayout& layout, uint32_t rank);
  LayoutPtr Layout();
  // Launch mode: the worker entered `epoch` (members `current`, resuming from
  // the world `resume`); everything that depends on the members follows.
  void SetLayout(int64_t epoch, LayoutPtr current, LayoutPtr resume);
  Result<std::unique_ptr<transport::Connection>> Dial(
      const HostInfo& host, std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));
  bool Owns(const std::string& job, uint32_t rank);
  // Launch mode: a host's completion report, taken when this agent is the root.
  Status OnReport(const ReplicatedReport& report);
  // The reporter's delivery to host `root` (over a kept connection).
  Status SendReport(uint32_t root, const ReplicatedReport& report);

  AgentOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AgentServer> server_;
  std::shared_ptr<KvStore> kv_;
  std::unique_ptr<JobCoordinator> coord_;
  std::unique_ptr<PeerService> peer_service_;
  Protection protection_;
  ProtectionReport CheckProtection();
  std::unique_ptr<transport::PeerServer> peer_server_;
  std::unique_ptr<Interleaver> interleaver_;
  std::unique_ptr<Replicator> replicator_;
  std::unique_ptr<PersistentTier> persist_;
  Metrics metrics_;
  std::unique_ptr<MetricsServer> metrics_server_;
  int metrics_port_ = -1;
  std::unique_ptr<Worker> worker_;
  std::unique_ptr<RootAgent> root_;
  std::unique_ptr<CompletionTracker> tracker_;
  std::unique_ptr<CompletionReporter> reporter_;
  std::atomic<bool> reports_open_{false};  // tracker_ and root_ exist: OnReport may use them
  std::unique_ptr<RootLink> root_link_;    // reporter thread only
  JobConfig config_;
  Redundancy redundancy_;  // The cluster option's, or in launch mode the job config's.
  std::optional<transport::JobSecret> secret_;
  std::mutex mu_;
  std::set<uint32_t> owned_ranks_;
  LayoutPtr layout_;           // guarded by mu_: this epoch's members
  int64_t layout_epoch_ = -1;  // guarded by mu_: the epoch layout_ is for
  LayoutPtr resume_;           // guarded by mu_: the world this epoch resumes from
  uint64_t next_fetch_writer_ = uint64_t{3} << 61;
};

}  // namespace gemini
