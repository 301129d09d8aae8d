// `gemini launch`: a training job with Gemini's failure recovery, like
// torchrun plus a fault tolerance layer. Two forms:
//
// On every machine of a job (the real one; launch/node.h):
//   gemini launch --nnodes N|MIN:MAX --nproc-per-node P --rdzv-endpoint HOST:PORT
//       --rdzv-id JOB [--standby] [--redundancy ...] [--etcd-cacert F ...] SCRIPT ARGS...
//
// The namespace harness (tests, `gemini demo`; root): without --rdzv-endpoint,
//   gemini launch --hosts 4 --nproc-per-node 1 [--replicas 2 | --redundancy rs:4+2]
//       [--standby-hosts 1] [--etcd URL] [--persist-every 10] [--inject SPEC] [--report FILE]
//       -- python3 train.py ...
// makes the hosts (network namespaces, scripts/cluster), starts etcd on the
// bridge over TLS with client certificates (scripts/etcd-dev certs) unless
// --etcd is given, and runs the per-node `gemini launch` in every host (plus
// --standby-hosts spares), exactly what a user runs on real machines. Then it
// serves as the machine provider (a lost host's replacement is a new
// namespace host running `gemini launch --replace-host H`, when no standby is
// left), injects the faults of --inject, prints a timeline, and writes
// --report: final iteration, final state CRC, and per failure its detection
// and recovery times.
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
#include "cli/command.h"
#include "cli/job_flags.h"
#include "cli/local_cluster.h"
#include "common/paths.h"
#include "common/subprocess.h"
#include "coord/etcd_cluster.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/prefix_kv_store.h"
#include "launch/inject.h"
#include "launch/node.h"
#include "launch/provider.h"
#include "launch/rendezvous.h"
#include "store/client.h"

namespace gemini::cli {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
constexpr milliseconds kCall{2000};

struct LaunchArgs {
  NodeOptions node;  // Job settings and, with --rdzv-endpoint, this node's.
  // The namespace harness.
  int hosts = 4;
  int standby_hosts = 0;
  int min_hosts = 0;  // --min-hosts: the nodes run with --nnodes MIN:hosts (0: hosts).
  std::string etcd;
  int etcd_members = 1;
  std::string inject;
  std::string report;
  double timeout_s = 0;  // 0: none.
  bool show_placement = false;
  std::string rate;  // Link rate of each namespace host ("" = unlimited).
  int mtu = 0;       // Link MTU of each namespace host (0 = 1500).
};

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

// Shared-memory names of this launcher's agents: "<this prefix><namespace>".
std::string ShmPrefix() { return "gemini-launch-" + std::to_string(getpid()) + "-"; }

// Also the job's machine provider: a replacement is a new namespace host
// running the node launcher with --replace-host.
class Launcher : public MachineProvider {
 public:
  explicit Launcher(LaunchArgs a) : a_(std::move(a)) {}
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
  json Report(const Plan& plan);
  json Memory();
  int64_t Complete();
  void Log(const std::string& line);
  void TearDown(bool keep_logs = false);

