// `gemini bench interleave`: iteration time of a DDP job on rate-limited
// namespace hosts with per-iteration checkpoints, in modes none / naive /
// interleave (docs/design.md part 3; the paper's Fig. 7, 8 and 16).
//
// Each mode is one `gemini launch` of python -m gemini.interleave_train on
// fresh hosts, etcd and agents, with the same model, data and iterations.
// Every rank logs each iteration (interleave_train.py); the bench takes rank
// 0's median iteration time over the last --measure iterations (the final
// one left out), after the agents' profiling warm-up. Ratios are over mode
// none measured in the same run. The network idle time per iteration comes
// from the interleave run's profile; the checkpoint send time is the naive
// run's median wait for its replicas. The ablation (Fig. 16) runs naive mode
// twice more, on unlimited links by default (--ablation-rate), where the
// holder's copy-out is not negligible next to the transfer, with a receive
// buffer R smaller than the shard (default 4 MiB) split into p = 1 and p = 4
// sub-buffers: chunks of R/p, at most p unacknowledged; it compares the send
// time of one checkpoint.
//
// Checks, whatever the timings: every rank's checkpoint of every iteration
// has the same CRC in every mode; no replica due before an optimizer step
// was late (the checkpointer's waits never timed out) and none failed; no
// checkpoint skipped.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/log.h"
#include "common/paths.h"
#include "common/subprocess.h"

