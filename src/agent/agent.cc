#include "agent/agent.h"

#include <sys/resource.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "agent/replication/peer_protocol.h"
#include "agent/replication/tcp_channel.h"
#include "common/log.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/prefix_kv_store.h"
#include "gemini/placement.h"
#include "persist/env.h"
#include "transport/tcp/dial.h"
#include "transport/tcp/tcp_listener.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kDialTimeout{3000};
constexpr milliseconds kFetchTimeout{10 * 60 * 1000};

Deadline In(milliseconds d) { return std::chrono::steady_clock::now() + d; }

// Runs an etcd call up to three times while it times out or cannot connect:
// recovery must not fail on one slow answer.
template <typename Fn>
auto Retried(Fn fn) -> decltype(fn()) {
  auto r = fn();
  for (int i = 1;
       i < 3 && !r.ok() &&
       (r.status().code() == Code::kDeadlineExceeded || r.status().code() == Code::kUnavailable);
       ++i)
    r = fn();
  return r;
}

// The store status JSON of a peer agent.
Result<nlohmann::json> PeerStatus(transport::Connection& conn) {
  GEMINI_RETURN_IF_ERROR(transport::SendFrame(conn, kPeerStatus, "", In(kDialTimeout)));
  GEMINI_ASSIGN_OR_RETURN(
      auto reply, transport::RecvFrame(conn, transport::FrameLimits{{kPeerStatusReply, 64 << 20}},
                                       In(kDialTimeout)));
  std::string body;
  GEMINI_RETURN_IF_ERROR(DecodeStatusReply(reply.payload, &body));
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return Internal("peer status is not JSON");
  return j;
}

// Adds what one host's store holds of `job` to ranks[rank]["held_by"]. The
// store status comes from a peer: anything not shaped as expected is skipped.
void MergeHoldings(const nlohmann::json& store, uint32_t host, const std::string& job,
                   nlohmann::json& ranks) {
  const auto array = [](const nlohmann::json& j, const char* key) {
    return j.is_object() && j.contains(key) && j[key].is_array() ? j[key] : nlohmann::json::array();
  };
  for (const auto& j : array(store, "jobs")) {
    if (!j.is_object() || j.value("job", nlohmann::json()) != job) continue;
    for (const auto& r : array(j, "ranks")) {
      if (!r.is_object() || !r.contains("rank") || !r["rank"].is_number_unsigned()) continue;
      nlohmann::json its = nlohmann::json::array(), holding{{"host", host}};
      for (const auto& s : array(r, "slots"))
        if (s.is_object() && s.value("state", nlohmann::json()) == "committed" &&
            s.contains("iteration") && s["iteration"].is_number_integer()) {
          its.push_back(s["iteration"]);
          if (s.contains("fragment") && s["fragment"].is_number_integer())
            holding["fragment"] = s["fragment"];  // rs:K+F: which fragment it keeps.
        }
      holding["iterations"] = its;
      ranks[std::to_string(r["rank"].get<uint64_t>())]["held_by"].push_back(holding);
    }
  }
}

}  // namespace

Agent::Agent(AgentOptions options) : options_(std::move(options)) {
  if (options_.cluster) options_.store.coordinated_job = options_.cluster->job;
  store_ = std::make_unique<Store>(options_.store);
}

Agent::~Agent() { Stop(); }

Status Agent::Start() {
  AgentHooks hooks;
  if (options_.cluster) {
    GEMINI_RETURN_IF_ERROR(StartCluster());
    hooks.on_commit = [this](const std::string& job, uint32_t rank, int64_t it) {
      OnTrainerCommit(job, rank, it);
    };
    hooks.fetch = [this](const std::string& job, uint32_t rank, int64_t it, int64_t from) {
      return Fetch(job, rank, it, from);
    };
    hooks.on_event = [this](const std::string& job, uint32_t rank, int64_t it, uint32_t kind,
                            int op, double t) {
      if (!IsGenerationOf(options_.cluster->job, job)) return Status::Ok();
      return interleaver_->OnEvent(rank, it, static_cast<TimelineEvent>(kind), op, t);
    };
    hooks.wait_due = [this](const std::string& job, uint32_t rank, int64_t it, bool before_step,
                            milliseconds timeout) {
      if (!IsGenerationOf(options_.cluster->job, job)) return Status::Ok();
      return interleaver_->WaitDue(rank, it, before_step,
                                   std::chrono::steady_clock::now() + timeout);
    };
    hooks.schedule_json = [this](const std::string& job) -> Result<std::string> {
      if (!IsGenerationOf(options_.cluster->job, job))
        return NotFound("this agent serves job '" + options_.cluster->job + "'");
      return ScheduleToJson(interleaver_->GetSchedule()).dump();
    };
  }
  hooks.status_json = [this] { return StatusJson(); };
  hooks.on_capture = [this](double s, uint64_t b) { metrics_.RecordCapture(s, b); };
  GEMINI_RETURN_IF_ERROR(StartMetrics());
  server_ = std::make_unique<AgentServer>(store_.get(), options_.socket, std::move(hooks));
  return server_->Start();
}

