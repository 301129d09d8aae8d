// `gemini bench replicate`: replication between namespace hosts vs raw TCP
// streams of the same bytes between the same hosts, in the same run, for
// each redundancy scheme of --redundancy (default copies:2 and rs:4+2).
//
// Gemini: an agent per host of one group (M hosts for copies:M, K+F for
// rs:K+F; multi-machine mode, real etcd on the bridge); a process in host 0
// saves a shard of --bytes through its agent and times from the commit to
// the moment the job's complete iteration covers it, i.e. every holder
// received its replica or fragment, checked every CRC32C and committed it,
// and etcd recorded it. Baseline: one TCP connection per holder (same socket
// options), all at once, each streaming what that holder gets (the shard, or
// one fragment) from memory to memory, timed until every receiver's one-byte
// acknowledgement. Medians over --repeats, after two untimed warm-up
// transfers each (slot creation on the receivers is a one-time cost of the
// first two iterations; every later iteration reuses the slots). The two
// take turns, round by round (which goes first alternates), with both sides'
// processes up throughout, so that both see the same machine: on shared
// cores a baseline measured minutes apart is mostly noise.
//
// Then host 0's agent is killed and restarted empty (a replacement machine)
// and fetches its shard back --repeats times: from one peer (copies), or
// rebuilt from the fragments its group holds (rs). `decode_vs_single_peer_fetch`
// compares the two.
// Helper subcommands run inside the hosts: tcp-sink, tcp-source,
// replicate-source, replicate-fetch.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/command.h"
#include "common/subprocess.h"
#include "common/units.h"
#include "coord/etcd_process.h"
#include "gemini/placement.h"
#include "harness/cluster.h"
#include "store/client.h"
#include "timing.h"
#include "transport/tcp/tcp_connection.h"
#include "transport/tcp/tcp_listener.h"

