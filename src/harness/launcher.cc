#include "harness/launcher.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>

#include "agent/cluster/coord_records.h"
#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/plan.h"
#include "common/paths.h"
#include "common/subprocess.h"
#include "coord/etcd_cluster.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/prefix_kv_store.h"
#include "harness/cluster.h"
#include "harness/inject.h"
#include "harness/report.h"
#include "launch/job.h"
#include "launch/provider.h"
#include "launch/rendezvous.h"
#include "store/client.h"

namespace gemini::harness {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
constexpr milliseconds kCall{2000};

// Shared-memory names of this launcher's agents: "<this prefix><namespace>".
std::string ShmPrefix() { return "gemini-launch-" + std::to_string(getpid()) + "-"; }

// Also the job's machine provider: a replacement is a new namespace host
// running the node launcher with --replace-host.
class Launcher : public MachineProvider {
 public:
  explicit Launcher(Options a) : a_(std::move(a)) {}
  int Run();
  Status Replace(uint32_t host) override;

 private:
  Status SetUp();
  Status StartNode(int ns, int64_t replace_host, bool standby);
  // The nodes' --nnodes: N, or MIN:N with --min-hosts.
  std::string Nnodes() const {
    const std::string n = std::to_string(a_.hosts);
    return a_.min_hosts > 0 && a_.min_hosts < a_.hosts ? std::to_string(a_.min_hosts) + ":" + n : n;
  }
  Status MapHosts();
  Status StartEtcd();
  void ServeProvider();
  void Inject(int64_t complete, const Plan& plan);
  void ShowPlacement();
  void Fire(Fired& f);
  void Forge();
  // Every live member of the launcher's etcd (stop-etcd freezes them all).
  void SignalEtcd(int sig) {
    for (int i = 0; etcd_ && i < etcd_->size(); ++i)
      if (etcd_->pid(i) > 0) kill(etcd_->pid(i), sig);
  }
  void PrintTimeline(const Plan& plan);
  // The Unix socket of the agent in namespace host `ns`.
  std::string Socket(int ns) const { return dir_ + "/agent-ns" + std::to_string(ns) + ".sock"; }
  int64_t Complete();
  void Log(const std::string& line);
  void TearDown(bool keep_logs = false);

