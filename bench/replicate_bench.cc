// `gemini bench replicate`: replication throughput between two namespace
// hosts vs a raw TCP stream of the same bytes between the same hosts, in the
// same run.
//
// Gemini: an agent per host (multi-machine mode, real etcd on the bridge);
// a process in host 0 saves a shard of --bytes through its agent and times
// from the commit to the moment the job's complete iteration covers it, i.e.
// host 1 received the replica, checked every CRC32C and committed it, and
// etcd recorded it. Baseline: one TCP connection (same socket options) that
// streams the same number of bytes from memory to memory, timed until the
// receiver's one-byte acknowledgement. Medians over --repeats, after two
// untimed warm-up transfers each (slot creation on the receiver is a one-time
// cost of the first two iterations; every later iteration reuses the slots).
// Helper subcommands run inside the hosts: tcp-sink, tcp-source,
// replicate-source.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command.h"
#include "cli/local_cluster.h"
#include "common/subprocess.h"
#include "common/units.h"
#include "coord/etcd_process.h"
#include "store/client.h"
#include "timing.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_listener.h"

namespace gemini::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
// Untimed transfers first: the receiver's two slots are created (and their
// memory reserved) by the first two replicas; steady state reuses them.
constexpr int kWarmup = 2;

struct ReplicateArgs {
  std::string bytes = "1GiB";
  int repeats = 3;
  bool json = false;
  // Helper roles.
  std::string to;
  uint16_t port = 0;
  std::string socket;
};

Deadline Later() { return Clock::now() + std::chrono::minutes(5); }

int Fail(const std::string& what, const Status& st) {
  std::cerr << "gemini bench replicate: " << what << ": " << st.ToString() << "\n";
  return 1;
}

int TcpSink(const ReplicateArgs& a, uint64_t n) {
  auto l = transport::TcpListener::Listen("", a.port);
  if (!l.ok()) return Fail("listen", l.status());
  std::cout << "ready" << std::endl;
  auto c = (*l)->Accept(Later());
  if (!c.ok()) return Fail("accept", c.status());
  std::vector<uint8_t> buf(n);
  for (int r = 0; r < a.repeats + kWarmup; ++r) {
    Status st = (*c)->RecvAll(buf.data(), n, Later());
    if (st.ok()) st = (*c)->SendAll("k", 1, Later());
    if (!st.ok()) return Fail("sink", st);
  }
  return 0;
}