namespace gemini::cli {
namespace {

using Clock = std::chrono::steady_clock;
using harness::LocalCluster;
using nlohmann::json;
// Untimed transfers first: the receiver's two slots are created (and their
// memory reserved) by the first two replicas; steady state reuses them.
constexpr int kWarmup = 2;

struct ReplicateArgs {
  std::string bytes = "256MiB";
  int repeats = 7;  // Raw TCP between namespace hosts on shared cores is noisy.
  bool json = false;
  std::string redundancy = "copies:2,rs:4+2";
  // Helper roles.
  std::string to;  // tcp-source: host:port[,host:port...]
  uint16_t port = 0;
  std::string socket;
  std::string job = "bench";
  std::string go;  // Helpers: round r starts when the file GO-r exists.
};

std::vector<std::string> SplitCommas(const std::string& s) {
  std::vector<std::string> out;
  for (size_t at = 0; at <= s.size();) {
    size_t end = std::min(s.find(',', at), s.size());
    if (end > at) out.push_back(s.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

Deadline Later() { return Clock::now() + std::chrono::minutes(5); }

// A helper's round `r` starts when the bench creates the file GO-r (the
// helpers run in other network namespaces, on the same file system).
Status AwaitGo(const std::string& go, int r) {
  const std::string path = go + "-" + std::to_string(r);
  for (Deadline end = Later(); access(path.c_str(), F_OK) != 0;) {
    if (Clock::now() > end) return DeadlineExceeded("no " + path);
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return Status::Ok();
}

// A helper's result for one round, one line each.
void PrintRound(double seconds) { std::cout << seconds << std::endl; }

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
  std::vector<std::unique_ptr<transport::Connection>> conns;
  for (const std::string& to : SplitCommas(a.to)) {
    std::string host = to.substr(0, to.rfind(':'));
    auto port = static_cast<uint16_t>(std::stoi(to.substr(to.rfind(':') + 1)));
    auto c = transport::TcpConnection::Connect(host, port, Later());
    if (!c.ok()) return Fail("connect", c.status());
    conns.push_back(std::move(*c));
  }
  std::vector<uint8_t> buf(n, 7);
  for (int r = 0; r < a.repeats + kWarmup; ++r) {
    if (Status go = AwaitGo(a.go, r); !go.ok()) return Fail("source", go);
    auto t0 = Clock::now();
    std::vector<Status> st(conns.size());
    std::vector<std::thread> threads;
    for (size_t i = 0; i < conns.size(); ++i)
      threads.emplace_back([&, i] {
        char ack;
        st[i] = conns[i]->SendAll(buf.data(), n, Later());
        if (st[i].ok()) st[i] = conns[i]->RecvAll(&ack, 1, Later());
      });
    for (auto& t : threads) t.join();
    for (const Status& s : st)
      if (!s.ok()) return Fail("source", s);
    PrintRound(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 0;
}

int ReplicateSource(const ReplicateArgs& a, uint64_t n) {
  auto c = AgentClient::Connect(a.socket);
  if (!c.ok()) return Fail("agent", c.status());
  std::vector<uint8_t> buf(n);
  for (uint64_t i = 0; i < n; i += 4096) buf[i] = static_cast<uint8_t>(i >> 12);
  for (int r = 1; r <= a.repeats + kWarmup; ++r) {
    if (Status go = AwaitGo(a.go, r - 1); !go.ok()) return Fail("source", go);
    Status st = (*c)->Save(a.job, 0, 1, r,
                           {{"t", Dtype::kUint8, {static_cast<int64_t>(n)}, buf.data(), n, 0}});
    if (!st.ok()) return Fail("save", st);
    auto t0 = Clock::now();
    for (;;) {
      auto done = (*c)->CompleteIteration(a.job);
      if (!done.ok()) return Fail("query", done.status());
      if (*done >= r) break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    PrintRound(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return 0;
}

// In a replacement host: fetches rank 0's newest shard back, --repeats times.
int ReplicateFetch(const ReplicateArgs& a, uint64_t) {
  auto c = AgentClient::Connect(a.socket);
  if (!c.ok()) return Fail("agent", c.status());
  json secs = json::array();
  for (int r = 0; r < a.repeats; ++r) {
    auto t0 = Clock::now();
    auto got = (*c)->Fetch(a.job, 0, a.repeats + kWarmup, -1);
    if (!got.ok()) return Fail("fetch", got.status());
    secs.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
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

// Raw TCP from host 0 to hosts 1..holders, `n` bytes to each at once, one
// transfer per round (`go`). Returns the sinks, then the source.
Result<std::vector<std::unique_ptr<Subprocess>>> StartBaseline(const LocalCluster& c, int holders,
                                                               uint64_t n, int repeats,
                                                               const std::string& go) {
  GEMINI_ASSIGN_OR_RETURN(int port, FreeTcpPort());
  std::string N = std::to_string(n), R = std::to_string(repeats), to;
  std::vector<std::unique_ptr<Subprocess>> procs;
  for (int h = 1; h <= holders; ++h) {
    GEMINI_ASSIGN_OR_RETURN(
        auto sink,
        Subprocess::Start(Cat(c.ExecArgs(h), {SelfExe(), "bench", "tcp-sink", "--port",
                                              std::to_string(port), "--bytes", N, "--repeats", R}),
                          {}));
    GEMINI_RETURN_IF_ERROR(sink->ReadLine(std::chrono::seconds(30)).status());
    procs.push_back(std::move(sink));
    to += (to.empty() ? "" : ",") + c.addr(h) + ":" + std::to_string(port);
  }
  GEMINI_ASSIGN_OR_RETURN(
      auto src, Subprocess::Start(Cat(c.ExecArgs(0), {SelfExe(), "bench", "tcp-source", "--to", to,
                                                      "--bytes", N, "--repeats", R, "--go", go}),
                                  {}));
  procs.push_back(std::move(src));
  return procs;
}

Result<std::unique_ptr<Subprocess>> StartAgent(const LocalCluster& c, const std::string& etcd,
                                               const std::string& job, int host, int hosts,
                                               const Redundancy& r, uint64_t n,
                                               const std::string& sock) {
  std::string budget = std::to_string(3 * n + (64 << 20));
  GEMINI_ASSIGN_OR_RETURN(
      auto p, Subprocess::Start(
                  Cat(c.ExecArgs(host),
                      {SelfExe(),
                       "agent",
                       "--socket",
                       sock,
                       "--budget",
                       budget,
                       "--shm-prefix",
                       "gemini-bench-" + std::to_string(getpid()) + "-" + std::to_string(host),
                       "--etcd",
                       etcd,
                       "--job",
                       job,
                       "--host-id",
                       std::to_string(host),
                       "--hosts",
                       std::to_string(hosts),
                       "--redundancy",
                       r.ToString(),
                       "--advertise",
                       c.addr(host),
                       "--secret-file",
                       c.secret_file()}),
                  {}, false, c.dir() + "/agents.log"));
  for (int i = 0; i < 500 && !AgentClient::Connect(sock).ok(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  return p;
}

// Starts round r of a helper and reads its time.
Result<double> Round(Subprocess& helper, const std::string& go, int r) {
  std::ofstream(go + "-" + std::to_string(r)) << "";
  GEMINI_ASSIGN_OR_RETURN(std::string line, helper.ReadLine(std::chrono::minutes(5)));
  try {
    return std::stod(line);
  } catch (...) {
    return Internal("helper printed '" + line + "'");
  }
}

struct Rounds {
  std::vector<double> tcp, gemini;
};

// Raw TCP and Gemini take turns: warm-up rounds, then `repeats` timed ones.
Result<Rounds> RunRounds(Subprocess& tcp, const std::string& tcp_go, Subprocess& gem,
                         const std::string& gem_go, int repeats) {
  Rounds out;
  for (int r = 0; r < repeats + kWarmup; ++r) {
    double t = 0, g = 0;
    if (r % 2 == 0) {
      GEMINI_ASSIGN_OR_RETURN(t, Round(tcp, tcp_go, r));
      GEMINI_ASSIGN_OR_RETURN(g, Round(gem, gem_go, r));
    } else {
      GEMINI_ASSIGN_OR_RETURN(g, Round(gem, gem_go, r));
      GEMINI_ASSIGN_OR_RETURN(t, Round(tcp, tcp_go, r));
    }
    if (r < kWarmup) continue;
    out.tcp.push_back(t);
    out.gemini.push_back(g);
  }
  return out;
}

// One scheme on the first width() hosts: raw TCP and Gemini in turns, then
// host 0 replaced and its shard fetched back.
Result<json> RunScheme(const LocalCluster& c, const std::string& etcd, const Redundancy& r,
                       uint64_t n, int repeats) {
  const int holders = r.width() - 1, hosts = r.width();
  const uint64_t each = r.erasure() ? (n + r.data - 1) / r.data : n;  // What each holder gets.
  const uint64_t sent = each * holders;
  std::string job = "bench-" + r.ToString();
  for (char& ch : job)
    if (ch == ':' || ch == '+') ch = '-';
  const std::string tcp_go = c.dir() + "/" + job + "-go-tcp", gem_go = c.dir() + "/" + job + "-go";
  auto sock = [&](int h, const char* tag = "") {
    return c.dir() + "/" + job + "-agent-" + std::to_string(h) + tag + ".sock";
  };
  GEMINI_ASSIGN_OR_RETURN(auto baseline, StartBaseline(c, holders, each, repeats, tcp_go));
  std::vector<std::unique_ptr<Subprocess>> agents;
  auto stop_agents = [&] {
    for (auto& p : agents) {
      p->Signal(SIGTERM);
      (void)p->Wait(std::chrono::seconds(10));
    }
  };
  for (int h = 0; h < hosts; ++h) {
    auto p = StartAgent(c, etcd, job, h, hosts, r, n, sock(h));
    if (!p.ok()) return stop_agents(), p.status();
    agents.push_back(std::move(*p));
  }
  std::string R = std::to_string(repeats);
  auto src = Subprocess::Start(
      Cat(c.ExecArgs(0), {SelfExe(), "bench", "replicate-source", "--socket", sock(0), "--job", job,
                          "--bytes", std::to_string(n), "--repeats", R, "--go", gem_go}),
      {});
  if (!src.ok()) return stop_agents(), src.status();
  auto rounds = RunRounds(*baseline.back(), tcp_go, **src, gem_go, repeats);
  for (auto& p : baseline) (void)p->Wait(std::chrono::seconds(30));
  if (!rounds.ok()) return stop_agents(), rounds.status();
  // Host 0 is lost and replaced by an empty agent, which fetches rank 0 back.
  agents[0]->Signal(SIGKILL);
  (void)agents[0]->Wait(std::chrono::seconds(10));
  auto fresh = StartAgent(c, etcd, job, 0, hosts, r, n, sock(0, "-new"));
  if (!fresh.ok()) return stop_agents(), fresh.status();
  agents[0] = std::move(*fresh);
  auto fetch =
      Subprocess::Start(Cat(c.ExecArgs(0), {SelfExe(), "bench", "replicate-fetch", "--socket",
                                            sock(0, "-new"), "--job", job, "--repeats", R}),
                        {});
  auto fetch_seconds =
      fetch.ok() ? ReadSeconds(**fetch) : Result<std::vector<double>>(fetch.status());
  stop_agents();
  if (!fetch_seconds.ok()) return fetch_seconds.status();
  const double gib = static_cast<double>(sent) / (1ull << 30);
  const double tcp = gib / Median(rounds->tcp), rep = gib / Median(rounds->gemini);
  return json{{"redundancy", r.ToString()},
              {"hosts", r.width()},
              {"bytes_sent_per_checkpoint", sent},
              {"tcp_gib_per_s", tcp},
              {"replicate_gib_per_s", rep},
              {"ratio", rep / tcp},
              {"latency_ratio", Median(rounds->gemini) / Median(rounds->tcp)},
              {"tcp_seconds", rounds->tcp},
              {"replicate_seconds", rounds->gemini},
              {"fetch_seconds", *fetch_seconds}};
}

int RunReplicate(const ReplicateArgs& a, uint64_t n) {
  std::vector<Redundancy> schemes;
  int width = 2;
  for (const std::string& text : SplitCommas(a.redundancy)) {
    auto r = ParseRedundancy(text);
    if (!r.ok() || r->width() < 2) {
      std::cerr << "gemini bench replicate: --redundancy " << text << ": "
                << (r.ok() ? "needs at least 2 hosts" : r.status().message()) << "\n";
      return 2;
    }
    schemes.push_back(*r);
    width = std::max(width, r->width());
  }
  auto cluster = LocalCluster::Up(width);
  if (!cluster.ok()) return Fail("cluster", cluster.status());
  EtcdProcessOptions eo;
  eo.host = (*cluster)->bridge();
  auto etcd = EtcdProcess::Start(eo);
  if (!etcd.ok()) return Fail("etcd", etcd.status());
  json out{{"bytes", n}, {"repeats", a.repeats}, {"schemes", json::array()}};
  double worst = 0;
  std::map<std::string, double> fetch;
  for (const Redundancy& r : schemes) {
    auto got = RunScheme(**cluster, (*etcd)->endpoint(), r, n, a.repeats);
    if (!got.ok()) return Fail(r.ToString(), got.status());
    worst = out["schemes"].empty() ? (*got)["ratio"].get<double>()
                                   : std::min(worst, (*got)["ratio"].get<double>());
    fetch[r.erasure() ? "rs" : "copies"] =
        Median((*got)["fetch_seconds"].get<std::vector<double>>());
    out["schemes"].push_back(*got);
  }
  out["ratio"] = worst;  // The lowest throughput ratio against raw TCP.
  if (fetch.count("rs") && fetch.count("copies"))
    out["decode_vs_single_peer_fetch"] = fetch["rs"] / fetch["copies"];
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::printf(
      "replication of a %s shard from host 0 to its holders (CRC-verified, committed, "
      "recorded in etcd), against raw TCP streams of the same bytes:\n",
      FormatBytes(n).c_str());
  for (const auto& s : out["schemes"])
    std::printf(
        "  %-8s %d hosts, %s sent: raw TCP %6.3f s, gemini %6.3f s to complete "
        "(throughput ratio %.3f); replacement fetch %.3f s\n",
        s["redundancy"].get<std::string>().c_str(), s["hosts"].get<int>(),
        FormatBytes(s["bytes_sent_per_checkpoint"].get<uint64_t>()).c_str(),
        Median(s["tcp_seconds"].get<std::vector<double>>()),
        Median(s["replicate_seconds"].get<std::vector<double>>()), s["ratio"].get<double>(),
        Median(s["fetch_seconds"].get<std::vector<double>>()));
  if (out.contains("decode_vs_single_peer_fetch"))
    std::printf("  rebuild from fragments / fetch from one peer: %.3f\n",
                out["decode_vs_single_peer_fetch"].get<double>());
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
  cmd->add_option("--socket", a->socket, "Agent socket (replicate-source, replicate-fetch)");
  cmd->add_option("--job", a->job, "Job (replicate-source, replicate-fetch)");
  cmd->add_option("--go", a->go, "Round files' prefix (tcp-source, replicate-source)");
  cmd->add_option("--redundancy", a->redundancy, "Schemes to measure, comma-separated")
      ->capture_default_str();
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
  AddRole(bench, "replicate-fetch", "(helper of bench replicate) fetch a lost shard back",
          ReplicateFetch);
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(replicate, gemini::cli::AddReplicate);
