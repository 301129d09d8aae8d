// `gemini bench coordination --agents N`: Gemini's coordination at scale,
// against a real etcd that the bench starts (Gemini's settings: compaction,
// space quota).
//
// N simulated agents in this process, each with what a launch-mode agent
// does with etcd and its peers, and nothing else (no store, no trainers):
// its own etcd connection (EtcdGrpcKvStore), a JobCoordinator (lease and
// heartbeat, hosts/ and ranks/ records, mirrors of plan/root/complete), a
// RootAgent (every agent campaigns; the winner detects and plans), a
// CompletionTracker and CompletionReporter over the real peer protocol (a
// PeerServer per agent, authenticated TCP on loopback), and a plan follower
// that writes ready/ records as a worker does. No state is shared between
// agents except through etcd and TCP.
//
// Phases: iterations at each --rates value (iterations/s; every agent
// reports each iteration), then, at the first rate, each --kills value: that
// many agents (never the root) crash at once (their etcd connection is cut:
// no revoke, the lease expires). The bench is the machine provider: it starts
// a replacement agent for every host a plan asks for, and training goes on
// once the root declares the new epoch running.
//
// Reported (--json for the figures):
//   complete latency  from the moment every agent was told an iteration is
//                     replicated to the moment etcd accepted the root's swap
//                     of `complete` (p50, p99, max), per rate; "seen": to the
//                     moment the bench's own watch of `complete` shows it (it
//                     waits behind the other N watchers' deliveries, all
//                     processed by this one process)
//                     split into reports_in (to the moment the root's tracker
//                     had every host's report of it) and swap (from there to
//                     etcd accepting the compare-and-swap)
//   etcd requests/s per agent  etcd's own count of gRPC messages received
//                     (unary calls, keepalives, watch creations) over the
//                     steady window / window / N; also the agents' own count
//   detect_s          crash -> the root's plan naming the host (its detected_at)
//   plan_s            detected_at -> the plan visible in etcd
//   recover_s         crash -> the new epoch running (replacements ready)
//   etcd CPU seconds per second and database size
// The baseline, measured in the same run: the same agents alive and idle (no
// iterations) for half a phase; each steady phase gives its requests/s per
// agent as a ratio to it (1.0: iterating costs etcd nothing more than being
// alive). The heartbeat floor, one keepalive per TTL/3, is printed beside it.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "agent/cluster/coord_records.h"
#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/plan.h"
#include "agent/recovery/root.h"
#include "agent/replication/completion.h"
#include "agent/replication/peer_service.h"
#include "cli/command.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_process.h"
#include "coord/http_client.h"
#include "coord/mirror.h"
#include "coord/prefix_kv_store.h"
#include "transport/peer_server.h"
#include "transport/tcp/dial.h"
#include "transport/tcp/tcp_listener.h"

