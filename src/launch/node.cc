#include "launch/node.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>

#include "agent/cluster/plan.h"
#include "agent/run.h"
#include "common/paths.h"
#include "common/stop_signals.h"
#include "common/subprocess.h"
#include "common/units.h"
#include "coord/etcd_grpc_kv_store.h"
#include "coord/etcd_kv_store.h"
#include "coord/mirror.h"
#include "coord/prefix_kv_store.h"
#include "launch/rendezvous.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
Deadline Call() { return DeadlineAfter(milliseconds(3000)); }

// The local address this machine uses toward `endpoint` (what peers reach).
Result<std::string> AddressToward(const std::string& endpoint) {
  std::string host = endpoint.substr(endpoint.find("://") + 3);
  host = host.substr(0, host.find('/'));
  if (!host.empty() && host[0] == '[')
    return InvalidArgument("IPv6 etcd endpoints need --advertise");
  host = host.substr(0, host.find(':'));
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), "9", &hints, &res) != 0 || res == nullptr)
    return Unavailable("cannot resolve " + host + "; give --advertise ADDR");
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  bool ok = fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) == 0 &&
            getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len) == 0;
  freeaddrinfo(res);
  if (fd >= 0) close(fd);
  char buf[INET_ADDRSTRLEN] = {};
  if (!ok || inet_ntop(AF_INET, &local.sin_addr, buf, sizeof(buf)) == nullptr)
    return Unavailable("no route toward " + host + "; give --advertise ADDR");
  return std::string(buf);
}

// The checkpoint memory lives in /dev/shm: refuse to start a node that could
// not hold its budget there (the failure would come later, mid-training).
Status CheckShm(const std::string& budget_text) {
  GEMINI_ASSIGN_OR_RETURN(uint64_t budget, ParseBytes(budget_text));
  struct statvfs st {};
  if (statvfs("/dev/shm", &st) != 0) return Unavailable("cannot stat /dev/shm");
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (free_bytes >= budget) return Status::Ok();
  return ResourceExhausted("/dev/shm has " + FormatBytes(free_bytes) +
                           " free, less than --budget " + FormatBytes(budget) +
                           ": enlarge it (mount -o remount,size=SIZE /dev/shm; docker --shm-size; "
                           "a Kubernetes emptyDir with medium Memory) or lower --budget "
                           "(see docs/deploy.md)");
}

constexpr char kFencedLine[] =
    "fenced: this node was declared lost while it ran (stalled or cut off past its lease) and a "
    "replacement serves its host id; restart it with --standby to rejoin";

class Node {
 public:
  explicit Node(const NodeOptions& a) : a_(a) {}
  int Run();

 private:
  void Say(const std::string& line) {
    std::printf("[gemini launch %s] %s\n", a_.advertise.c_str(), line.c_str());
    std::fflush(stdout);
  }
  Status Join();
  Status StartAgent();
  int Follow();
  void Timeline(const Plan& plan);

  NodeOptions a_;
  std::shared_ptr<KvStore> kv_;
  std::pair<uint32_t, uint32_t> nnodes_{1, 1};  // --nnodes MIN:MAX.
  RendezvousResult joined_;
  std::optional<Plan> followed_;  // The last plan this node saw.
  std::unique_ptr<Subprocess> agent_;
  std::string agent_log_;
  int64_t last_epoch_ = 0;
  std::string last_state_;
};

Status Node::Join() {
  if (a_.replace_host >= 0) {  // A machine provider's replacement: no rendezvous.
    auto config = kv_->Get("config", Call());
    if (!config.ok()) return NotFound("no running job " + a_.job.job + " to replace a host of");
    GEMINI_ASSIGN_OR_RETURN(JobConfig c, DecodeJobConfig(config->value));
    if (a_.replace_host >= c.num_hosts)
      return InvalidArgument("--replace-host " + std::to_string(a_.replace_host) +
                             ": the job has " + std::to_string(c.num_hosts) + " hosts");
    joined_.host = static_cast<uint32_t>(a_.replace_host);
    joined_.num_hosts = c.num_hosts;
    return Status::Ok();
  }
  RendezvousOptions o;
  o.node = a_.advertise;
  o.min_nodes = nnodes_.first;
  o.max_nodes = nnodes_.second;
  o.last_call_s = a_.last_call;
  o.timeout_s = a_.rdzv_timeout;
  o.standby = a_.standby;
  GEMINI_ASSIGN_OR_RETURN(Redundancy redundancy, ToRedundancy(a_.job.redundancy));
  o.settings =
      "--nproc-per-node " + std::to_string(a_.job.nproc) + " --redundancy " + redundancy.ToString();
  o.dead_after_s = std::max<double>(30, 4.0 * static_cast<double>(a_.job.lease_ttl));
  o.progress = [this](const std::string& line) { Say(line); };
  JobStart start = [this](uint32_t n) -> Result<std::map<std::string, std::string>> {
    GEMINI_ASSIGN_OR_RETURN(JobConfig config, MakeJobConfig(a_.job, n));
    // --nnodes MIN:MAX: a lost node no machine replaces leaves the job while
    // MIN remain (planner.h, "shrink").
    config.min_hosts = std::min(nnodes_.first, n);
    Plan first;
    first.epoch = 1;
    first.state = "preparing";
    first.source = "fresh";
    first.kind = "start";
    first.master_port = 29501;
    return std::map<std::string, std::string>{{"config", EncodeJobConfig(config)},
                                              {"plan", EncodePlan(first)}};
  };
  GEMINI_ASSIGN_OR_RETURN(joined_, JoinRendezvous(*kv_, o, start));
  if (joined_.standby) {
    Say("joined job " + a_.job.job + " (round " + std::to_string(joined_.round) +
        ") as a standby: idle until a failed host's id is assigned to it");
    return Status::Ok();
  }
  // The round's settings (trainers per node, redundancy) are this node's:
  // the rendezvous refuses a node whose settings differ.
  Say("node " + std::to_string(joined_.host) + " of " + std::to_string(joined_.num_hosts) +
      " in job " + a_.job.job + " (round " + std::to_string(joined_.round) + ", " +
      std::to_string(joined_.num_hosts * static_cast<uint32_t>(a_.job.nproc)) + " trainers, " +
      redundancy.ToString() + ")");
  return Status::Ok();
}