int TcpSource(const ReplicateArgs& a, uint64_t n) {
  std::string host = a.to.substr(0, a.to.rfind(':'));
  auto port = static_cast<uint16_t>(std::stoi(a.to.substr(a.to.rfind(':') + 1)));
  auto c = transport::TcpConnection::Connect(host, port, Later());
  if (!c.ok()) return Fail("connect", c.status());
  std::vector<uint8_t> buf(n, 7);
  json secs = json::array();
  for (int r = 0; r < a.repeats + kWarmup; ++r) {
    auto t0 = Clock::now();
    char ack;
    Status st = (*c)->SendAll(buf.data(), n, Later());
    if (st.ok()) st = (*c)->RecvAll(&ack, 1, Later());
    if (!st.ok()) return Fail("source", st);
    if (r >= kWarmup) secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::cout << secs.dump() << std::endl;
  return 0;
}

int ReplicateSource(const ReplicateArgs& a, uint64_t n) {
  auto c = AgentClient::Connect(a.socket);
  if (!c.ok()) return Fail("agent", c.status());
  std::vector<uint8_t> buf(n);
  for (uint64_t i = 0; i < n; i += 4096) buf[i] = static_cast<uint8_t>(i >> 12);
  json secs = json::array();
  for (int r = 1; r <= a.repeats + kWarmup; ++r) {
    Status st = (*c)->Save("bench", 0, 1, r,
                           {{"t", Dtype::kUint8, {static_cast<int64_t>(n)}, buf.data(), n, 0}});
    if (!st.ok()) return Fail("save", st);
    auto t0 = Clock::now();
    for (;;) {
      auto done = (*c)->CompleteIteration("bench");
      if (!done.ok()) return Fail("query", done.status());
      if (*done >= r) break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (r > kWarmup) secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::cout << secs.dump() << std::endl;
  return 0;
}

Result<std::vector<double>> ReadSeconds(Subprocess& p) {
  GEMINI_ASSIGN_OR_RETURN(std::string line, p.ReadLine(std::chrono::minutes(10)));
  auto j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_array()) return Internal("helper printed '" + line + "'");
  return j.get<std::vector<double>>();
}

std::vector<std::string> Cat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Result<std::vector<double>> RunBaseline(const LocalCluster& c, uint64_t n, int repeats) {
  GEMINI_ASSIGN_OR_RETURN(int port, FreeTcpPort());
  std::string N = std::to_string(n), R = std::to_string(repeats);
  GEMINI_ASSIGN_OR_RETURN(
      auto sink,
      Subprocess::Start(Cat(c.ExecArgs(1), {SelfExe(), "bench", "tcp-sink", "--port",
                                            std::to_string(port), "--bytes", N, "--repeats", R}),
                        {}));
  GEMINI_RETURN_IF_ERROR(sink->ReadLine(std::chrono::seconds(30)).status());
  GEMINI_ASSIGN_OR_RETURN(
      auto src, Subprocess::Start(Cat(c.ExecArgs(0), {SelfExe(), "bench", "tcp-source", "--to",
                                                      c.addr(1) + ":" + std::to_string(port),
                                                      "--bytes", N, "--repeats", R}),
                                  {}));
  auto secs = ReadSeconds(*src);
  (void)sink->Wait(std::chrono::seconds(30));
  return secs;
}

Result<std::vector<double>> RunGemini(const LocalCluster& c, const std::string& etcd, uint64_t n,
                                      int repeats,
                                      std::vector<std::unique_ptr<Subprocess>>& agents) {
  std::string budget = std::to_string(3 * n + (64 << 20));
  for (int h = 0; h < 2; ++h) {
    std::string sock = c.dir() + "/agent-" + std::to_string(h) + ".sock";
    GEMINI_ASSIGN_OR_RETURN(
        auto p,
        Subprocess::Start(Cat(c.ExecArgs(h),
                              {SelfExe(),
                               "agent",
                               "--socket",
                               sock,
                               "--budget",
                               budget,
                               "--shm-prefix",
                               "gemini-bench-" + std::to_string(getpid()) + "-" + std::to_string(h),
                               "--etcd",
                               etcd,
                               "--job",
                               "bench",
                               "--host-id",
                               std::to_string(h),
                               "--hosts",
                               "2",
                               "--replicas",
                               "2",
                               "--advertise",
                               c.addr(h),
                               "--secret-file",
                               c.secret_file()}),
                          {}, false, c.dir() + "/agents.log"));
    agents.push_back(std::move(p));
    for (int i = 0; i < 500 && !AgentClient::Connect(sock).ok(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  GEMINI_ASSIGN_OR_RETURN(
      auto src,
      Subprocess::Start(Cat(c.ExecArgs(0), {SelfExe(), "bench", "replicate-source", "--socket",
                                            c.dir() + "/agent-0.sock", "--bytes", std::to_string(n),
                                            "--repeats", std::to_string(repeats)}),
                        {}));
  return ReadSeconds(*src);
}

int RunReplicate(const ReplicateArgs& a, uint64_t n) {
  auto cluster = LocalCluster::Up(2);
  if (!cluster.ok()) return Fail("cluster", cluster.status());
  EtcdProcessOptions eo;
  eo.host = (*cluster)->bridge();
  auto etcd = EtcdProcess::Start(eo);
  if (!etcd.ok()) return Fail("etcd", etcd.status());
  auto base = RunBaseline(**cluster, n, a.repeats);
  if (!base.ok()) return Fail("raw TCP baseline", base.status());
  std::vector<std::unique_ptr<Subprocess>> agents;
  auto gem = RunGemini(**cluster, (*etcd)->endpoint(), n, a.repeats, agents);
  for (auto& p : agents) {
    p->Signal(SIGTERM);
    (void)p->Wait(std::chrono::seconds(10));
  }
  if (!gem.ok()) return Fail("replication", gem.status());
  double gib = static_cast<double>(n) / (1ull << 30);
  double tcp = gib / Median(*base), rep = gib / Median(*gem);
  json out{{"bytes", n},
           {"repeats", a.repeats},
           {"tcp_gib_per_s", tcp},
           {"replicate_gib_per_s", rep},
           {"ratio", rep / tcp},
           {"tcp_seconds", *base},
           {"replicate_seconds", *gem}};
  if (a.json) {
    std::cout << out.dump(2) << "\n";
  } else {
    std::printf(
        "replication of %s between two namespace hosts (CRC-verified, committed, "
        "recorded in etcd):\n  raw TCP stream   %6.2f GiB/s\n  gemini replica   %6.2f "
        "GiB/s\n  ratio            %6.3f\n",
        FormatBytes(n).c_str(), tcp, rep, rep / tcp);
  }
  return 0;
}

template <typename Fn>
void AddRole(CLI::App& bench, const char* name, const char* help, Fn fn) {
  auto a = std::make_shared<ReplicateArgs>();
  auto* cmd = bench.add_subcommand(name, help);
  cmd->add_option("--bytes", a->bytes, "Bytes per transfer")->capture_default_str();
  cmd->add_option("--repeats", a->repeats, "Timed transfers")->capture_default_str();
  cmd->add_flag("--json", a->json, "JSON output");
  cmd->add_option("--to", a->to, "host:port (tcp-source)");
  cmd->add_option("--port", a->port, "Port (tcp-sink)");
  cmd->add_option("--socket", a->socket, "Agent socket (replicate-source)");
  cmd->callback([a, fn] {
    auto n = ParseBytes(a->bytes);
    if (!n.ok() || *n == 0 || a->repeats < 1) {
      std::cerr << "gemini bench: bad --bytes or --repeats\n";
      SetExitCode(2);
      return;
    }
    SetExitCode(fn(*a, *n));
  });
}

void AddReplicate(CLI::App& bench) {
  AddRole(bench, "replicate", "Replication between two namespace hosts vs raw TCP (root)",
          RunReplicate);
  AddRole(bench, "tcp-sink", "(helper of bench replicate) receive a raw TCP stream", TcpSink);
  AddRole(bench, "tcp-source", "(helper of bench replicate) send a raw TCP stream", TcpSource);
  AddRole(bench, "replicate-source", "(helper of bench replicate) save and time replication",
          ReplicateSource);
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(replicate, gemini::cli::AddReplicate);