Status Agent::StartMetrics() {
  if (options_.metrics_port < 0) return Status::Ok();
  metrics_server_ = std::make_unique<MetricsServer>(&metrics_, [this] { return Gauges(); });
  GEMINI_ASSIGN_OR_RETURN(metrics_port_,
                          metrics_server_->Start(options_.metrics_addr, options_.metrics_port));
  return Status::Ok();
}

std::vector<ScrapeReading> Agent::Gauges() {
  auto s = nlohmann::json::parse(store_->StatusJson());
  std::vector<ScrapeReading> g{
      {"gemini_memory_used_bytes", "Shared memory the store's slots use now",
       s["used_bytes"].get<double>()},
      {"gemini_memory_budget_bytes", "Shared memory the store may use (--budget)",
       s["budget_bytes"].get<double>()}};
  if (options_.cluster) {
    const std::string job = Layout()->store_job();
    ReplicatorStats r = replicator_->stats();
    ProtectionReport protection = CheckProtection();
    const auto kCounter = ScrapeReading::kCounter;
    g.insert(g.end(),
             {{"gemini_complete_iteration",
               "Newest complete iteration: every shard and all its replicas stored (-1: none)",
               static_cast<double>(store_->CompleteIteration(job))},
              {"gemini_replicated_shards_total", "Shards sent to peer agents",
               static_cast<double>(r.shards_sent), kCounter},
              {"gemini_replicated_bytes_total", "Bytes of shards sent to peer agents",
               static_cast<double>(r.bytes_sent), kCounter},
              {"gemini_replication_failures_total", "Shard sends to peer agents that failed",
               static_cast<double>(r.failures), kCounter},
              {"gemini_protected",
               "1 when every shard committed here became complete within 10 s, else 0",
               protection.is_protected ? 1.0 : 0.0},
              {"gemini_unprotected_since_iteration",
               "First iteration committed here but not complete in time (-1: protected)",
               static_cast<double>(protection.unprotected_since)}});
  }
  return g;
}