Status Node::StartAgent() {
  const bool standby = joined_.standby;
  std::vector<std::string> argv{SelfExe(),
                                "agent",
                                "--etcd",
                                a_.rdzv_endpoint,
                                "--job",
                                a_.job.job,
                                "--hosts",
                                std::to_string(joined_.num_hosts),
                                "--advertise",
                                a_.advertise,
                                "--budget",
                                a_.job.budget,
                                "--shm-prefix",
                                a_.shm_prefix.empty() ? "gemini-" + a_.job.job : a_.shm_prefix,
                                "--lease-ttl",
                                std::to_string(a_.job.lease_ttl),
                                "--log-dir",
                                a_.log_dir,
                                "--redundancy",
                                ToRedundancy(a_.job.redundancy).value().ToString(),
                                standby ? "--standby" : "--launch"};
  if (!standby) argv.insert(argv.end(), {"--host-id", std::to_string(joined_.host)});
  if (!a_.socket.empty()) argv.insert(argv.end(), {"--socket", a_.socket});
  if (!a_.secret_file.empty()) argv.insert(argv.end(), {"--secret-file", a_.secret_file});
  if (a_.metrics_port >= 0)
    argv.insert(argv.end(), {"--metrics-port", std::to_string(a_.metrics_port), "--metrics-addr",
                             a_.advertise});
  const TlsFiles& tls = a_.job.etcd_tls;
  const std::pair<const char*, std::string> tls_flags[] = {
      {"--etcd-cacert", tls.ca_file}, {"--etcd-cert", tls.cert_file}, {"--etcd-key", tls.key_file}};
  for (const auto& [flag, file] : tls_flags)
    if (!file.empty()) argv.insert(argv.end(), {flag, file});
  argv.push_back("--");
  argv.insert(argv.end(), a_.command.begin(), a_.command.end());
  agent_log_ = a_.log_dir + "/agent-" + a_.advertise + ".log";
  GEMINI_ASSIGN_OR_RETURN(agent_, Subprocess::Start(argv, {}, false, agent_log_));
  Say("agent pid " + std::to_string(agent_->pid()) + "; logs in " + a_.log_dir);
  return Status::Ok();
}

void Node::Timeline(const Plan& plan) {
  if (plan.epoch == last_epoch_ && plan.state == last_state_) return;
  if (plan.epoch != last_epoch_ && plan.kind != "start")
    Say("epoch " + std::to_string(plan.epoch) + ": " + plan.kind + " failure (" + plan.reason +
        "); resuming at iteration " + std::to_string(plan.resume_iteration) + " from " +
        plan.source);
  if (plan.state != last_state_ || plan.epoch != last_epoch_)
    Say("epoch " + std::to_string(plan.epoch) + ": " + plan.state);
  last_epoch_ = plan.epoch;
  last_state_ = plan.state;
}