  LaunchArgs a_;
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
                                "--socket",        dir_ + "/agent-" + name + ".sock",
                                "--shm-prefix",    ShmPrefix() + std::to_string(ns),
                                "--secret-file",   cluster_->secret_file(),
                                "--log-dir",       logs_,
                                "--metrics-port",  "9400",
                                "--rdzv-timeout",  "120"};
  const auto job = JobFlagArgs(a_.node.job);
  more.insert(more.end(), job.begin(), job.end());
  if (standby) more.push_back("--standby");
  if (replace_host >= 0) more.insert(more.end(), {"--replace-host", std::to_string(replace_host)});
  more.push_back("--");
  more.insert(more.end(), a_.node.command.begin(), a_.node.command.end());
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
  TlsFiles& client = a_.node.job.etcd_tls;
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
  GEMINI_RETURN_IF_ERROR(MakeJobConfig(a_.node.job, static_cast<uint32_t>(a_.hosts)).status());
  GEMINI_ASSIGN_OR_RETURN(redundancy_, ToRedundancy(a_.node.job.redundancy));
  GEMINI_ASSIGN_OR_RETURN(pending_, ParseInjections(a_.inject));
  GEMINI_ASSIGN_OR_RETURN(cluster_, LocalCluster::Up(a_.hosts + a_.standby_hosts, a_.rate, a_.mtu));
  dir_ = cluster_->dir();
  logs_ = a_.node.log_dir.empty() ? dir_ : a_.node.log_dir;
  std::filesystem::create_directories(logs_);
  endpoint_ = a_.etcd;
  if (endpoint_.empty()) GEMINI_RETURN_IF_ERROR(StartEtcd());
  EtcdOptions eo;
  eo.endpoints = ParseEndpoints(endpoint_);
  eo.tls = a_.node.job.etcd_tls;
  kv_ = std::make_shared<PrefixKvStore>(NewEtcdKvStore(eo), "/gemini/" + a_.node.job.job + "/");
  GEMINI_RETURN_IF_ERROR(kv_->DeletePrefix("", DeadlineAfter(kCall)).status());
  // The trainers inherit their node launcher's environment, as under torchrun.
  trainer_env_ = {{"GLOO_SOCKET_IFNAME", "eth0"},
                  {"OMP_NUM_THREADS", "1"},
                  {"GEMINI_FINAL_STATE_FILE", logs_ + "/final.json"}};
  if (a_.node.job.persist_dir.empty() && a_.node.job.persist_every > 0)
    a_.node.job.persist_dir = dir_ + "/persist";
  for (int h = 0; h < a_.hosts; ++h) GEMINI_RETURN_IF_ERROR(StartNode(h, -1, false));
  GEMINI_RETURN_IF_ERROR(MapHosts());
  for (int s = 0; s < a_.standby_hosts; ++s)
    GEMINI_RETURN_IF_ERROR(StartNode(a_.hosts + s, -1, true));
  Log("launched " + std::to_string(a_.hosts) + " nodes x " + std::to_string(a_.node.job.nproc) +
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
  auto client = AgentClient::Connect(dir_ + "/agent-ns" + std::to_string(ns_of_host_[0]) + ".sock");
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

json Launcher::Report(const Plan& plan) {
  json out{{"final_iteration", nullptr}, {"final_state_crc", nullptr}, {"events", json::array()}};
  std::ifstream f(logs_ + "/final.json");
  auto fin = json::parse(f, nullptr, false);
  if (fin.is_object()) {
    out["final_iteration"] = fin["final_iteration"];
    out["final_state_crc"] = fin["final_state_crc"];
  }
  out["epochs"] = plan.epoch;
  for (const auto& fd : fired_) {
    json ev{{"kind", InjectionEventKind(fd.inj)},
            {"inject", fd.inj.text},
            {"injected_at_iteration", fd.complete},
            {"detect_s", nullptr},
            {"resume_s", nullptr},
            {"resumed_iteration", nullptr},
            {"source", nullptr}};
    // Detection: the first plan made after the injection. Recovery: the first
    // plan from then on whose trainers resumed (a plan can be superseded while
    // it prepares, e.g. when a second symptom of the same failure arrives).
    bool detected = false;
    // Faults of etcd itself, or in its values, cause no recovery of their own.
    const bool plans = fd.inj.kind != Injection::Kind::kKillEtcdMember &&
                       fd.inj.kind != Injection::Kind::kForgeEtcd;
    for (int64_t e = 2; plans && e <= plan.epoch; ++e) {
      auto pk = kv_->Get("plans/" + std::to_string(e), DeadlineAfter(kCall));
      auto p = pk.ok() ? DecodePlan(pk->value) : Result<Plan>(pk.status());
      if (!p.ok() || p->detected_at < fd.at) continue;
      if (!detected) ev["detect_s"] = p->detected_at - fd.at;
      detected = true;
      auto resumed = kv_->GetPrefix("resumed/" + std::to_string(e) + "/", DeadlineAfter(kCall));
      double last = 0;
      if (resumed.ok())
        for (const auto& r : resumed->kvs) last = std::max(last, std::atof(r.value.c_str()));
      if (last == 0 && e < plan.epoch) continue;
      if (last > 0) ev["resume_s"] = last - fd.at;
      ev["resumed_iteration"] = p->resume_iteration;
      ev["iterations_lost"] = fd.complete - p->resume_iteration;
      ev["source"] = p->failed_hosts.empty() || p->source != "local" ? p->source : "peer";
      ev["plan_kind"] = p->kind;
      if (p->kind == "group_lost") ev["kind"] = "group_lost";
      break;
    }
    if (fd.inj.kind == Injection::Kind::kStopEtcd) {
      ev["etcd_stopped_s"] = fd.inj.target;
      ev["complete_when_stopped"] = fd.complete;
      ev["complete_when_resumed"] = fd.complete_at_resume;
      if (fd.completion_resumed > 0)
        ev["completion_resumed_s"] = fd.completion_resumed + fd.etcd_back;  // After SIGCONT.
    }
    out["events"].push_back(ev);
  }
  return out;
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

// What each host's store keeps of the newest iteration of every rank it
// holds: its own ranks' shards, and what it holds of others' (replicas or
// fragments), from the agents' status at the end of the run.
json Launcher::Memory() {
  json hosts = json::array();
  double factor_max = 0;
  // Every machine started (standbys and replacements included); each agent
  // says which host id it serves and who the members are.
  std::set<int> machines;
  for (const auto& [addr, ns] : ns_of_addr_) machines.insert(ns);
  for (int ns : machines) {
    auto client = AgentClient::Connect(dir_ + "/agent-ns" + std::to_string(ns) + ".sock");
    auto text = client.ok() ? (*client)->StatusJson() : Result<std::string>(client.status());
    auto s = text.ok() ? json::parse(*text, nullptr, false) : json();
    if (!s.is_object() || !s.contains("jobs") || !s["jobs"].is_array()) continue;
    // The store job and members of the last epoch (after a shrink: JOB.worldW
    // on fewer hosts; agent/cluster/layout.h).
    std::string store_job = a_.node.job.job;
    std::vector<int64_t> members;
    int64_t host = -1;
    if (s.contains("cluster") && s["cluster"].is_object()) {
      store_job = s["cluster"].value("store_job", store_job);
      host = s["cluster"].value("host", int64_t{-1});
      if (s["cluster"].contains("members") && s["cluster"]["members"].is_array())
        for (const auto& m : s["cluster"]["members"])
          if (m.is_number_integer()) members.push_back(m.get<int64_t>());
    }
    // Not serving a member host (an idle standby, a machine the job left).
    if (host < 0 || std::find(members.begin(), members.end(), host) == members.end()) continue;
    uint64_t own = 0, held = 0;
    for (const auto& j : s["jobs"]) {
      if (j.value("job", "") != store_job) continue;
      for (const auto& r : j["ranks"]) {
        int64_t newest = -1;
        uint64_t bytes = 0;
        for (const auto& slot : r["slots"])
          if (slot.value("state", "") == "committed" && slot.value("iteration", -1) > newest) {
            newest = slot["iteration"].get<int64_t>();
            bytes = slot.value("data_bytes", uint64_t{0});
          }
        const int64_t position = r["rank"].get<int64_t>() / a_.node.job.nproc;
        const int64_t owner = position < static_cast<int64_t>(members.size())
                                  ? members[static_cast<size_t>(position)]
                                  : position;
        (owner == host ? own : held) += bytes;
      }
    }
    double factor = own ? double(own + held) / double(own) : 0;
    factor_max = std::max(factor_max, factor);
    hosts.push_back({{"host", host}, {"own_bytes", own}, {"held_bytes", held}, {"factor", factor}});
  }
  if (hosts.empty()) return json::object();
  return {{"hosts", hosts}, {"factor_max", factor_max}};
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
  json report = Report(plan);
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
  report["memory"] = Memory();
  if (report["memory"].contains("factor_max"))
    Log("checkpoint memory per host: up to " + report["memory"]["factor_max"].dump() +
        "x its own shards (" + redundancy_.ToString() + ")");
  if (!a_.report.empty()) std::ofstream(a_.report) << report.dump(2) << "\n";
  TearDown(/*keep_logs=*/!done);
  return done ? 0 : 1;
}

void AddLaunch(CLI::App& app) {
  auto a = std::make_shared<LaunchArgs>();
  NodeOptions& n = a->node;
  auto* cmd = app.add_subcommand(
      "launch",
      "Run a training job with failure recovery: on every node with --rdzv-endpoint "
      "(like torchrun; see docs/deploy.md), or on namespace hosts it makes (root; tests and "
      "the demo)");
  AddJobFlags(cmd, &n.job);
  auto* node =
      cmd->add_option_group("node", "Every machine of a job runs gemini launch with these");
  node->add_option("--rdzv-endpoint", n.rdzv_endpoint,
                   "etcd endpoint(s) of the rendezvous, comma-separated (https:// with the "
                   "--etcd-* certificates)");
  node->add_option("--nnodes", n.nnodes, "Machines: N, or MIN:MAX to start with what joined")
      ->capture_default_str();
  node->add_option("--rdzv-timeout", n.rdzv_timeout, "Seconds to wait for the nodes to join")
      ->capture_default_str();
  node->add_option("--rdzv-last-call", n.last_call,
                   "With MIN:MAX: seconds without a new node before starting with fewer than MAX")
      ->capture_default_str();
  node->add_flag("--standby", n.standby,
                 "Join as a spare: idle until it replaces a failed machine");
  node->add_option("--replace-host", n.replace_host,
                   "For machine providers: take over this failed host id (no rendezvous)");
  node->add_option("--advertise", n.advertise,
                   "Address peers reach this node at (default: its address toward etcd)");
  node->add_option("--secret-file", n.secret_file,
                   "Job secret shared by the nodes (mode 0600); default $GEMINI_SECRET");
  node->add_option("--socket", n.socket, "The agent's Unix socket for its trainers");
  node->add_option("--shm-prefix", n.shm_prefix, "Name prefix of /dev/shm objects");
  node->add_option("--metrics-port", n.metrics_port, "Serve the agent's Prometheus metrics here");
  cmd->add_option("--log-dir", n.log_dir,
                  "Agent and trainer logs (default ./gemini-logs/JOB on a node; the cluster's "
                  "folder in the harness)");
  auto* lab = cmd->add_option_group("harness", "Namespace hosts on this machine (needs root)");
  lab->add_option("--hosts", a->hosts, "Machines (network-namespace hosts)")->capture_default_str();
  lab->add_option("--min-hosts", a->min_hosts,
                  "Fewest hosts the job may go on with after losing some (the nodes run with "
                  "--nnodes MIN:HOSTS); default: --hosts")
      ->check(CLI::Range(1, 4096));
  lab->add_option("--standby-hosts", a->standby_hosts, "Idle standby hosts for replacements")
      ->capture_default_str();
  lab->add_option("--etcd", a->etcd, "etcd endpoint (default: start one over TLS)");
  lab->add_option("--etcd-members", a->etcd_members,
                  "Members of the etcd it starts (3: survives one member's death)")
      ->capture_default_str()
      ->check(CLI::Range(1, 7));
  lab->add_option(
      "--inject", a->inject,
      "Faults: kill-trainer:R@I,kill-host:H@I,kill-root@I,"
      "stop-etcd:S@I,kill-etcd-member:M@I,freeze-host:H:S@I,forge-etcd@I,add-standby@I");
  lab->add_option("--report", a->report, "Write the timeline and final state CRC here (JSON)");
  lab->add_flag("--show-placement", a->show_placement,
                "Print where each shard lives before the first injected fault");
  lab->add_option("--timeout", a->timeout_s, "Give up after this many seconds (default: no limit)");
  lab->add_option("--rate", a->rate, "Link rate of every host, e.g. 1gbit (tc tbf)");
  lab->add_option("--mtu", a->mtu, "Link MTU of every host (default 1500; 9000: jumbo frames)");
  // Everything from the script on is the script's (torchrun's rule): its own
  // options are not gemini launch's. A "--" before it is optional.
  cmd->prefix_command();
  cmd->footer("\nThen: SCRIPT ARGS... (or -- COMMAND ARGS...), the training program.");
  cmd->callback([a, cmd] {
    a->node.command = cmd->remaining();
    SetExitCode(a->node.rdzv_endpoint.empty() ? Launcher(*a).Run() : RunNode(a->node));
  });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(launch, gemini::cli::AddLaunch);