namespace gemini::cli {
namespace {

using json = nlohmann::json;

struct InterleaveArgs {
  int hosts = 4;
  std::string rate = "200mbit";
  int mtu = 9000;  // Jumbo frames, as on cloud training networks (EC2: 9001).
  int iterations = 52;
  int measure = 30;
  int warmup = 20;
  int dim = 1024;
  int layers = 4;
  int batch = 64;
  int sub_buffers = 4;
  std::string buffer = "128MiB";
  std::string modes = "none,naive,interleave,ablation-p1,ablation-p4";
  std::string ablation_buffer = "4MiB";
  std::string ablation_rate;  // "" = unlimited: the copy-out then matters next to the transfer.
  int replication_nice = 10;
  int ablation_iterations = 14;
  bool json_out = false;
  std::string plot;
  std::string keep;            // Keep logs here.
  std::string device = "cpu";  // Where the model and its checkpointed state live.
};

struct ModeRun {
  std::string name;  // none, naive, interleave, ablation-p1, ablation-p4
  std::string mode;  // The agent's mode.
  int sub_buffers = 4;
  std::string buffer;
  int iterations = 0;
  std::vector<std::vector<json>> ranks;  // Per rank: iteration records.
  std::vector<json> summaries;
  double iter_s = 0;                  // Median over the measured iterations.
  double warmup_wait_s = 0;           // Median wait for replicas before an iteration, in warm-up.
  double wait_step_s = 0;             // Median wait before the step, measured iterations.
  double wait_iteration_s = 0;        // Median wait before the iteration, measured iterations.
  json agent;                         // Rank 0's agent interleaving status.
  double agent_cpu_s_per_iter = 0;    // Host 0's agent: CPU seconds per iteration.
  double machine_cpu_s_per_iter = 0;  // Every core, second half of the run.
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double FirstOr0(const json& a) { return a.is_array() && !a.empty() ? a[0].get<double>() : 0.0; }

Status RunMode(const InterleaveArgs& a, const std::string& dir, ModeRun* run) {
  std::filesystem::create_directories(dir);
  const bool ablation = run->name.rfind("ablation", 0) == 0;
  const std::string rate = ablation ? a.ablation_rate : a.rate;
  std::vector<std::string> argv = {SelfExe(),
                                   "launch",
                                   "--hosts",
                                   std::to_string(a.hosts),
                                   "--mtu",
                                   std::to_string(a.mtu),
                                   "--job",
                                   "bench-" + run->name,
                                   "--interleave",
                                   run->mode,
                                   "--sub-buffers",
                                   std::to_string(run->sub_buffers),
                                   "--buffer",
                                   run->buffer,
                                   "--warmup",
                                   std::to_string(a.warmup),
                                   "--replication-nice",
                                   std::to_string(a.replication_nice),
                                   "--log-dir",
                                   dir + "/logs",
                                   "--timeout",
                                   std::to_string(60 + run->iterations * 10),
                                   "--",
                                   DefaultPython(),
                                   "-m",
                                   "gemini.interleave_train",
                                   "--iterations",
                                   std::to_string(run->iterations),
                                   "--dim",
                                   std::to_string(a.dim),
                                   "--layers",
                                   std::to_string(a.layers),
                                   "--batch",
                                   std::to_string(a.batch),
                                   "--device",
                                   a.device};
  if (!rate.empty()) argv.insert(argv.begin() + 4, {"--rate", rate});
  std::map<std::string, std::string> env = {{"GEMINI_TIMING_DIR", dir + "/t"}};
  GEMINI_ASSIGN_OR_RETURN(auto proc, Subprocess::Start(argv, env, false, dir + "/launch.log"));
  GEMINI_ASSIGN_OR_RETURN(int code, proc->Wait(std::chrono::seconds(120 + run->iterations * 12)));
  if (code != 0)
    return Internal("mode " + run->name + ": gemini launch exited " + std::to_string(code) +
                    " (see " + dir + "/launch.log)");
  run->ranks.assign(a.hosts, {});
  for (int r = 0; r < a.hosts; ++r) {
    std::ifstream in(dir + "/t/rank" + std::to_string(r) + ".jsonl");
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      if (j.is_discarded()) return Internal("bad timing line in " + dir);
      if (j.contains("summary"))
        run->summaries.push_back(j["summary"]);
      else
        run->ranks[r].push_back(j);
    }
    if (static_cast<int>(run->ranks[r].size()) != run->iterations)
      return Internal("mode " + run->name + ": rank " + std::to_string(r) + " logged " +
                      std::to_string(run->ranks[r].size()) + " of " +
                      std::to_string(run->iterations) + " iterations");
  }
  const auto& r0 = run->ranks[0];
  std::vector<double> it_s, warm, step, before;
  const int n = run->iterations;
  const int measure = std::min(a.measure, n - 3);
  for (int i = 0; i < n; ++i) {
    const json& rec = r0[i];
    bool measured = i >= n - 1 - measure && i < n - 1;
    if (measured) {
      it_s.push_back(rec["iter_s"]);
      step.push_back(FirstOr0(rec["wait_step_ms"]) / 1e3);
      before.push_back(FirstOr0(rec["wait_iteration_ms"]) / 1e3);
    }
    if (i >= 2 && i < a.warmup) warm.push_back(FirstOr0(rec["wait_iteration_ms"]) / 1e3);
  }
  run->iter_s = Median(it_s);
  run->warmup_wait_s = Median(warm);
  run->wait_step_s = Median(step);
  run->wait_iteration_s = Median(before);
  for (const auto& s : run->summaries)
    if (s.value("rank", -1) == 0 && s.contains("agent")) {
      run->agent = s["agent"];
      if (s.contains("agent_cpu_s") && s["agent_cpu_s"].is_number())
        run->agent_cpu_s_per_iter = s["agent_cpu_s"].get<double>() / n;
      if (s.contains("machine_cpu_s_per_iter") && s["machine_cpu_s_per_iter"].is_number())
        run->machine_cpu_s_per_iter = s["machine_cpu_s_per_iter"];
    }
  return Status::Ok();
}

// Checks that must hold whatever the timings; appends problems.
void Check(const InterleaveArgs& a, const std::vector<ModeRun>& runs,
           std::vector<std::string>* problems) {
  for (const auto& run : runs) {
    for (const auto& s : run.summaries) {
      // On GPUs every checkpoint must have taken the GPU data path (a CPU
      // build of the package copies CUDA tensors synchronously instead).
      if (a.device == "cuda" && !s.value("gpu_path", false))
        problems->push_back(run.name + ": rank " + s["rank"].dump() +
                            " did not take the GPU data path");
      for (const char* k : {"due_timeouts", "skipped"})
        if (s.value(k, 0) != 0)
          problems->push_back(run.name + ": rank " + s["rank"].dump() + " " + k + " = " +
                              s[k].dump());
    }
    if (run.agent.is_object() && run.agent.value("failed_replications", 0) != 0)
      problems->push_back(run.name + ": failed replications");
  }
  // The same iteration's checkpoint is the same bytes in every mode. Compared
  // by iteration: with every k-th iteration checkpointed, the newest one after
  // a given iteration differs between modes.
  for (size_t m = 1; m < runs.size(); ++m)
    for (size_t r = 0; r < runs[0].ranks.size() && r < runs[m].ranks.size(); ++r) {
      std::map<int64_t, json> reference;
      for (const json& a : runs[0].ranks[r])
        if (a.contains("ckpt") && a["ckpt"].contains("crc"))
          reference[a["ckpt"]["iteration"].get<int64_t>()] = a["ckpt"];
      for (const json& b : runs[m].ranks[r]) {
        if (!b.contains("ckpt")) continue;
        const json& c = b["ckpt"];
        auto it = reference.find(c.value("iteration", int64_t{-1}));
        if (!c.contains("crc") || (it != reference.end() && it->second != c))
          problems->push_back("rank " + std::to_string(r) + " iteration " +
                              c.value("iteration", json()).dump() + ": checkpoint " +
                              (it != reference.end() ? it->second.dump() : "none") + " in " +
                              runs[0].name + " but " + c.dump() + " in " + runs[m].name);
      }
    }
}

int RunInterleave(const InterleaveArgs& a) {
  if (geteuid() != 0) {
    std::cerr << "gemini bench interleave: needs root (network namespaces)\n";
    return 2;
  }
  if (a.device == "cuda") {  // Fail here, not in every host's trainer log.
    auto probe =
        Subprocess::Start({DefaultPython(), "-c",
                           "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)"},
                          {}, false, "/dev/null");
    auto code =
        probe.ok() ? (*probe)->Wait(std::chrono::seconds(120)) : Result<int>(probe.status());
    if (!code.ok() || *code != 0) {
      std::cerr << "gemini bench interleave: --device cuda, but " << DefaultPython()
                << " sees no CUDA device (torch.cuda.is_available() is false"
                << (code.ok() ? "" : ": " + code.status().ToString()) << ")\n";
      return 2;
    }
  }
  if (a.measure < 3 || a.iterations < a.warmup + a.measure + 2) {
    std::cerr << "gemini bench interleave: --iterations must be at least --warmup + --measure + "
                 "2, --measure at least 3\n";
    return 2;
  }
  std::string root = a.keep;
  if (root.empty()) {
    char tmpl[] = "/tmp/gemini-bench-interleave-XXXXXX";
    if (!mkdtemp(tmpl)) {
      std::cerr << "gemini bench interleave: mkdtemp failed\n";
      return 1;
    }
    root = tmpl;
  }
  std::vector<ModeRun> runs;
  std::stringstream ss(a.modes);
  for (std::string name; std::getline(ss, name, ',');) {
    ModeRun run;
    run.name = name;
    bool ablation = name == "ablation-p1" || name == "ablation-p4";
    if (name != "none" && name != "naive" && name != "interleave" && !ablation) {
      std::cerr << "gemini bench interleave: unknown mode '" << name
                << "' (none, naive, interleave, ablation-p1, ablation-p4)\n";
      return 2;
    }
    run.mode = ablation ? "naive" : name;
    run.sub_buffers = ablation ? name.back() - '0' : a.sub_buffers;
    run.buffer = ablation ? a.ablation_buffer : a.buffer;
    run.iterations = ablation ? a.ablation_iterations : a.iterations;
    std::cerr << "[bench interleave] mode " << name << " (" << run.iterations << " iterations, "
              << a.hosts << " hosts at "
              << (ablation ? (a.ablation_rate.empty() ? "unlimited" : a.ablation_rate) : a.rate)
              << ", R " << run.buffer << ", p " << run.sub_buffers << ") ..." << std::endl;
    Status st = RunMode(a, root + "/" + name, &run);
    if (!st.ok()) {
      std::cerr << "gemini bench interleave: " << st.ToString() << "\n";
      return 1;
    }
    std::cerr << "[bench interleave] mode " << name << ": median iteration " << run.iter_s << " s"
              << std::endl;
    runs.push_back(std::move(run));
  }
  auto find = [&](const std::string& n) -> const ModeRun* {
    for (const auto& r : runs)
      if (r.name == n) return &r;
    return nullptr;
  };
  json out{{"hosts", a.hosts},
           {"replication_nice", a.replication_nice},
           {"mtu", a.mtu},
           {"rate", a.rate},
           {"iterations", a.iterations},
           {"measured_iterations", a.measure},
           {"warmup_iterations", a.warmup},
           {"model", {{"dim", a.dim}, {"layers", a.layers}, {"batch", a.batch}}},
           {"device", a.device},
           {"iter_s", json::object()},
           {"modes", json::object()}};
  for (const auto& r : runs) {
    out["iter_s"][r.name] = r.iter_s;
    out["modes"][r.name] = {{"iter_s", r.iter_s},
                            {"sub_buffers", r.sub_buffers},
                            {"warmup_send_wait_s", r.warmup_wait_s},
                            {"wait_before_step_s", r.wait_step_s},
                            {"wait_before_iteration_s", r.wait_iteration_s},
                            {"agent_cpu_s_per_iter", r.agent_cpu_s_per_iter},
                            {"machine_cpu_s_per_iter", r.machine_cpu_s_per_iter},
                            {"agent", r.agent}};
  }
  const ModeRun* none = find("none");
  const ModeRun* naive = find("naive");
  const ModeRun* il = find("interleave");
  const ModeRun* p1 = find("ablation-p1");
  const ModeRun* p4 = find("ablation-p4");
  if (none && naive) out["ratio_naive"] = naive->iter_s / none->iter_s;
  if (none && il) out["ratio_interleave"] = il->iter_s / none->iter_s;
  if (naive) out["ckpt_send_s"] = naive->wait_iteration_s;  // Replicas sent at once, waited for.
  if (il && il->agent.is_object()) {
    const json& prof = il->agent["profiler"]["profile"];
    out["idle_s_per_iter"] = prof.value("idle_s_per_iter", 0.0);
    out["busy_fraction"] = prof.value("busy_fraction", 0.0);
    out["profiled_iteration_s"] = prof.value("iteration_s", 0.0);
    out["ckpt_bytes"] = il->agent.value("checkpoint_bytes", 0);
    if (il->agent.contains("plan")) out["ckpt_send_s_model"] = il->agent["plan"]["send_s"];
    out["every_k"] = il->agent["schedule"]["every_k"];
    out["late_chunks"] = il->agent.value("late_chunks", 0);
    out["gated_chunks"] = il->agent.value("gated_chunks", 0);
    if (il->agent.contains("link")) out["link"] = il->agent["link"];
  }
  if (!runs.empty())  // Rank 0's device as torch names it ("cpu" or the GPU's name).
    for (const auto& sm : runs.front().summaries)
      if (sm.value("rank", -1) == 0) {
        out["device_name"] = sm.value("device", std::string("cpu"));
        out["gpus"] = sm.value("gpus", 0);
      }
  if (p1 && p4)
    out["ablation"] = {
        {"buffer", a.ablation_buffer},
        {"rate", a.ablation_rate.empty() ? "unlimited" : a.ablation_rate},
        {"send_s_p1", p1->wait_iteration_s},
        {"send_s_p4", p4->wait_iteration_s},
        {"iter_s_p1", p1->iter_s},
        {"iter_s_p4", p4->iter_s},
        {"ratio_send_p1_over_p4",
         p4->wait_iteration_s > 0 ? p1->wait_iteration_s / p4->wait_iteration_s : 0.0}};
  std::vector<std::string> problems;
  Check(a, runs, &problems);
  size_t compared = 0;
  for (const auto& r : runs)
    for (const auto& rank : r.ranks)
      for (const auto& rec : rank) compared += rec.contains("ckpt") ? 1 : 0;
  const size_t shown = std::min<size_t>(problems.size(), 20);
  out["checks"] = {
      {"ok", problems.empty()},
      {"problems", std::vector<std::string>(problems.begin(), problems.begin() + shown)},
      {"problem_count", problems.size()},
      {"checkpoints_compared", compared}};
  out["logs"] = root;
  if (!a.plot.empty()) {
    std::ofstream(root + "/result.json") << out.dump(2);
    auto script = SupportFile("plot_interleave.py");
    auto p = script.ok() ? Subprocess::Start(
                               {DefaultPython(), *script, root + "/result.json", a.plot}, {}, false)
                         : Result<std::unique_ptr<Subprocess>>(script.status());
    auto code = p.ok() ? (*p)->Wait(std::chrono::minutes(2)) : Result<int>(p.status());
    if (!code.ok() || *code != 0)
      std::cerr << "gemini bench interleave: plotting failed (" << root << "/result.json kept)\n";
  }
  if (a.json_out) {
    std::cout << out.dump(2) << std::endl;
  } else {
    for (const auto& r : runs)
      std::printf("%-14s median iteration %.3f s  (x%.3f of none)\n", r.name.c_str(), r.iter_s,
                  none ? r.iter_s / none->iter_s : 0.0);
    if (out.contains("idle_s_per_iter"))
      std::printf("network idle %.3f s per iteration; one checkpoint send %.3f s\n",
                  out["idle_s_per_iter"].get<double>(), out["ckpt_send_s"].get<double>());
    std::printf("checks: %s\n", problems.empty() ? "ok" : "FAILED");
    for (const auto& p : problems) std::printf("  %s\n", p.c_str());
  }
  if (a.keep.empty() && problems.empty()) std::filesystem::remove_all(root);
  return problems.empty() ? 0 : 1;
}

void AddInterleave(CLI::App& bench) {
  auto a = std::make_shared<InterleaveArgs>();
  auto* cmd = bench.add_subcommand(
      "interleave", "Iteration time with per-iteration checkpoints: none/naive/interleave (root)");
  cmd->add_option("--hosts", a->hosts, "Namespace hosts (one rank each)")->capture_default_str();
  cmd->add_option("--rate", a->rate, "Link rate of each host (tc tbf)")->capture_default_str();
  cmd->add_option("--mtu", a->mtu, "Link MTU of each host")->capture_default_str();
  cmd->add_option("--iterations", a->iterations, "Iterations per mode")->capture_default_str();
  cmd->add_option("--measure", a->measure, "Iterations in each median")->capture_default_str();
  cmd->add_option("--warmup", a->warmup, "Profiling warm-up iterations")->capture_default_str();
  cmd->add_option("--dim", a->dim, "Model width")->capture_default_str();
  cmd->add_option("--layers", a->layers, "Model depth")->capture_default_str();
  cmd->add_option("--batch", a->batch, "Batch per rank")->capture_default_str();
  cmd->add_option("--sub-buffers", a->sub_buffers, "p of the main runs")->capture_default_str();
  cmd->add_option("--buffer", a->buffer, "R")->capture_default_str();
  cmd->add_option("--modes", a->modes, "Runs, comma-separated")->capture_default_str();
  cmd->add_option("--replication-nice", a->replication_nice,
                  "CPU nice of the agents' replication threads")
      ->capture_default_str();
  cmd->add_option("--ablation-buffer", a->ablation_buffer, "R of the p=1 vs p=4 runs")
      ->capture_default_str();
  cmd->add_option("--ablation-rate", a->ablation_rate,
                  "Link rate of those runs (default: unlimited)");
  cmd->add_option("--ablation-iterations", a->ablation_iterations, "Iterations of those runs")
      ->capture_default_str();
  cmd->add_option("--keep", a->keep, "Keep every run's logs in this directory");
  cmd->add_option("--plot", a->plot, "Write the figure (PNG) here");
  cmd->add_option("--device", a->device,
                  "Where the model lives: cpu, or cuda (ranks share the machine's GPUs; "
                  "checkpoints take the GPU data path)")
      ->check(CLI::IsMember({"cpu", "cuda"}))
      ->capture_default_str();
  cmd->add_flag("--json", a->json_out, "JSON output");
  cmd->callback([a] { SetExitCode(RunInterleave(*a)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_BENCH(interleave, gemini::cli::AddInterleave);