Status Agent::StartCluster() {
  const ClusterOptions& c = *options_.cluster;
  if (c.job.empty()) return InvalidArgument("cluster mode needs --job");
  if (c.host >= c.num_hosts)
    return InvalidArgument("--host-id " + std::to_string(c.host) + " must be below --hosts " +
                           std::to_string(c.num_hosts));
  redundancy_ = c.redundancy;
  config_.num_hosts = c.num_hosts;
  config_.redundancy = redundancy_;
  GEMINI_ASSIGN_OR_RETURN(transport::JobSecret secret, transport::JobSecret::Load(c.secret_file));
  secret_ = secret;
  EtcdOptions eo;
  eo.endpoints = c.etcd;
  eo.tls = c.etcd_tls;
  std::shared_ptr<KvStore> base = c.kv ? c.kv : NewEtcdKvStore(eo);
  kv_ = std::make_shared<PrefixKvStore>(base, "/gemini/" + c.job + "/");
  InterleaveOptions io = c.interleave;
  if (c.launch) {
    GEMINI_RETURN_IF_ERROR(LoadJobConfig());
    GEMINI_ASSIGN_OR_RETURN(io.mode, ParseInterleaveMode(config_.interleave_mode));
    io.buffer_bytes = config_.buffer_bytes;
    io.sub_buffers = config_.sub_buffers;
    io.mu = config_.mu;
    io.warmup_iterations = config_.warmup_iterations;
    io.replication_nice = config_.replication_nice;
    redundancy_ = config_.redundancy;  // The launcher's word over this agent's flags.
  }
  // Every host of the job until a plan says otherwise (launch mode: the worker
  // sets each epoch's, SetLayout).
  GEMINI_ASSIGN_OR_RETURN(layout_, JobLayout::Make(c.job, config_, {}));
  peer_service_ = std::make_unique<PeerService>(
      store_.get(), c.job, [this](const std::string& job, uint32_t r) { return Owns(job, r); },
      io.replication_nice, [this](const ReplicatedReport& r) { return OnReport(r); });
  GEMINI_ASSIGN_OR_RETURN(auto listener, transport::TcpListener::Listen(c.listen_addr, c.port));
  uint16_t port = listener->port();
  peer_server_ = std::make_unique<transport::PeerServer>(
      std::move(listener), secret, PeerServerOptionsFor(c.job, c.num_hosts),
      [this](transport::Connection& conn) { return peer_service_->Serve(conn); });
  GEMINI_RETURN_IF_ERROR(peer_server_->Start());
  coord_ = std::make_unique<JobCoordinator>(kv_, HostInfo{c.host, c.advertise_addr, port, {}},
                                            c.lease_ttl_s);
  GEMINI_RETURN_IF_ERROR(coord_->Register([](const Status& st) {
    GEMINI_LOG(ERROR) << "[agent] heartbeat lease lost: " << st.ToString();
  }));
  if (!c.launch) coord_->KeepRegistered(milliseconds(500));
  coord_->WatchComplete([this](int64_t epoch, int64_t it) {
    {
      // An iteration of this epoch, of its store job; under the lock, so that
      // a worker entering the next epoch (SetLayout, then resetting the
      // store's complete iterations) never sees it land after its reset.
      std::lock_guard<std::mutex> lock(mu_);
      if (options_.cluster->launch && layout_epoch_ != epoch) return;
      store_->SetExternalComplete(layout_->store_job(), it);
    }
    protection_.OnComplete(it);
  });
  GEMINI_ASSIGN_OR_RETURN(interleaver_, Interleaver::Create(io));
  ReplicatorOptions ro{c.job, c.host, c.num_hosts, redundancy_};
  if (c.launch) {  // Completion through the root (completion.h).
    std::vector<uint32_t> ranks;
    for (uint32_t i = 0; i < config_.nproc_per_host; ++i)
      ranks.push_back(c.host * config_.nproc_per_host + i);
    tracker_ = std::make_unique<CompletionTracker>(coord_.get(), config_.num_hosts);
    root_link_ = std::make_unique<RootLink>(
        &coord_->kv(), [this](const HostInfo& h) { return Dial(h, milliseconds(1000)); });
    reporter_ = std::make_unique<CompletionReporter>(
        coord_.get(), ranks,
        [this](uint32_t root, const ReplicatedReport& r) { return SendReport(root, r); });
    ro.on_replicated = [this](uint32_t rank, int64_t epoch, int64_t iteration) {
      reporter_->Replicated(rank, epoch, iteration);
    };
  }
  replicator_ = std::make_unique<Replicator>(
      store_.get(), coord_.get(),
      [this](const HostInfo& h) -> Result<std::unique_ptr<Channel>> {
        GEMINI_ASSIGN_OR_RETURN(auto conn, Dial(h));
        return std::unique_ptr<Channel>(new TcpChannel(std::move(conn)));
      },
      interleaver_.get(), ro);
  if (c.launch) GEMINI_RETURN_IF_ERROR(StartLaunchMode());
  GEMINI_LOG(INFO) << "[agent] host " << c.host << " of job " << c.job << " serving peers on "
                   << c.advertise_addr << ":" << port;
  return Status::Ok();
}

Status Agent::LoadJobConfig() {
  Result<KeyValue> cfg = NotFound("no config");
  for (int i = 0; i < 300 && !cfg.ok(); ++i) {  // The launcher writes it first.
    cfg = kv_->Get("config", In(kDialTimeout));
    if (!cfg.ok()) std::this_thread::sleep_for(milliseconds(100));
  }
  if (!cfg.ok()) return Unavailable("job config not found in etcd: " + cfg.status().ToString());
  GEMINI_ASSIGN_OR_RETURN(config_, DecodeJobConfig(cfg->value));
  if (config_.num_hosts != options_.cluster->num_hosts)
    return InvalidArgument("--hosts disagrees with the job config");
  // The trainer command and environment are this agent's own (its command
  // line), whatever a config written into etcd may say.
  config_.command = options_.cluster->command;
  config_.env = options_.cluster->env;
  if (config_.command.empty())
    return InvalidArgument("launch mode needs the trainer command on the agent's command line");
  return Status::Ok();
}