namespace gemini::cli {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;
constexpr char kJob[] = "coordbench";

struct CoordArgs {
  int agents = 1024;
  std::string rates = "1,10";
  std::string kills = "1,8";
  int lease_ttl = 5;
  double phase_s = 20;
  bool json = false;
};

std::vector<int> ParseInts(const std::string& list) {
  std::vector<int> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(std::stoi(item));
  return out;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// A KvStore whose connection can be cut: after Sever() every call fails as
// if the machine were gone (the lease then expires in etcd).
class SeverableKv : public KvStore {
 public:
  explicit SeverableKv(std::shared_ptr<KvStore> kv) : kv_(std::move(kv)) {}
  void Sever() { severed_ = true; }

#define GEMINI_SEVERED \
  if (severed_) return Unavailable("machine crashed (bench)")
  Result<int64_t> Put(const std::string& k, const std::string& v, Deadline d, LeaseId l) override {
    GEMINI_SEVERED;
    return kv_->Put(k, v, d, l);
  }
  Result<KeyValue> Get(const std::string& k, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->Get(k, d);
  }
  Result<RangeResult> GetPrefix(const std::string& p, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->GetPrefix(p, d);
  }
  Result<int64_t> Delete(const std::string& k, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->Delete(k, d);
  }
  Result<int64_t> DeletePrefix(const std::string& p, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->DeletePrefix(p, d);
  }
  Result<TxnResult> Txn(const std::vector<Compare>& c, const std::vector<TxnOp>& s,
                        const std::vector<TxnOp>& f, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->Txn(c, s, f, d);
  }
  Result<LeaseInfo> LeaseGrant(int64_t ttl, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->LeaseGrant(ttl, d);
  }
  Result<int64_t> LeaseKeepAlive(LeaseId l, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->LeaseKeepAlive(l, d);
  }
  Status LeaseRevoke(LeaseId l, Deadline d) override {
    GEMINI_SEVERED;
    return kv_->LeaseRevoke(l, d);
  }
  Result<std::unique_ptr<Watch>> WatchKey(const std::string& k, bool p, int64_t r,
                                          Deadline d) override {
    GEMINI_SEVERED;
    return kv_->WatchKey(k, p, r, d);
  }
#undef GEMINI_SEVERED

 private:
  std::shared_ptr<KvStore> kv_;
  std::atomic<bool> severed_{false};
};

// One simulated agent.
class SimAgent {
 public:
  using Advanced = CompletionTracker::Advanced;
  SimAgent(uint32_t host, const std::string& endpoint, const JobConfig& config, int ttl,
           const transport::JobSecret& secret, Advanced on_advanced)
      : host_(host),
        config_(config),
        ttl_(ttl),
        secret_(secret),
        on_advanced_(std::move(on_advanced)) {
    EtcdOptions eo;
    eo.endpoints = {endpoint};
    grpc_ = std::make_shared<EtcdGrpcKvStore>(eo);
    severable_ = std::make_shared<SeverableKv>(grpc_);
    kv_ = std::make_shared<PrefixKvStore>(severable_, std::string("/gemini/") + kJob + "/");
  }

  ~SimAgent() { Stop(); }

  Status Start() {
    GEMINI_ASSIGN_OR_RETURN(auto listener, transport::TcpListener::Listen("127.0.0.1", 0));
    const uint16_t port = listener->port();
    coord_ =
        std::make_unique<JobCoordinator>(kv_, HostInfo{host_, "127.0.0.1", port, {host_}}, ttl_);
    tracker_ = std::make_unique<CompletionTracker>(coord_.get(), config_.num_hosts, on_advanced_);
    service_ = std::make_unique<PeerService>(
        nullptr, kJob, [](const std::string&, uint32_t) { return false; }, 0,
        [this](const ReplicatedReport& r) { return OnReport(r); });
    // Every simulated host dials from 127.0.0.1: the per-source handshake
    // pool, sized for one machine's connections, must hold all of them.
    auto options = PeerServerOptionsFor(kJob, config_.num_hosts);
    options.max_handshaking = options.max_handshaking_per_source =
        std::max<size_t>(options.max_handshaking, config_.num_hosts);
    server_ = std::make_unique<transport::PeerServer>(
        std::move(listener), secret_, options,
        [this](transport::Connection& c) { return service_->Serve(c); });
    GEMINI_RETURN_IF_ERROR(server_->Start());
    GEMINI_RETURN_IF_ERROR(coord_->Register());
    coord_->WatchComplete([](int64_t, int64_t) {});  // As an agent does (its store learns it).
    link_ = std::make_unique<RootLink>(kv_.get(), [this](const HostInfo& to) {
      return transport::DialPeer(to.addr, to.port, secret_, kJob,
                                 DeadlineAfter(milliseconds(2000)));
    });
    reporter_ = std::make_unique<CompletionReporter>(
        coord_.get(), std::vector<uint32_t>{host_},
        [this](uint32_t root, const ReplicatedReport& r) { return Send(root, r); });
    tracker_->Start();
    reporter_->Start();
    follower_ = std::thread([this] { FollowPlan(); });
    return Status::Ok();
  }

  // Campaigning starts once every first agent is up (a launcher starts its
  // agents after the rendezvous: none is late by seconds).
  void StartRoot() {
    root_ = std::make_unique<RootAgent>(
        RootContext{kJob, host_, config_, static_cast<double>(ttl_), coord_.get(),
                    // Only a host gone from etcd (or with a trainer exit) is
                    // probed; here that is a crashed one, whose dial would fail.
                    [](const HostInfo&) { return false; }});
    root_->Start();
    open_ = true;
  }

  // The trainers of this host committed `iteration` and it is replicated.
  void Iterate(int64_t iteration) { reporter_->Replicated(host_, coord_->epoch(), iteration); }

  // The machine dies: no more etcd traffic (the lease expires), no revoke.
  // Stop() then tears the rest down.
  void Sever() { severable_->Sever(); }

  void Stop() {
    if (stopped_.exchange(true)) return;
    open_ = false;
    stop_ = true;
    if (follower_.joinable()) follower_.join();
    if (root_) root_->Stop();
    if (reporter_) reporter_->Stop();
    if (tracker_) tracker_->Stop();
    if (server_) server_->Stop();
    link_.reset();
    if (coord_) coord_->Stop();
  }

  bool is_root() const { return root_ && root_->is_root(); }
  void StopRoot() {
    if (root_) root_->Stop();
  }
  uint32_t host() const { return host_; }
  int64_t requests() const { return grpc_->requests(); }
  uint16_t port() const { return coord_ ? coord_->self().port : 0; }

 private:
  Status OnReport(const ReplicatedReport& r) {
    if (!open_ || !root_->is_root()) return FailedPrecondition("not the root");
    return tracker_->Record(r);
  }

  Status Send(uint32_t root, const ReplicatedReport& r) {
    if (root == host_) return OnReport(r);
    return link_->Send(root, r);
  }

  // What a worker does with etcd when a plan moves the job to a new epoch.
  void FollowPlan() {
    int64_t entered = 0;
    uint64_t seen = 0;
    while (!stop_) {
      auto plan = coord_->Watched("plan");
      auto p = plan.ok() ? DecodePlan(plan->value) : Result<Plan>(plan.status());
      if (p.ok() && p->epoch > entered) {
        coord_->SetEpoch(p->epoch);
        nlohmann::json ready{{"ok", true}, {"error", ""}, {"source", "peer"}, {"at", WallNow()}};
        auto put = kv_->Put("ready/" + std::to_string(p->epoch) + "/" + std::to_string(host_),
                            ready.dump(), DeadlineAfter(milliseconds(3000)));
        if (put.ok()) entered = p->epoch;
      }
      seen = coord_->WaitWatched("plan", seen, DeadlineAfter(milliseconds(250)));
    }
  }

  const uint32_t host_;
  const JobConfig config_;
  const int ttl_;
  const transport::JobSecret secret_;
  const Advanced on_advanced_;  // the bench's clock on the root's successful advances
  std::shared_ptr<EtcdGrpcKvStore> grpc_;
  std::shared_ptr<SeverableKv> severable_;
  std::shared_ptr<KvStore> kv_;
  std::unique_ptr<JobCoordinator> coord_;
  std::unique_ptr<CompletionTracker> tracker_;
  std::unique_ptr<CompletionReporter> reporter_;
  std::unique_ptr<PeerService> service_;
  std::unique_ptr<transport::PeerServer> server_;
  std::unique_ptr<RootAgent> root_;
  std::unique_ptr<RootLink> link_;  // reporter thread only
  std::thread follower_;
  std::atomic<bool> stop_{false}, stopped_{false}, open_{false};
};

// etcd's own counters, read from its /metrics endpoint.
struct EtcdReading {
  double messages = 0;  // gRPC messages received, every method
  double cpu_s = 0;     // etcd's user + system CPU
  double db_bytes = 0;
  Clock::time_point at;
};

Result<EtcdReading> ReadEtcd(const EtcdProcess& etcd) {
  HttpClient http;
  GEMINI_ASSIGN_OR_RETURN(HttpResponse r, http.Post(etcd.endpoint() + "/metrics", "",
                                                    DeadlineAfter(milliseconds(5000))));
  EtcdReading e;
  e.at = Clock::now();
  std::stringstream in(r.body);
  for (std::string line; std::getline(in, line);) {
    auto value = [&] { return std::stod(line.substr(line.rfind(' ') + 1)); };
    if (line.rfind("grpc_server_msg_received_total{", 0) == 0) e.messages += value();
    if (line.rfind("etcd_mvcc_db_total_size_in_bytes ", 0) == 0) e.db_bytes = value();
  }
  std::ifstream stat("/proc/" + std::to_string(etcd.pid()) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  std::stringstream fields(text.substr(text.rfind(')') + 2));
  std::vector<std::string> f{std::istream_iterator<std::string>(fields), {}};
  if (f.size() > 13)
    e.cpu_s = (std::stod(f[11]) + std::stod(f[12])) / static_cast<double>(sysconf(_SC_CLK_TCK));
  return e;
}

// Everything the bench itself watches: plans (when each appeared) and
// `complete` (when each iteration became complete).

// The root's advance of `complete`: when every host's report was in at its
// tracker, and when etcd took the compare-and-swap.
struct Advance {
  Clock::time_point reported, written;
};

// The value of the first key at or after (epoch, iteration).
template <typename V>
std::optional<V> AtOrAfter(const std::map<std::pair<int64_t, int64_t>, V>& m, int64_t epoch,
                           int64_t iteration) {
  auto it = m.lower_bound({epoch, iteration});
  if (it == m.end()) return std::nullopt;
  return it->second;
}

class Observer {
 public:
  explicit Observer(std::shared_ptr<KvStore> kv)
      : plan_(kv, "plan", false, [this] { OnPlan(); }),
        complete_(kv, "complete", false, [this] { OnComplete(); }) {}
  void Start() {
    plan_.Start();
    complete_.Start();
  }
  void Stop() {
    plan_.Stop();
    complete_.Stop();
  }
  struct SeenPlan {
    Plan plan;
    double seen_at = 0;
  };
  std::vector<SeenPlan> plans() {
    std::lock_guard<std::mutex> lock(mu_);
    return plans_;
  }
  // When `complete` first reached (epoch, iteration) or beyond.
  std::optional<Clock::time_point> CompleteAt(int64_t epoch, int64_t iteration) {
    std::lock_guard<std::mutex> lock(mu_);
    return AtOrAfter(completes_, epoch, iteration);
  }
  // The root's compare-and-swap of `complete` to (epoch, iteration) succeeded.
  // `reported`: when the root's tracker found every host's report in.
  void Advanced(int64_t epoch, int64_t iteration, Clock::time_point reported) {
    std::lock_guard<std::mutex> lock(mu_);
    advances_.emplace(std::make_pair(epoch, iteration), Advance{reported, Clock::now()});
  }
  // The first advance to (epoch, iteration) or beyond: when the root had every
  // host's report, and when etcd took the swap.
  std::optional<Advance> AdvanceAt(int64_t epoch, int64_t iteration) {
    std::lock_guard<std::mutex> lock(mu_);
    return AtOrAfter(advances_, epoch, iteration);
  }
  std::optional<Plan> Current() {
    std::lock_guard<std::mutex> lock(mu_);
    if (plans_.empty()) return std::nullopt;
    return plans_.back().plan;
  }

 private:
  void OnPlan() {
    auto v = plan_.Get();
    auto p = v.ok() ? DecodePlan(v->value) : Result<Plan>(v.status());
    if (!p.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    plans_.push_back({*p, WallNow()});
  }
  void OnComplete() {
    auto v = complete_.Get();
    auto c = v.ok() ? DecodeComplete(v->value) : Result<CompleteRecord>(v.status());
    if (!c.ok()) return;
    std::lock_guard<std::mutex> lock(mu_);
    completes_.emplace(std::make_pair(c->epoch, c->iteration), Clock::now());
  }
  Mirror plan_, complete_;
  std::mutex mu_;
  std::vector<SeenPlan> plans_;
  std::map<std::pair<int64_t, int64_t>, Clock::time_point> completes_;
  std::map<std::pair<int64_t, int64_t>, Advance> advances_;
};

class CoordinationBench {
 public:
  explicit CoordinationBench(CoordArgs a) : a_(std::move(a)) {}

  int Run() {
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
      nofile.rlim_cur = nofile.rlim_max;
      setrlimit(RLIMIT_NOFILE, &nofile);
    }
    EtcdProcessOptions eo;
    auto etcd = EtcdProcess::Start(eo);
    if (!etcd.ok()) return Fail("starting etcd: " + etcd.status().ToString());
    etcd_ = std::move(*etcd);
    auto secret = transport::JobSecret::FromBytes(std::string(32, 's'));
    secret_.emplace(*secret);
    config_.num_hosts = static_cast<uint32_t>(a_.agents);
    config_.nproc_per_host = 1;
    config_.prepare_timeout_s = 120;
    config_.command = {"sim"};
    EtcdOptions o;
    o.endpoints = {etcd_->endpoint()};
    auto bench_kv = std::make_shared<PrefixKvStore>(std::make_shared<EtcdGrpcKvStore>(o),
                                                    std::string("/gemini/") + kJob + "/");
    kv_ = bench_kv;
    Plan start;
    start.epoch = 1;
    start.state = "running";
    start.kind = "start";
    start.source = "fresh";
    if (!kv_->Put("plan", EncodePlan(start), DeadlineAfter(milliseconds(5000))).ok())
      return Fail("writing the first plan");
    Progress("starting " + std::to_string(a_.agents) + " agents against etcd " + etcd_->endpoint() +
             " (lease TTL " + std::to_string(a_.lease_ttl) + " s)");
    observer_ = std::make_unique<Observer>(kv_);
    const auto t0 = Clock::now();
    for (int h = 0; h < a_.agents; ++h) {
      Status st = AddAgent(static_cast<uint32_t>(h), false);
      if (!st.ok()) return Fail("agent " + std::to_string(h) + ": " + st.ToString());
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [h, agent] : agents_) agent->StartRoot();
    }
    out_["startup_s"] = Seconds(Clock::now() - t0);
    observer_->Start();
    provider_ = std::thread([this] { Provide(); });
    WaitForRoot();

    Idle();
    nlohmann::json phases = nlohmann::json::array();
    for (int rate : ParseInts(a_.rates)) phases.push_back(Steady(rate));
    out_["steady"] = phases;
    nlohmann::json kills = nlohmann::json::array();
    for (int k : ParseInts(a_.kills)) kills.push_back(Kill(k, ParseInts(a_.rates).front()));
    out_["kills"] = kills;
    Summarize();
    if (a_.json) std::cout << out_.dump(2) << std::endl;
    stop_ = true;
    provider_.join();
    observer_->Stop();
    for (auto& t : graveyard_) t.join();
    TearDown();
    return ok_ ? 0 : 1;
  }

 private:
  // Stops every agent, roots first (agents leaving one by one are not
  // failures to plan for), several at a time.
  void TearDown() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<SimAgent*> all;
    for (auto& [h, agent] : agents_) all.push_back(agent.get());
    auto each = [&](auto fn) {
      std::atomic<size_t> next{0};
      std::vector<std::thread> workers;
      for (int t = 0; t < 64; ++t)
        workers.emplace_back([&] {
          for (size_t i; (i = next++) < all.size();) fn(all[i]);
        });
      for (auto& t : workers) t.join();
    };
    each([](SimAgent* a) { a->StopRoot(); });
    each([](SimAgent* a) { a->Stop(); });
    agents_.clear();
  }

  static double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

  int Fail(const std::string& why) {
    std::cerr << "gemini bench coordination: " << why << "\n";
    return 1;
  }
  void Progress(const std::string& line) {
    if (!a_.json) std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  }

  // `campaign`: a replacement joins the running job and campaigns at once.
  Status AddAgent(uint32_t host, bool campaign) {
    std::unique_ptr<SimAgent> agent;
    Status st;
    for (int attempt = 0; attempt < 5; ++attempt) {  // A loaded machine may time out a dial.
      agent = std::make_unique<SimAgent>(
          host, etcd_->endpoint(), config_, a_.lease_ttl, *secret_,
          [this](int64_t epoch, int64_t iteration, Clock::time_point reported) {
            observer_->Advanced(epoch, iteration, reported);
          });
      st = agent->Start();
      if (st.ok()) break;
      agent->Stop();
    }
    GEMINI_RETURN_IF_ERROR(st);
    if (campaign) agent->StartRoot();
    std::lock_guard<std::mutex> lock(mu_);
    agents_[host] = std::move(agent);
    return Status::Ok();
  }

  void WaitForRoot() {
    for (auto end = Clock::now() + std::chrono::seconds(30); Clock::now() < end;
         std::this_thread::sleep_for(milliseconds(100))) {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto& [h, agent] : agents_)
        if (agent->is_root()) {
          root_host_ = h;
          return;
        }
    }
  }