int Node::Follow() {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  const timespec tick{0, 200'000'000};
  int64_t seen = 0;
  // The plan, from a watch: looking every 200 ms costs etcd nothing.
  Mirror plan_key(kv_, "plan", false);
  plan_key.Start();
  for (;;) {
    int sig = sigtimedwait(&stop, nullptr, &tick);
    if (sig > 0) {
      Say("signal " + std::to_string(sig) + ": stopping the agent and its trainers");
      agent_->Signal(SIGTERM);
      (void)agent_->Wait(milliseconds(15000));
      return 128 + sig;
    }
    auto exited = agent_->Wait(milliseconds(0));
    if (exited.ok()) {
      if (*exited == kFencedExit) {
        Say(kFencedLine);
        return kFencedExit;
      }
      Say("the agent exited with status " + std::to_string(*exited) + "; the end of " + agent_log_ +
          ":");
      std::ifstream log(agent_log_);
      std::vector<std::string> lines;
      for (std::string line; std::getline(log, line);) lines.push_back(line);
      for (size_t i = lines.size() > 5 ? lines.size() - 5 : 0; i < lines.size(); ++i)
        Say("  " + lines[i]);
      return 1;
    }
    auto kv = plan_key.Get();
    if (!kv.ok() || kv->mod_revision == seen) continue;
    seen = kv->mod_revision;
    auto plan = DecodePlan(kv->value);
    if (!plan.ok()) continue;  // Not ours to judge; the agent ignores it too.
    // The agent's fencing rule, seen from here: a plan that newly names this
    // host as failed (e.g. it stalled past its lease, and the job may even
    // have finished meanwhile) means a replacement serves its host id.
    const auto names = [this](const Plan& p) {
      return std::count(p.failed_hosts.begin(), p.failed_hosts.end(), joined_.host) > 0;
    };
    if (!joined_.standby && followed_ && names(*plan) && !names(*followed_)) {
      Say(kFencedLine);
      agent_->Signal(SIGTERM);
      (void)agent_->Wait(milliseconds(15000));
      return kFencedExit;
    }
    followed_ = *plan;
    Timeline(*plan);
    if (plan->state == "done" || plan->state == "failed") {
      Say(plan->state == "done" ? "the job finished: every trainer exited 0"
                                : "the job failed: " + plan->reason);
      agent_->Signal(SIGTERM);
      (void)agent_->Wait(milliseconds(15000));
      return plan->state == "done" ? 0 : 1;
    }
  }
}

int Node::Run() {
  if (a_.command.empty()) {
    std::cerr << "gemini launch: give the training script, e.g. gemini launch ... train.py\n";
    return 2;
  }
  auto endpoints = ParseEndpoints(a_.rdzv_endpoint);
  if (endpoints.empty()) {
    std::cerr << "gemini launch: --rdzv-endpoint HOST:PORT (etcd) is required\n";
    return 2;
  }
  if (a_.advertise.empty()) {
    auto addr = AddressToward(endpoints[0]);
    if (!addr.ok()) {
      std::cerr << "gemini launch: " << addr.status().message() << "\n";
      return 2;
    }
    a_.advertise = *addr;
  }
  if (a_.log_dir.empty()) a_.log_dir = "gemini-logs/" + a_.job.job;
  std::error_code ec;
  std::filesystem::create_directories(a_.log_dir, ec);
  a_.log_dir = std::filesystem::absolute(a_.log_dir).string();
  auto nn = ParseNnodes(a_.nnodes);
  if (!nn.ok()) {
    std::cerr << "gemini launch: " << nn.status().message() << "\n";
    return 2;
  }
  nnodes_ = *nn;
  // One machine holds one copy (its own memory), unless told otherwise.
  if (nn->second == 1 && a_.job.redundancy.replicas == 0 && a_.job.redundancy.redundancy.empty())
    a_.job.redundancy.replicas = 1;
  for (Status st : {CheckShm(a_.job.budget), MakeJobConfig(a_.job, nn->first).status()})
    if (!st.ok()) {
      std::cerr << "gemini launch: " << st.message() << "\n";
      return 2;
    }
  EtcdOptions eo;
  eo.endpoints = endpoints;
  eo.tls = a_.job.etcd_tls;
  // Before the etcd client starts threads of its own: stop signals are then
  // taken here, never in one of those (which would end the node uncleanly).
  BlockStopSignals();
  kv_ = std::make_shared<PrefixKvStore>(NewEtcdKvStore(eo), "/gemini/" + a_.job.job + "/");
  Status st;
  {
    ExitOnStopSignal exit_on_stop("gemini launch");  // Nothing runs yet.
    st = Join();
  }
  // From here on stop signals are taken in Follow and forwarded to the agent.
  if (st.ok()) st = StartAgent();
  if (!st.ok()) {
    Say(st.ToString());
    return st.code() == Code::kInvalidArgument ? 2 : 1;
  }
  return Follow();
}

}  // namespace

Result<std::pair<uint32_t, uint32_t>> ParseNnodes(const std::string& text) {
  auto num = [&](std::string_view s) -> Result<uint32_t> {
    uint32_t v = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size() || v < 1 ||
        v > static_cast<uint32_t>(kMaxHosts))
      return InvalidArgument("--nnodes '" + text + "': expected N or MIN:MAX, 1.." +
                             std::to_string(kMaxHosts));
    return v;
  };
  size_t colon = text.find(':');
  if (colon == std::string::npos) {
    GEMINI_ASSIGN_OR_RETURN(uint32_t n, num(text));
    return std::make_pair(n, n);
  }
  GEMINI_ASSIGN_OR_RETURN(uint32_t lo, num(std::string_view(text).substr(0, colon)));
  GEMINI_ASSIGN_OR_RETURN(uint32_t hi, num(std::string_view(text).substr(colon + 1)));
  if (lo > hi) return InvalidArgument("--nnodes '" + text + "': MIN is above MAX");
  return std::make_pair(lo, hi);
}

int RunNode(const NodeOptions& o) { return Node(o).Run(); }

}  // namespace gemini