Status Agent::StartLaunchMode() {
  const ClusterOptions& c = *options_.cluster;
  if (!config_.persist_dir.empty() && config_.persist_every > 0) {
    PersistOptions po;
    po.root = config_.persist_dir;
    po.every_iterations = config_.persist_every;
    po.every_seconds = 0;  // Only P: every machine must pick the same iterations.
    GEMINI_ASSIGN_OR_RETURN(persist_, PersistentTier::Open(PersistEnv::Posix(), po));
  }
  worker_ = std::make_unique<Worker>(
      WorkerContext{c.job, c.host, options_.socket, c.log_dir, config_, store_.get(), coord_.get(),
                    [this](const std::string& job, uint32_t rank, int64_t it) {
                      return Fetch(job, rank, it, -1);
                    },
                    &metrics_,
                    [this](int64_t epoch, LayoutPtr current, LayoutPtr resume) {
                      SetLayout(epoch, std::move(current), std::move(resume));
                    }});
  root_ = std::make_unique<RootAgent>(
      RootContext{c.job, c.host, config_, static_cast<double>(c.lease_ttl_s), coord_.get(),
                  [this](const HostInfo& h) { return Dial(h, milliseconds(700)).ok(); }});
  worker_->Start();
  root_->Start();
  tracker_->Start();
  reporter_->Start();
  reports_open_ = true;
  return Status::Ok();
}

void Agent::Persist(const std::string& job, uint32_t rank, int64_t iteration) {
  if (!persist_ || iteration % config_.persist_every != 0) return;
  auto pin = store_->Pin(job, rank, iteration);
  if (!pin.ok()) return;
  // Written straight from the pinned slot (no copy outside the store's
  // budget); the slot is not reused until the tier is done with it. Under
  // the store job: each world size's files apart.
  auto offered = persist_->OfferPinned(job, rank, iteration, coord_->epoch(), std::move(*pin));
  if (!offered.ok()) GEMINI_LOG(WARN) << "[agent] persist: " << offered.status().ToString();
}

bool Agent::fenced() const { return worker_ && worker_->fenced(); }

void Agent::Stop() {
  if (metrics_server_) metrics_server_->Stop();
  reports_open_ = false;
  if (reporter_) reporter_->Stop();
  if (tracker_) tracker_->Stop();
  if (root_) root_->Stop();
  if (worker_) worker_->Stop();
  if (interleaver_) interleaver_->Stop();
  if (server_) server_->Stop();
  if (persist_) persist_->Stop();
  if (replicator_) replicator_->Stop();
  if (peer_server_) peer_server_->Stop();
  if (coord_) coord_->Stop();
}

std::string Agent::peer_address() const {
  return coord_ ? coord_->self().addr + ":" + std::to_string(coord_->self().port) : "";
}

LayoutPtr Agent::Layout() {
  std::lock_guard<std::mutex> lock(mu_);
  return layout_;
}

void Agent::SetLayout(int64_t epoch, LayoutPtr current, LayoutPtr resume) {
  const uint32_t self = options_.cluster->host;
  {
    std::lock_guard<std::mutex> lock(mu_);
    layout_ = current;
    layout_epoch_ = epoch;
    resume_ = resume;
    std::vector<uint32_t> ranks = current->Ranks(self);
    owned_ranks_ = std::set<uint32_t>(ranks.begin(), ranks.end());
  }
  replicator_->SetLayout(current);
  tracker_->SetMembers(epoch, current->members());
  reporter_->SetRanks(current->Ranks(self));
  Status st = coord_->SetRanks(current->Ranks(self));
  if (!st.ok()) GEMINI_LOG(WARN) << "[agent] publishing ranks: " << st.ToString();
}