  Options a_;
  Redundancy redundancy_;
  std::vector<Injection> pending_;
  std::vector<Fired> fired_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::shared_ptr<KvStore> kv_;
  std::string endpoint_, dir_, logs_;
  std::unique_ptr<ProviderService> provider_;       // serves provider/requests/ with Replace
  std::vector<std::unique_ptr<Subprocess>> nodes_;  // Per-node launchers.
  std::map<int64_t, int> ns_of_host_;               // Host id -> namespace index.
  std::map<std::string, std::string> trainer_env_;  // Every node's environment.
  std::map<std::string, int> ns_of_addr_;           // Address -> namespace index.
  int64_t last_epoch_ = 0;
  std::string last_state_;
  double t0_ = WallNow();
};

void Launcher::Log(const std::string& line) {
  std::printf("[%7.2fs] %s\n", WallNow() - t0_, line.c_str());
  std::fflush(stdout);
}

// Runs the per-node `gemini launch` in namespace host `ns`: a node of the
// rendezvous, a spare (--standby), or the provider's replacement of a host.
Status Launcher::StartNode(int ns, int64_t replace_host, bool standby) {
  const std::string addr = cluster_->addr(ns);
  const std::string name = "ns" + std::to_string(ns);
  std::vector<std::string> argv = cluster_->ExecArgs(ns);
  std::vector<std::string> more{SelfExe(),         "launch",
                                "--rdzv-endpoint", endpoint_,
                                "--nnodes",        Nnodes(),
                                "--advertise",     addr,
                                "--socket",        Socket(ns),
                                "--shm-prefix",    ShmPrefix() + std::to_string(ns),
                                "--secret-file",   cluster_->secret_file(),
                                "--log-dir",       logs_,
                                "--metrics-port",  "9400",
                                "--rdzv-timeout",  "120"};
  const auto job = JobFlagArgs(a_.job);
  more.insert(more.end(), job.begin(), job.end());
  if (standby) more.push_back("--standby");
  if (replace_host >= 0) more.insert(more.end(), {"--replace-host", std::to_string(replace_host)});
  more.push_back("--");
  more.insert(more.end(), a_.command.begin(), a_.command.end());
  argv.insert(argv.end(), more.begin(), more.end());
  GEMINI_ASSIGN_OR_RETURN(
      auto p, Subprocess::Start(argv, trainer_env_, false, logs_ + "/node-" + name + ".log"));
  nodes_.push_back(std::move(p));
  ns_of_addr_[addr] = ns;
  if (replace_host >= 0) ns_of_host_[replace_host] = ns;
  return Status::Ok();
}

// Which namespace host got which host id in the rendezvous.
Status Launcher::MapHosts() {
  const double until = WallNow() + 150;
  while (WallNow() < until) {
    auto kv = kv_->Get("rdzv", DeadlineAfter(kCall));
    auto r = kv.ok() ? DecodeRendezvous(kv->value) : Result<RendezvousRecord>(kv.status());
    if (r.ok() && r->closed) {
      for (size_t h = 0; h < r->nodes.size(); ++h) {
        if (!ns_of_addr_.count(r->nodes[h])) return Internal("unknown node " + r->nodes[h]);
        ns_of_host_[static_cast<int64_t>(h)] = ns_of_addr_[r->nodes[h]];
      }
      return Status::Ok();
    }
    for (auto& n : nodes_)
      if (auto rc = n->Wait(milliseconds(0)); rc.ok())
        return Internal("a node's launcher exited (status " + std::to_string(*rc) +
                        ") before the rendezvous closed; see " + logs_ + "/node-ns*.log");
    std::this_thread::sleep_for(milliseconds(100));
  }
  return DeadlineExceeded("the nodes' rendezvous did not close; see " + logs_ + "/node-ns*.log");
}

// etcd on the bridge, over TLS, accepting only clients with a certificate
// from the cluster's own CA (made by scripts/etcd-dev certs).
Status Launcher::StartEtcd() {
  const std::string tls = dir_ + "/tls";
  GEMINI_ASSIGN_OR_RETURN(std::string script, SupportFile("etcd-dev"));
  GEMINI_ASSIGN_OR_RETURN(
      auto certs, Subprocess::Start({"bash", script, "certs", tls, cluster_->bridge()}, {}, true));
  GEMINI_ASSIGN_OR_RETURN(int rc, certs->Wait(milliseconds(60000)));
  if (rc != 0) return Internal("scripts/etcd-dev certs failed (exit " + std::to_string(rc) + ")");
  TlsFiles& client = a_.job.etcd_tls;
  client = {tls + "/ca.pem", tls + "/client.pem", tls + "/client.key"};
  EtcdClusterOptions eo;
  eo.members = a_.etcd_members;
  eo.member.host = cluster_->bridge();
  eo.member.server_tls = {tls + "/ca.pem", tls + "/server.pem", tls + "/server.key"};
  eo.member.probe_tls = client;
  GEMINI_ASSIGN_OR_RETURN(etcd_, EtcdCluster::Start(eo));
  endpoint_ = etcd_->endpoints();
  return Status::Ok();
}

Status Launcher::SetUp() {
  GEMINI_RETURN_IF_ERROR(MakeJobConfig(a_.job, static_cast<uint32_t>(a_.hosts)).status());
  GEMINI_ASSIGN_OR_RETURN(redundancy_, ToRedundancy(a_.job.redundancy));
  GEMINI_ASSIGN_OR_RETURN(pending_, ParseInjections(a_.inject));
  GEMINI_ASSIGN_OR_RETURN(cluster_, LocalCluster::Up(a_.hosts + a_.standby_hosts, a_.rate, a_.mtu));
  dir_ = cluster_->dir();
  logs_ = a_.log_dir.empty() ? dir_ : a_.log_dir;
  std::filesystem::create_directories(logs_);
  endpoint_ = a_.etcd;
  if (endpoint_.empty()) GEMINI_RETURN_IF_ERROR(StartEtcd());
  EtcdOptions eo;
  eo.endpoints = ParseEndpoints(endpoint_);
  eo.tls = a_.job.etcd_tls;
  kv_ = std::make_shared<PrefixKvStore>(NewEtcdKvStore(eo), "/gemini/" + a_.job.job + "/");
  GEMINI_RETURN_IF_ERROR(kv_->DeletePrefix("", DeadlineAfter(kCall)).status());
  // The trainers inherit their node launcher's environment, as under torchrun.
  trainer_env_ = {{"GLOO_SOCKET_IFNAME", "eth0"},
                  {"OMP_NUM_THREADS", "1"},
                  {"GEMINI_FINAL_STATE_FILE", logs_ + "/final.json"}};
  if (a_.job.persist_dir.empty() && a_.job.persist_every > 0)
    a_.job.persist_dir = dir_ + "/persist";
  for (int h = 0; h < a_.hosts; ++h) GEMINI_RETURN_IF_ERROR(StartNode(h, -1, false));
  GEMINI_RETURN_IF_ERROR(MapHosts());
  for (int s = 0; s < a_.standby_hosts; ++s)
    GEMINI_RETURN_IF_ERROR(StartNode(a_.hosts + s, -1, true));
  Log("launched " + std::to_string(a_.hosts) + " nodes x " + std::to_string(a_.job.nproc) +
      " trainers (gemini launch on each), " + std::to_string(a_.standby_hosts) + " standby, etcd " +
      endpoint_ + ", logs in " + logs_);
  return Status::Ok();
}

int64_t Launcher::Complete() {
  auto kv = kv_->Get("complete", DeadlineAfter(milliseconds(500)));
  if (!kv.ok()) return -1;
  auto j = json::parse(kv->value, nullptr, false);
  return j.is_object() ? j.value("iteration", int64_t{-1}) : -1;
}

Status Launcher::Replace(uint32_t host) {
  GEMINI_ASSIGN_OR_RETURN(int ns, cluster_->Add());
  GEMINI_RETURN_IF_ERROR(StartNode(ns, host, false));
  Log("provider: namespace host " + std::to_string(ns) + " takes over host " +
      std::to_string(host));
  return Status::Ok();
}

void Launcher::ServeProvider() {
  if (!provider_)
    provider_ =
        std::make_unique<ProviderService>(kv_, this, [this](const std::string& l) { Log(l); });
  provider_->ServeOnce();
}

void Launcher::Fire(Fired& f) {
  f.at = WallNow();
  auto kill_host = [&](int64_t host) {
    Status st =
        ns_of_host_.count(host) ? cluster_->Remove(ns_of_host_[host]) : NotFound("no such host");
    Log("inject " + f.inj.text + ": host " + std::to_string(host) + " killed: " + st.ToString());
  };
  switch (f.inj.kind) {
    case Injection::Kind::kKillTrainer: {
      auto pid = kv_->Get("pids/" + std::to_string(f.inj.target), DeadlineAfter(kCall));
      if (pid.ok()) kill(static_cast<pid_t>(std::atoll(pid->value.c_str())), SIGKILL);
      Log("inject " + f.inj.text + ": trainer rank " + std::to_string(f.inj.target) + " killed");
      break;
    }
    case Injection::Kind::kKillHost:
      kill_host(f.inj.target);
      break;
    case Injection::Kind::kKillRoot: {
      auto root = kv_->Get("root", DeadlineAfter(kCall));
      if (root.ok()) kill_host(std::atoll(root->value.c_str()));
      break;
    }
    case Injection::Kind::kFreezeHost: {
      if (ns_of_host_.count(f.inj.target)) f.frozen_ns = ns_of_host_[f.inj.target];
      Status st = f.frozen_ns >= 0 ? cluster_->Freeze(f.frozen_ns) : NotFound("no such host");
      f.thaw_at = f.at + static_cast<double>(f.inj.seconds);
      Log("inject " + f.inj.text + ": host " + std::to_string(f.inj.target) + " frozen for " +
          std::to_string(f.inj.seconds) + " s: " + st.ToString());
      break;
    }
    case Injection::Kind::kKillEtcdMember: {
      Status st = etcd_ ? etcd_->Kill(static_cast<int>(f.inj.target))
                        : FailedPrecondition("etcd is not this launcher's (--etcd)");
      Log("inject " + f.inj.text + ": etcd member " + std::to_string(f.inj.target) +
          " killed: " + st.ToString());
      break;
    }
    case Injection::Kind::kAddStandby: {
      auto ns = cluster_->Add();
      Status st = ns.ok() ? StartNode(*ns, -1, /*standby=*/true) : ns.status();
      Log("inject " + f.inj.text + ": new standby machine" +
          (ns.ok() ? " (namespace host " + std::to_string(*ns) + ")" : std::string()) + ": " +
          st.ToString());
      break;
    }
    case Injection::Kind::kForgeEtcd:
      Forge();
      Log("inject " + f.inj.text + ": garbage and forged values written into the job's keys");
      break;
    case Injection::Kind::kStopEtcd:
      SignalEtcd(SIGSTOP);
      f.etcd_back = f.at + static_cast<double>(f.inj.target);
      Log("inject " + f.inj.text + ": etcd frozen for " + std::to_string(f.inj.target) + " s");
      break;
  }
}

// A hostile writer: garbage in the keys the agents read, a config that asks
// to run a command, a plan that is not JSON, provider requests for live
// hosts. None of it may crash an agent, run anything, or lose a checkpoint.
void Launcher::Forge() {
  const auto d = [] { return DeadlineAfter(kCall); };
  int64_t epoch = 1;
  if (auto p = kv_->Get("plan", d()); p.ok())
    if (auto plan = DecodePlan(p->value); plan.ok()) epoch = plan->epoch;
  const std::string e = std::to_string(epoch);
  if (auto c = kv_->Get("config", d()); c.ok()) {
    auto j = json::parse(c->value, nullptr, false);
    if (j.is_object()) {
      j["command"] = {"/bin/sh", "-c", "touch " + logs_ + "/forged-command-ran"};
      j["env"] = {{"LD_PRELOAD", "/nonexistent/forged.so"}, {"GEMINI_FORGED", "1"}};
      (void)kv_->Put("config", j.dump(), d());
    }
  }
  const std::pair<std::string, std::string> writes[] = {
      {"plan", "{\"epoch\": \"not json"},
      {"complete", std::string("\xff\xfe{\"epoch\":1e999}", 20)},
      {"rdzv", "[]"},
      {"hosts/9999", "{\"host\":9999,\"addr\":\"10.0.0.1\",\"port\":-1}"},
      {"hosts/abc", "{"},
      {"ranks/abc", "x"},
      {"ranks/4294967296", "0"},
      {"exits/" + e + "/abc", "{\"code\":\"x\"}"},
      {"exits/" + e + "/77777", "{\"code\":1e400}"},
      {"ready/" + e + "/12345", "[]"},
      {"done/" + e + "/abc", "1"},
      {"resumed/" + e + "/abc", "nan"},
      {"epochs/" + e + "/replicated/abc", "x"},
      {"epochs/" + e + "/replicated/99999", "-7"},
      {"assign/nobody", "-1"},
      {"provider/requests/abc", "x"},
      {"provider/requests/1", e},  // A live host: the provider must not duplicate it.
  };
  for (const auto& [key, value] : writes) (void)kv_->Put(key, value, d());
}

// Where each rank's shard lives right now, from host 0's agent.
void Launcher::ShowPlacement() {
  auto client = AgentClient::Connect(Socket(ns_of_host_[0]));
  auto text = client.ok() ? (*client)->StatusJson() : Result<std::string>(client.status());
  auto s = text.ok() ? json::parse(*text, nullptr, false) : json();
  if (!s.is_object() || !s.contains("cluster")) return;
  const auto& c = s["cluster"];
  Log("where each shard lives (" + c.value("redundancy", json("?")).get<std::string>() +
      " in CPU memory; newest complete iteration " + c["complete_iteration"].dump() + "):");
  for (const auto& [rank, r] : c["ranks"].items()) {
    std::string held;
    for (const auto& h : r["held_by"])
      held += " host " + h["host"].dump() + " " + h["iterations"].dump();
    Log("  rank " + rank + " (owner host " + r.value("owner", json(-1)).dump() + "): held by" +
        held);
  }
}

void Launcher::Inject(int64_t complete, const Plan& plan) {
  for (auto& f : fired_) {
    if (f.thaw_at > 0 && WallNow() >= f.thaw_at && f.frozen_ns >= 0) {
      Status st = cluster_->Thaw(f.frozen_ns);
      Log("host " + std::to_string(f.inj.target) + " (frozen) resumed: " + st.ToString());
      f.thaw_at = -f.thaw_at;
    }
    if (f.etcd_back > 0 && WallNow() >= f.etcd_back && etcd_) {
      SignalEtcd(SIGCONT);
      Log("etcd resumed");
      f.etcd_back = -f.etcd_back;  // Remember when, mark done.
      f.complete_at_resume = Complete();
    }
    if (f.etcd_back < 0 && f.completion_resumed == 0 && complete > f.complete_at_resume) {
      f.completion_resumed = WallNow();
      Log("completion records resumed: iteration " + std::to_string(complete) + " complete");
    }
  }
  if (pending_.empty() || plan.state != "running" || complete < pending_.front().iteration) return;
  if (a_.show_placement && fired_.empty()) ShowPlacement();
  Fired f{pending_.front(), 0, complete, 0, 0, -1, 0};
  pending_.erase(pending_.begin());
  Fire(f);
  // The newest complete iteration once the fault took effect: an iteration
  // whose commits and replicas were already on their way when a host died
  // or froze still completes (the others' records land a moment later).
  if (f.inj.kind == Injection::Kind::kKillHost || f.inj.kind == Injection::Kind::kKillRoot ||
      f.inj.kind == Injection::Kind::kFreezeHost)
    std::this_thread::sleep_for(milliseconds(500));
  f.complete = std::max(f.complete, Complete());
  fired_.push_back(f);
}

void Launcher::PrintTimeline(const Plan& plan) {
  if (plan.epoch == last_epoch_ && plan.state == last_state_) return;
  if (plan.epoch != last_epoch_ && plan.kind != "start") {
    char buf[256];
    std::snprintf(buf, sizeof(buf), "epoch %lld: %s%s (%s); plan: resume at iteration %lld from %s",
                  static_cast<long long>(plan.epoch), plan.kind.c_str(),
                  plan.kind == "grow" ? "" : " failure detected", plan.reason.c_str(),
                  static_cast<long long>(plan.resume_iteration), plan.source.c_str());
    Log(buf);
  }
  if (plan.state == "running") Log("epoch " + std::to_string(plan.epoch) + ": training running");
  last_epoch_ = plan.epoch;
  last_state_ = plan.state;
}

void Launcher::TearDown(bool keep_logs) {
  // A finished job's nodes exit by themselves once they see the plan done.
  const double until = WallNow() + (keep_logs ? 0 : 5);
  for (auto& p : nodes_)
    while (WallNow() < until && !p->Wait(milliseconds(0)).ok())
      std::this_thread::sleep_for(milliseconds(50));
  for (auto& p : nodes_) p->Signal(SIGTERM);
  for (auto& p : nodes_) (void)p->Wait(milliseconds(20000));
  nodes_.clear();
  SignalEtcd(SIGCONT);
  etcd_.reset();
  if (cluster_) cluster_->Down(keep_logs);
  if (keep_logs) std::printf("logs kept in %s\n", dir_.c_str());
}

int Launcher::Run() {
  Status st = SetUp();
  if (!st.ok()) {
    std::cerr << "gemini launch: " << st.ToString() << "\n";
    TearDown();
    return 1;
  }
  Plan plan;
  int64_t seen_rev = 0;
  while (a_.timeout_s <= 0 || WallNow() - t0_ < a_.timeout_s) {
    std::this_thread::sleep_for(milliseconds(50));
    ServeProvider();
    auto kv = kv_->Get("plan", DeadlineAfter(milliseconds(500)));
    if (kv.ok() && kv->mod_revision != seen_rev) {
      seen_rev = kv->mod_revision;
      if (auto p = DecodePlan(kv->value); p.ok()) {
        plan = *p;
        (void)kv_->Put("plans/" + std::to_string(plan.epoch), kv->value, DeadlineAfter(kCall));
        PrintTimeline(plan);
      }
    }
    if (plan.state == "done" && pending_.empty()) break;
    if (plan.state == "failed") break;
    Inject(Complete(), plan);
  }
  json report = Report(*kv_, plan, fired_, logs_);
  // Done when every trainer exited 0; the final-state file is optional (the
  // demo trainer writes it).
  bool done = plan.state == "done";
  Log(plan.state == "failed" ? "the job failed: " + plan.reason
      : !done                ? "training did not finish in time"
      : report["final_iteration"].is_null()
          ? "training finished"
          : "training finished: iteration " + report["final_iteration"].dump() + ", state CRC32C " +
                report["final_state_crc"].dump());
  for (const auto& ev : report["events"]) Log("failure: " + ev.dump());
  // Every machine started (standbys and replacements included).
  std::set<int> machines;
  for (const auto& [addr, ns] : ns_of_addr_) machines.insert(ns);
  std::vector<std::string> sockets;
  for (int ns : machines) sockets.push_back(Socket(ns));
  report["memory"] = Memory(sockets, a_.job.job, a_.job.nproc);
  if (report["memory"].contains("factor_max"))
    Log("checkpoint memory per host: up to " + report["memory"]["factor_max"].dump() +
        "x its own shards (" + redundancy_.ToString() + ")");
  if (!a_.report.empty()) std::ofstream(a_.report) << report.dump(2) << "\n";
  TearDown(/*keep_logs=*/!done);
  return done ? 0 : 1;
}

}  // namespace

int Run(const Options& o) { return Launcher(o).Run(); }

}  // namespace gemini::harness
