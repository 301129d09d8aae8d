#include "harness/demo.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "common/subprocess.h"
#include "common/units.h"
#include "harness/cluster_demo.h"
#include "store/client.h"

namespace gemini::harness {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct RunResult {
  std::map<int, double> loss;
  std::vector<double> blocking_ms, copy_ms, iter_s;
  std::optional<int> resumed_from;
  double load_s = 0;
  double spawn_to_first_iteration_s = 0;
  int64_t params = 0;
  double wall_s = 0;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

Status WaitForSocket(const std::string& path, Subprocess& agent) {
  for (int i = 0; i < 500; ++i) {
    if (AgentClient::Connect(path).ok()) return Status::Ok();
    if (agent.Wait(std::chrono::milliseconds(0)).ok()) return Unavailable("the agent exited");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return DeadlineExceeded("the agent did not start within 10 s");
}

// The single-machine demo's world: one agent, `ranks` trainers beside it.
struct World {
  std::string socket;
  int ranks = 0;
  std::unique_ptr<Subprocess> agent;
};

Status SetUpOneMachine(const DemoArgs& a, const std::string& dir, World& w) {
  w.socket = dir + "/agent.sock";
  w.ranks = a.nproc;
  GEMINI_ASSIGN_OR_RETURN(
      w.agent, Subprocess::Start({SelfExe(), "agent", "--socket", w.socket, "--budget", a.budget,
                                  "--shm-prefix", "gemini-demo-" + std::to_string(getpid())},
                                 {}, false, dir + "/log.txt"));
  return WaitForSocket(w.socket, *w.agent);
}

// Runs the trainers of `job` to the end, or SIGKILLs all of them once rank 0
// reports iteration `kill_at`.
Result<RunResult> RunTrainers(const DemoArgs& a, const World& w, const std::string& job,
                              int kill_at, const std::string& log) {
  GEMINI_ASSIGN_OR_RETURN(int port, FreeTcpPort());
  std::vector<std::unique_ptr<Subprocess>> ranks;
  auto start = Clock::now();
  for (int r = 0; r < w.ranks; ++r) {
    std::map<std::string, std::string> env{
        {"RANK", std::to_string(r)},  {"WORLD_SIZE", std::to_string(w.ranks)},
        {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", std::to_string(port)},
        {"GEMINI_SOCKET", w.socket},  {"OMP_NUM_THREADS", "1"}};
    GEMINI_ASSIGN_OR_RETURN(auto p,
                            Subprocess::Start({a.python, "-m", "gemini.demo_train", "--iterations",
                                               std::to_string(a.iterations), "--job", job},
                                              env, r == 0, log));
    ranks.push_back(std::move(p));
  }
  RunResult res;
  auto last_output = Clock::now();
  for (;;) {
    auto line = ranks[0]->ReadLine(std::chrono::seconds(1));
    if (!line.ok() && line.status().code() != Code::kDeadlineExceeded) break;
    if (!line.ok()) {
      // A rank that died (or five silent minutes) ends the run: DDP would hang.
      bool dead = Clock::now() - last_output > std::chrono::minutes(5);
      for (auto& p : ranks) {
        auto code = p->Wait(std::chrono::milliseconds(0));
        dead = dead || (code.ok() && *code != 0);
      }
      if (!dead) continue;
      for (auto& p : ranks) p->Signal(SIGKILL);
      return Internal("a trainer failed; see " + log);
    }
    last_output = Clock::now();
    auto ev = json::parse(*line, nullptr, false);
    if (ev.is_discarded() || !ev.contains("event")) continue;
    if (ev["event"] == "start") {
      if (!ev["resumed_from"].is_null()) res.resumed_from = ev["resumed_from"].get<int>();
      res.load_s = ev["load_s"];
      res.params = ev["params"];
    } else if (ev["event"] == "iteration") {
      int it = ev["iteration"];
      if (res.loss.empty()) res.spawn_to_first_iteration_s = Seconds(Clock::now() - start);
      res.loss[it] = ev["loss"];
      res.iter_s.push_back(ev["iter_s"]);
      if (ev.contains("save_blocking_ms")) res.blocking_ms.push_back(ev["save_blocking_ms"]);
      if (ev.contains("copy_ms") && !ev["copy_ms"].is_null()) res.copy_ms.push_back(ev["copy_ms"]);
      if (it == kill_at) {
        for (auto& p : ranks) p->Signal(SIGKILL);
        break;
      }
    } else if (ev["event"] == "done") {
      break;
    }
  }
  for (auto& p : ranks) {
    auto code = p->Wait(std::chrono::minutes(1));
    if (!code.ok()) return code.status();
    if (*code != 0 && kill_at < 0)
      return Internal("trainer " + std::to_string(p->pid()) + " exited with " +
                      std::to_string(*code) + "; see " + log);
  }
  res.wall_s = Seconds(Clock::now() - start);
  return res;
}

void PrintAccount(const DemoArgs& a, int ranks, const RunResult& ref, const RunResult& resumed,
                  double kill_to_resume_s, int mismatches) {
  std::printf("\ncheckpoint every iteration (%d ranks, %s parameters):\n", ranks,
              std::to_string(ref.params).c_str());
  std::printf("  save() blocks the training loop  %.2f ms (median)\n", Median(ref.blocking_ms));
  std::printf("  copy into the agent's memory     %.2f ms (median, off the training thread)\n",
              Median(ref.copy_ms));
  std::printf("  iteration time                   %.1f ms (median)\n", Median(ref.iter_s) * 1e3);
  std::printf("\ncrash and resume:\n");
  std::printf("  SIGKILL of every trainer after iteration %d\n", a.kill_at);
  std::printf("  resumed from iteration %d, held in memory by the agent\n",
              resumed.resumed_from.value_or(-1));
  std::printf(
      "  load_latest() took %.3f s; kill to first new iteration %.2f s "
      "(includes Python and torch start-up)\n",
      resumed.load_s, kill_to_resume_s);
  std::printf("\n  iter  uninterrupted loss  resumed loss        equal\n");
  for (const auto& [it, loss] : resumed.loss) {
    double want = ref.loss.count(it) ? ref.loss.at(it) : -1;
    std::printf("  %4d  %.12f      %.12f      %s\n", it, want, loss, want == loss ? "yes" : "NO");
  }
  if (mismatches == 0)
    std::printf(
        "\nresult: all %zu losses after the resume equal the uninterrupted run's, bit for "
        "bit\n",
        resumed.loss.size());
  else
    std::printf("\nresult: %d losses differ from the uninterrupted run\n", mismatches);
}

void Report(const DemoArgs& a, const World& w, const RunResult& ref, const RunResult& resumed,
            double kill_to_resume, int mismatches) {
  if (!a.json_out) return PrintAccount(a, w.ranks, ref, resumed, kill_to_resume, mismatches);
  json out{{"iterations", a.iterations},
           {"ranks", w.ranks},
           {"hosts", a.hosts},
           {"params", ref.params},
           {"killed_after_iteration", a.kill_at},
           {"resumed_from", resumed.resumed_from.value_or(-1)},
           {"save_blocking_ms_median", Median(ref.blocking_ms)},
           {"copy_ms_median", Median(ref.copy_ms)},
           {"iteration_ms_median", Median(ref.iter_s) * 1e3},
           {"load_s", resumed.load_s},
           {"kill_to_first_iteration_s", kill_to_resume},
           {"losses_compared", resumed.loss.size()},
           {"loss_mismatches", mismatches}};
  std::cout << out.dump(2) << "\n";
}

}  // namespace

Result<int> KillAt(const DemoArgs& a) {
  const int kill_at = a.kill_at < 0 ? a.iterations * 3 / 5 : a.kill_at;
  if (kill_at < 1 || kill_at >= a.iterations || a.hosts < 1)
    return InvalidArgument("--kill-at must be in [1, iterations) and --hosts >= 1");
  return kill_at;
}

int RunDemo(DemoArgs a) {
  if (a.hosts > 1 && geteuid() != 0) {
    std::cerr << "gemini demo: --hosts " << a.hosts << " makes network-namespace hosts and needs "
              << "root; run it as root, or use --hosts 1 for the single-machine demo\n";
    return 2;
  }
  if (a.hosts > 1) {
    Result<Redundancy> r = ToRedundancy(a.redundancy);
    if (!r.ok()) {
      std::cerr << "gemini demo: " << r.status().ToString() << "\n";
      return 2;
    }
    return RunClusterDemo(ClusterDemoArgs{a.hosts, a.iterations, r->ToString(), a.inject, a.report,
                                          a.python, a.json_out});
  }
  Result<int> kill_at = KillAt(a);
  if (!kill_at.ok()) {
    std::cerr << "gemini demo: " << kill_at.status().message() << "\n";
    return 2;
  }
  a.kill_at = *kill_at;
  FILE* progress = a.json_out ? stderr : stdout;  // --json keeps stdout for the JSON.
  char tmpl[] = "/tmp/gemini-demo-XXXXXX";
  std::string dir = mkdtemp(tmpl), log = dir + "/log.txt";
  World w;
  Status st = SetUpOneMachine(a, dir, w);
  if (!st.ok()) {
    std::cerr << "gemini demo: cannot set up: " << st.ToString() << " (logs in " << dir << ")\n";
    return 1;
  }
  std::fprintf(progress,
               "gemini demo: GPT-style model, %d ranks (DDP over gloo) on one machine, %d "
               "iterations, one in-memory checkpoint per iteration\nlogs in %s\n",
               w.ranks, a.iterations, log.c_str());
  std::fprintf(progress, "[1/3] reference run, uninterrupted ...\n");
  std::fflush(progress);
  auto ref = RunTrainers(a, w, "reference", -1, log);
  std::fprintf(progress, "[2/3] the same run, all trainers SIGKILLed after iteration %d ...\n",
               a.kill_at);
  std::fflush(progress);
  auto crash = ref.ok() ? RunTrainers(a, w, "demo", a.kill_at, log) : ref.status();
  auto killed_at = Clock::now();
  std::fprintf(progress, "[3/3] restart: the trainers resume from the agents' memory ...\n");
  std::fflush(progress);
  auto resumed = crash.ok() ? RunTrainers(a, w, "demo", -1, log) : crash.status();
  double kill_to_resume = crash.ok() && resumed.ok()
                              ? Seconds(Clock::now() - killed_at) - resumed->wall_s +
                                    resumed->spawn_to_first_iteration_s
                              : 0;
  w.agent->Signal(SIGTERM);
  (void)w.agent->Wait(std::chrono::seconds(10));
  if (!resumed.ok()) {
    std::cerr << "gemini demo failed: " << resumed.status().ToString() << " (logs in " << dir
              << ")\n";
    return 1;
  }
  int mismatches = 0;
  for (const auto& [it, loss] : resumed->loss)
    if (!ref->loss.count(it) || ref->loss.at(it) != loss) ++mismatches;
  if (!resumed->resumed_from || resumed->loss.empty()) mismatches = std::max(mismatches, 1);
  Report(a, w, *ref, *resumed, kill_to_resume, mismatches);
  std::filesystem::remove_all(dir);
  return mismatches == 0 ? 0 : 1;
}

}  // namespace gemini::harness