bool Agent::Owns(const std::string& job, uint32_t rank) {
  std::lock_guard<std::mutex> lock(mu_);
  if (options_.cluster->launch) {  // Ranks follow from the members.
    // Replicas arriving now are of this epoch's world; the resume world's
    // shards are only fetched.
    const JobLayout* l = job == layout_->store_job()              ? layout_.get()
                         : resume_ && job == resume_->store_job() ? resume_.get()
                                                                  : nullptr;
    if (l == nullptr) return false;
    auto host = l->HostOfRank(rank);
    return host.ok() && *host == options_.cluster->host;
  }
  return job == options_.cluster->job && owned_ranks_.count(rank) > 0;
}

void Agent::OnTrainerCommit(const std::string& job, uint32_t rank, int64_t iteration) {
  if (job != Layout()->store_job()) return;  // Other jobs stay local.
  bool fresh = false;
  std::vector<uint32_t> ranks;
  {
    std::lock_guard<std::mutex> lock(mu_);
    fresh = owned_ranks_.insert(rank).second;
    ranks.assign(owned_ranks_.begin(), owned_ranks_.end());
  }
  if (fresh) {
    Status st = coord_->SetRanks(ranks);
    if (!st.ok()) GEMINI_LOG(ERROR) << "[agent] publishing ranks: " << st.ToString();
  }
  protection_.OnCommit(iteration);
  (void)CheckProtection();  // Warns once when protection is lost.
  replicator_->OnCommit(rank, iteration);
  if (worker_) worker_->OnCommit(rank, iteration);
  Persist(job, rank, iteration);
}

Result<std::unique_ptr<transport::Connection>> Agent::Dial(const HostInfo& host,
                                                           milliseconds timeout) {
  return transport::DialPeer(host.addr, host.port, *secret_, options_.cluster->job, In(timeout));
}

Status Agent::OnReport(const ReplicatedReport& report) {
  if (!reports_open_) return FailedPrecondition("this agent takes no completion reports now");
  if (!root_->is_root())
    return FailedPrecondition("host " + std::to_string(options_.cluster->host) +
                              " is not the root");
  return tracker_->Record(report);
}

Status Agent::SendReport(uint32_t root, const ReplicatedReport& report) {
  if (root == options_.cluster->host) return OnReport(report);
  return root_link_->Send(root, report);
}

Result<LayoutPtr> Agent::LayoutOf(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  // What is fetched in an epoch is its resume iteration: of the resume world
  // (even when this world's store job has the same name).
  if (resume_ && job == resume_->store_job()) return resume_;
  if (job == layout_->store_job()) return layout_;
  return NotFound("this agent serves job '" + options_.cluster->job + "' (store job '" +
                  layout_->store_job() + "' now), not '" + job + "'");
}

Result<uint32_t> Agent::OwnerOf(const JobLayout& layout, uint32_t rank) {
  if (options_.cluster->launch) return layout.HostOfRank(rank);  // Ranks follow from members.
  GEMINI_ASSIGN_OR_RETURN(uint32_t owner, Retried([&] { return coord_->HostOfRank(rank); }));
  if (!layout.Has(owner)) return Internal("rank's host out of range");
  return owner;
}

Result<int64_t> Agent::Fetch(const std::string& job, uint32_t rank, int64_t iteration,
                             int64_t from) {
  const ClusterOptions& c = *options_.cluster;
  GEMINI_ASSIGN_OR_RETURN(LayoutPtr layout, LayoutOf(job));
  if (redundancy_.erasure() && from < 0) return FetchFragments(*layout, rank, iteration);
  std::vector<uint32_t> candidates;
  if (from >= 0) {
    candidates.push_back(static_cast<uint32_t>(from));
  } else {
    GEMINI_ASSIGN_OR_RETURN(uint32_t owner, OwnerOf(*layout, rank));
    for (uint32_t h : layout->Holders(owner))
      if (h != c.host) candidates.push_back(h);
    // Resharding epochs: every member prepared all of the resume world's
    // shards, so any of them can serve one its holders no longer can.
    LayoutPtr now = Layout();
    if (now->members() != layout->members())
      for (uint32_t h : now->members())
        if (h != c.host && std::find(candidates.begin(), candidates.end(), h) == candidates.end())
          candidates.push_back(h);
  }
  GEMINI_ASSIGN_OR_RETURN(auto hosts, Retried([&] { return coord_->Hosts(); }));
  Status last = NotFound("no live holder of rank " + std::to_string(rank));
  for (uint32_t h : candidates) {
    if (!hosts.count(h)) continue;
    auto conn = Dial(hosts[h]);
    if (!conn.ok()) {
      last = conn.status();
      continue;
    }
    uint64_t writer;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writer = next_fetch_writer_++;
    }
    auto got = FetchInto(**conn, store_.get(), writer, job, rank, iteration, kFetchTimeout);
    if (got.ok()) {
      GEMINI_LOG(INFO) << "[agent] fetched rank " << rank << " iteration " << *got << " from host "
                       << h;
      return got;
    }
    last = got.status();
  }
  return last;
}