  // The machine provider: a replacement for every host a plan asks for.
  void Provide() {
    Mirror requests(kv_, "provider/requests/", true);
    requests.Start();
    uint64_t seen = 0;
    while (!stop_) {
      seen = requests.WaitChange(seen, DeadlineAfter(milliseconds(200)));
      auto reqs = requests.All();
      if (!reqs.ok()) continue;
      for (const auto& [key, r] : *reqs) {
        auto host = KeyId(r.key);
        (void)kv_->Delete(r.key, DeadlineAfter(milliseconds(2000)));
        if (!host.ok()) continue;
        {
          std::lock_guard<std::mutex> lock(mu_);
          if (agents_.count(*host)) continue;  // Alive: nothing to replace.
        }
        Status st = AddAgent(*host, true);
        if (!st.ok())
          std::cerr << "replacement for host " << *host << ": " << st.ToString() << "\n";
      }
    }
  }

  // Every live agent reports `iteration` as replicated; returns when they were told.
  Clock::time_point Tick(int64_t iteration) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& [h, agent] : agents_) agent->Iterate(iteration);
    return Clock::now();
  }

  int64_t AgentRequests() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t n = retired_requests_;
    for (auto& [h, agent] : agents_) n += agent->requests();
    return n;
  }

  // The baseline: the same agents alive and idle (heartbeats, watches, root
  // ticks; no iterations), measured in this run.
  void Idle() {
    const double seconds = std::max(2.0, a_.phase_s / 2);
    Progress("idle (baseline): " + Fmt(seconds, "%.0f") + " s with no iterations");
    std::this_thread::sleep_for(milliseconds(1000));
    auto before = ReadEtcd(*etcd_);
    std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
    auto after = ReadEtcd(*etcd_);
    if (!before.ok() || !after.ok()) return;
    const double window = Seconds(after->at - before->at);
    idle_requests_ = (after->messages - before->messages) / window / a_.agents;
    out_["idle"] = {{"window_s", window},
                    {"etcd_requests_per_s_per_agent", idle_requests_},
                    {"etcd_cpu_s_per_s", (after->cpu_s - before->cpu_s) / window}};
    Progress("  etcd requests/s per agent " + Fmt(idle_requests_, "%.3f") +
             " (heartbeat floor: one keepalive per TTL/3 = " + Fmt(3.0 / a_.lease_ttl, "%.3f") +
             ")");
  }

  nlohmann::json Steady(int rate) {
    const int64_t epoch = observer_->Current() ? observer_->Current()->epoch : 1;
    const auto period =
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / rate));
    const int64_t iterations = static_cast<int64_t>(a_.phase_s * rate);
    Progress("steady: " + std::to_string(rate) + " iteration(s)/s for " +
             std::to_string(static_cast<int>(a_.phase_s)) + " s");
    std::map<int64_t, Clock::time_point> told;
    // The first quarter of the phase warms up (connections to the root).
    const int64_t warm = iterations / 4;
    std::optional<EtcdReading> before;
    int64_t agent_before = 0;
    auto next = Clock::now();
    for (int64_t i = 0; i < iterations; ++i) {
      if (i == warm) {
        auto r = ReadEtcd(*etcd_);
        if (r.ok()) before = *r;
        agent_before = AgentRequests();
      }
      const int64_t it = ++iteration_;
      told[it] = Tick(it);
      next += period;
      std::this_thread::sleep_until(next);
    }
    auto after = ReadEtcd(*etcd_);
    const int64_t agent_after = AgentRequests();
    std::this_thread::sleep_for(milliseconds(1000));  // The last completes arrive.
    std::vector<double> latency_ms, seen_ms, reports_ms, swap_ms;
    int64_t missing = 0;
    for (const auto& [it, at] : told) {
      if (it - told.begin()->first < warm) continue;
      auto advance = observer_->AdvanceAt(epoch, it);
      auto seen = observer_->CompleteAt(epoch, it);
      if (!advance || !seen) {
        ++missing;
        continue;
      }
      latency_ms.push_back(std::max(0.0, Seconds(advance->written - at) * 1e3));
      reports_ms.push_back(std::max(0.0, Seconds(advance->reported - at) * 1e3));
      swap_ms.push_back(std::max(0.0, Seconds(advance->written - advance->reported) * 1e3));
      seen_ms.push_back(std::max(0.0, Seconds(*seen - at) * 1e3));
    }
    nlohmann::json j;
    j["iterations_per_s"] = rate;
    j["iterations"] = iterations - warm;
    j["never_complete"] = missing;
    j["complete_ms_p50"] = Percentile(latency_ms, 0.5);
    j["complete_ms_p99"] = Percentile(latency_ms, 0.99);
    j["complete_ms_max"] = Percentile(latency_ms, 1.0);
    j["seen_ms_p50"] = Percentile(seen_ms, 0.5);
    j["seen_ms_p99"] = Percentile(seen_ms, 0.99);
    // The split: every host's report in at the root (N reporters' sends and
    // the root's receives), then the root's compare-and-swap in etcd.
    j["reports_in_ms_p50"] = Percentile(reports_ms, 0.5);
    j["reports_in_ms_p99"] = Percentile(reports_ms, 0.99);
    j["swap_ms_p50"] = Percentile(swap_ms, 0.5);
    j["swap_ms_p99"] = Percentile(swap_ms, 0.99);
    if (before && after.ok()) {
      const double window = Seconds(after->at - before->at);
      j["window_s"] = window;
      j["etcd_requests_per_s_per_agent"] =
          (after->messages - before->messages) / window / a_.agents;
      if (idle_requests_ > 0)
        j["requests_ratio_vs_idle"] =
            j["etcd_requests_per_s_per_agent"].get<double>() / idle_requests_;
      j["agent_requests_per_s_per_agent"] =
          static_cast<double>(agent_after - agent_before) / window / a_.agents;
      j["etcd_cpu_s_per_s"] = (after->cpu_s - before->cpu_s) / window;
      j["etcd_db_bytes"] = after->db_bytes;
    }
    if (missing > 0) ok_ = false;
    Progress("  commit to complete (etcd accepted the root's swap) p50 " +
             Fmt(j["complete_ms_p50"], "%.1f") + " ms, p99 " + Fmt(j["complete_ms_p99"], "%.1f") +
             " ms (every report in at the root p50 " + Fmt(j["reports_in_ms_p50"], "%.1f") +
             ", p99 " + Fmt(j["reports_in_ms_p99"], "%.1f") + " ms; then the swap p50 " +
             Fmt(j["swap_ms_p50"], "%.1f") + ", p99 " + Fmt(j["swap_ms_p99"], "%.1f") +
             " ms); seen by a watcher in this process p50 " + Fmt(j["seen_ms_p50"], "%.1f") +
             " ms, p99 " + Fmt(j["seen_ms_p99"], "%.1f") + " ms; etcd requests/s per agent " +
             Fmt(j.value("etcd_requests_per_s_per_agent", -1.0), "%.3f") + " (ratio vs idle " +
             Fmt(j.value("requests_ratio_vs_idle", -1.0), "%.3f") + "); etcd CPU " +
             Fmt(j.value("etcd_cpu_s_per_s", -1.0), "%.2f") + " s/s");
    return j;
  }

  static std::string Fmt(double v, const char* f) {
    char buf[64];
    std::snprintf(buf, sizeof buf, f, v);
    return buf;
  }

  nlohmann::json Kill(int count, int rate) {
    std::vector<uint32_t> victims;
    {
      std::lock_guard<std::mutex> lock(mu_);
      std::vector<uint32_t> candidates;
      // One host per copies:2 group (even host ids), so that every crash is
      // recoverable from peers: the bench measures coordination, not loss.
      for (auto& [h, agent] : agents_)
        if (!agent->is_root() && h % 2 == 0 && h + 1 < config_.num_hosts) candidates.push_back(h);
      std::mt19937 rng(static_cast<uint32_t>(count) * 7919u);
      std::shuffle(candidates.begin(), candidates.end(), rng);
      candidates.resize(std::min<size_t>(candidates.size(), static_cast<size_t>(count)));
      victims = candidates;
    }
    const int64_t epoch_before = observer_->Current() ? observer_->Current()->epoch : 1;
    Progress("kill " + std::to_string(victims.size()) + " agent(s)");
    const double killed_at = WallNow();
    const auto killed_clock = Clock::now();
    std::vector<std::unique_ptr<SimAgent>> dead;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (uint32_t h : victims) {
        dead.push_back(std::move(agents_[h]));
        agents_.erase(h);
        dead.back()->Sever();  // All at once: no more etcd traffic from any of them.
      }
    }
    for (auto& d : dead) retired_requests_ += d->requests();
    // Torn down meanwhile, off the measurement (a stop joins several threads).
    graveyard_.push_back(std::thread([dead = std::move(dead)]() mutable {
      for (auto& d : dead) d->Stop();
    }));
    // Training stalls while the job recovers (the trainers would be stopped):
    // wait for a newer epoch running, at most 2 minutes.
    std::optional<double> running_at;
    for (auto end = Clock::now() + std::chrono::minutes(2); Clock::now() < end && !running_at;
         std::this_thread::sleep_for(milliseconds(20))) {
      for (const auto& p : observer_->plans())
        if (p.plan.epoch > epoch_before && p.plan.state == "running") running_at = p.seen_at;
    }
    nlohmann::json j;
    j["killed"] = victims.size();
    double detect_max = 0, plan_max = 0;
    std::set<uint32_t> named;
    for (const auto& p : observer_->plans()) {
      if (p.plan.epoch <= epoch_before || p.plan.state != "preparing") continue;
      for (uint32_t h : p.plan.failed_hosts) {
        if (!std::count(victims.begin(), victims.end(), h) || named.count(h)) continue;
        named.insert(h);
        detect_max = std::max(detect_max, p.plan.detected_at - killed_at);
        plan_max = std::max(plan_max, p.seen_at - p.plan.detected_at);
      }
    }
    j["detected"] = named.size();
    j["detect_s_max"] = detect_max;
    j["plan_s_max"] = plan_max;
    j["recover_s"] = running_at ? *running_at - killed_at : -1.0;
    if (named.size() != victims.size() || !running_at) ok_ = false;
    // Training resumes; a few iterations show completion works in the new epoch.
    const int64_t epoch = observer_->Current() ? observer_->Current()->epoch : epoch_before;
    int64_t last = 0;
    for (int i = 0; i < 3 * rate; ++i) {
      last = ++iteration_;
      Tick(last);
      std::this_thread::sleep_for(milliseconds(1000 / rate));
    }
    bool resumed = false;
    for (auto end = Clock::now() + std::chrono::seconds(10); Clock::now() < end && !resumed;
         std::this_thread::sleep_for(milliseconds(50)))
      resumed = observer_->CompleteAt(epoch, last).has_value();
    j["completes_after"] = resumed;
    if (!resumed) ok_ = false;
    (void)killed_clock;
    Progress("  detected " + std::to_string(named.size()) + "/" + std::to_string(victims.size()) +
             " in at most " + Fmt(detect_max, "%.2f") + " s (lease TTL " +
             std::to_string(a_.lease_ttl) + " s), plan written " + Fmt(plan_max, "%.3f") +
             " s after detection, running again " + Fmt(j["recover_s"], "%.2f") +
             " s after the crash; completion " + (resumed ? "resumed" : "DID NOT resume"));
    return j;
  }

  void Summarize() {
    double detect = 0, plan = 0, p99_at_1 = -1, req = -1;
    for (const auto& k : out_["kills"]) {
      detect = std::max(detect, k["detect_s_max"].get<double>());
      plan = std::max(plan, k["plan_s_max"].get<double>());
    }
    for (const auto& s : out_["steady"]) {
      if (s["iterations_per_s"] == 1) {
        p99_at_1 = s["complete_ms_p99"];
        req = s.value("etcd_requests_per_s_per_agent", -1.0);
      }
    }
    out_["agents"] = a_.agents;
    out_["lease_ttl_s"] = a_.lease_ttl;
    out_["detect_s_max"] = detect;
    out_["plan_s_max"] = plan;
    out_["complete_ms_p99_at_1_per_s"] = p99_at_1;
    out_["etcd_requests_per_s_per_agent_at_1_per_s"] = req;
    out_["ok"] = ok_;
  }

  CoordArgs a_;
  std::unique_ptr<EtcdProcess> etcd_;
  std::optional<transport::JobSecret> secret_;
  JobConfig config_;
  std::shared_ptr<KvStore> kv_;
  std::unique_ptr<Observer> observer_;
  std::mutex mu_;
  std::map<uint32_t, std::unique_ptr<SimAgent>> agents_;
  int64_t retired_requests_ = 0;
  double idle_requests_ = 0;  // the baseline, etcd requests/s per agent
  uint32_t root_host_ = 0;
  int64_t iteration_ = 0;
  std::thread provider_;
  std::vector<std::thread> graveyard_;  // tearing crashed agents down
  std::atomic<bool> stop_{false};
  bool ok_ = true;
  nlohmann::json out_;
};

void AddCoordination(CLI::App& bench) {
  auto a = std::make_shared<CoordArgs>();
  auto* cmd = bench.add_subcommand(
      "coordination", "N simulated agents against a real etcd: detection, planning, completion");
  cmd->add_option("--agents", a->agents, "Simulated agents (machines)")->capture_default_str();
  cmd->add_option("--rates", a->rates, "Iterations per second, one steady phase each")
      ->capture_default_str();
  cmd->add_option("--kills", a->kills, "Agents crashed at once, one event each")
      ->capture_default_str();
  cmd->add_option("--lease-ttl", a->lease_ttl, "Heartbeat lease TTL, seconds")
      ->capture_default_str();
  cmd->add_option("--phase-s", a->phase_s, "Seconds per steady phase")->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->callback([a] { SetExitCode(CoordinationBench(*a).Run()); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(coordination, gemini::cli::AddCoordination);