Result<int64_t> Agent::FetchFragments(const JobLayout& layout, uint32_t rank, int64_t iteration) {
  const ClusterOptions& c = *options_.cluster;
  const std::string& job = layout.store_job();
  GEMINI_ASSIGN_OR_RETURN(uint32_t owner, OwnerOf(layout, rank));
  GEMINI_ASSIGN_OR_RETURN(auto hosts, Retried([&] { return coord_->Hosts(); }));
  const std::vector<uint32_t> group = layout.Holders(owner);
  GEMINI_ASSIGN_OR_RETURN(Redundancy code, FragmentScheme(redundancy_, group.size()));
  const uint64_t max_bytes = options_.store.budget_bytes;
  // Whom to ask, best first: the owner (its whole shard), this machine (no
  // transfer), then the group by position: data fragments need no decoding.
  std::vector<size_t> order;
  auto add = [&](size_t i) {
    if (std::find(order.begin(), order.end(), i) == order.end()) order.push_back(i);
  };
  for (size_t i = 0; i < group.size(); ++i)
    if (group[i] == owner) add(i);
  for (size_t i = 0; i < group.size(); ++i)
    if (group[i] == c.host) add(i);
  for (size_t i = 0; i < group.size(); ++i) add(i);
  std::vector<Result<FetchedPiece>> got(group.size(), Unavailable("not asked"));
  std::vector<bool> asked(group.size(), false);
  std::vector<FetchedPiece> pieces;
  // Asks `which` in parallel (this machine's own piece is copied out of its slot).
  auto ask = [&](const std::vector<size_t>& which) {
    std::vector<std::thread> threads;
    for (size_t i : which) {
      asked[i] = true;
      const uint32_t h = group[i];
      if (h == c.host) {
        got[i] = [&]() -> Result<FetchedPiece> {
          GEMINI_ASSIGN_OR_RETURN(auto pin, store_->Pin(job, rank, iteration));
          FetchedPiece piece{pin->manifest, pin->crcs, {}};
          piece.data.assign(pin->data, pin->data + pin->manifest.data_bytes);
          return piece;
        }();
      } else if (!hosts.count(h)) {
        got[i] = Unavailable("host " + std::to_string(h) + " is not registered");
      } else {
        threads.emplace_back([&, i, info = hosts[h]] {
          auto conn = Dial(info);
          got[i] = conn.ok() ? FetchPiece(**conn, job, rank, iteration, max_bytes, kFetchTimeout)
                             : Result<FetchedPiece>(conn.status());
        });
      }
    }
    for (std::thread& t : threads) t.join();
    for (size_t i : which)
      if (got[i].ok()) pieces.push_back(std::move(*got[i]));
  };
  auto missing = [&] {
    std::string out;
    for (size_t i = 0; i < group.size(); ++i)
      if (asked[i] && !got[i].ok())
        out += "; host " + std::to_string(group[i]) + ": " + got[i].status().message();
    return out;
  };
  // First just enough of the live ones (K, or the owner alone); then the rest.
  std::vector<size_t> first, rest;
  int counted = 0;
  for (size_t i : order) {
    const uint32_t h = group[i];
    if (h != c.host && !hosts.count(h)) continue;
    (counted < code.data ? first : rest).push_back(i);
    counted += h == owner ? code.data : 1;
  }
  Status last = NotFound("no live member of rank " + std::to_string(rank) + "'s group");
  for (const std::vector<size_t>* round : {&first, &rest}) {
    if (round->empty()) continue;
    ask(*round);
    std::vector<ShardPieces> shards = GroupPieces(pieces);
    std::stable_sort(shards.begin(), shards.end(), [](const ShardPieces& a, const ShardPieces& b) {
      return a.manifest.iteration > b.manifest.iteration;  // Newest first (iteration -1).
    });
    if (shards.empty())
      last = NotFound("nothing of rank " + std::to_string(rank) + " iteration " +
                      std::to_string(iteration) + " survives in its group" + missing());
    for (const ShardPieces& shard : shards) {
      if (!shard.enough()) {
        last = NotFound(std::to_string(shard.fragments) + " fragments of rank " +
                        std::to_string(rank) + " iteration " +
                        std::to_string(shard.manifest.iteration) + " survive, " +
                        std::to_string(shard.needed) + " are needed" + missing());
        continue;
      }
      uint64_t writer;
      {
        std::lock_guard<std::mutex> lock(mu_);
        writer = next_fetch_writer_++;
      }
      auto grant = store_->Begin(writer, shard.manifest, kFetchTimeout);
      if (!grant.ok()) return grant.status();
      close(grant->fd);
      Status st = RebuildShard(shard, grant->data);
      if (st.ok()) st = store_->Commit(writer, job, rank, shard.manifest.iteration, shard.crcs);
      if (!st.ok()) {
        store_->AbortWriter(writer);
        last = st;
        continue;
      }
      GEMINI_LOG(INFO) << "[agent] rebuilt rank " << rank << " iteration "
                       << shard.manifest.iteration << " from "
                       << (shard.whole ? "a whole copy"
                                       : std::to_string(shard.fragments) + " fragments")
                       << " held by its group";
      return shard.manifest.iteration;
    }
  }
  return last;
}

}  // namespace gemini

namespace gemini {

ProtectionReport Agent::CheckProtection() {
  std::string reason;
  if (replicator_) {
    ReplicatorStats r = replicator_->stats();
    if (!r.last_error.empty()) reason = "replication to the holders is failing: " + r.last_error;
  }
  if (reason.empty() && coord_ && coord_->lease_id() == kNoLease)
    reason = "this agent is not registered in etcd (heartbeat lease lost)";
  return protection_.Check(reason);
}

std::string Agent::StatusJson() {
  auto out = nlohmann::json::parse(store_->StatusJson());
  if (!options_.cluster) return out.dump();
  const ClusterOptions& c = *options_.cluster;
  auto hosts = coord_->Hosts();
  auto complete = coord_->Complete();
  LayoutPtr layout = Layout();
  nlohmann::json cluster{{"job", c.job},
                         {"store_job", layout->store_job()},
                         {"host", c.host},
                         {"num_hosts", c.num_hosts},
                         {"members", layout->members()},
                         {"replicas", redundancy_.copies},
                         {"redundancy", redundancy_.ToString()},
                         {"complete_iteration", complete.ok() ? *complete : -1},
                         {"protection", nullptr},
                         {"hosts", nlohmann::json::array()},
                         {"ranks", nlohmann::json::object()}};
  if (!hosts.ok()) cluster["error"] = hosts.status().ToString();
  ProtectionReport protection = CheckProtection();
  cluster["protection"] = {{"protected", protection.is_protected},
                           {"unprotected_since", protection.unprotected_since},
                           {"reason", protection.reason}};
  for (const auto& [id, h] : hosts.ok() ? *hosts : std::map<uint32_t, HostInfo>{}) {
    nlohmann::json hj{
        {"host", id}, {"address", h.addr + ":" + std::to_string(h.port)}, {"ranks", h.ranks}};
    for (uint32_t r : h.ranks) {
      auto& rj = cluster["ranks"][std::to_string(r)];
      rj["owner"] = id;
      if (layout->Has(id)) rj["holders"] = layout->Holders(id);
      if (!rj.contains("held_by")) rj["held_by"] = nlohmann::json::array();
    }
    Result<nlohmann::json> st = out;
    if (id != c.host) {
      auto conn = Dial(h);
      st = conn.ok() ? PeerStatus(**conn) : Result<nlohmann::json>(conn.status());
    }
    if (st.ok()) {
      MergeHoldings(*st, id, layout->store_job(), cluster["ranks"]);
      hj["used_bytes"] = (*st)["used_bytes"];
    } else {
      hj["error"] = st.status().ToString();
    }
    cluster["hosts"].push_back(hj);
  }
  cluster["interleave"] = interleaver_->ToJson();
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  cluster["agent_cpu_s"] =
      ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
  out["cluster"] = cluster;
  return out.dump();
}

}  // namespace gemini
