// `gemini simulate`: wasted time per failure and effective-training-time ratio
// of Gemini, Strawman and HighFreq (src/sim: scenario.h), by Monte Carlo over failure
// times or from a trace; or, with --figure / --plot, the data of a paper-figure
// analog drawn by scripts/plot_figures.py (the Python beside `gemini`, with
// matplotlib). Exit code 2 on invalid input, 1 on other errors.

#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include "cli/command.h"
#include "common/paths.h"
#include "sim/figures.h"
#include "sim/plot.h"
#include "sim/scenario.h"

namespace {

namespace sim = gemini::sim;
using nlohmann::json;

struct SimulateArgs {
  sim::ScenarioOptions scenario;  // Its model before BuildModel folds in the rest.
  std::string strategy = "mixed";
  double strawman_h = 3, persist_h = 3;
  bool json = false;
  std::string figure, plot, data, plot_script;
  std::string python = gemini::DefaultPython();
  int max_machines = 64;
};

void Fail(const gemini::Status& st) {
  std::cerr << "gemini simulate: " << st.message() << "\n";
  gemini::cli::SetExitCode(st.code() == gemini::Code::kInvalidArgument ? 2 : 1);
}

// The model with the strategy and the hour-valued options folded in.
gemini::Result<sim::ClusterModel> BuildModel(const SimulateArgs& a) {
  sim::ClusterModel m = a.scenario.model;
  GEMINI_ASSIGN_OR_RETURN(m.placement, gemini::ParsePlacementStrategy(a.strategy));
  m.strawman_interval_s = a.strawman_h * 3600;
  m.persist_interval_s = a.persist_h * 3600;
  GEMINI_RETURN_IF_ERROR(sim::ValidateModel(m));
  return m;
}

void PrintHuman(const SimulateArgs& a, const json& j) {
  const auto& m = j["model"];
  std::cout << std::fixed << std::setprecision(2) << "cluster: " << m["instances"] << " x "
            << m["gpus_per_instance"] << " GPUs, " << m["model_params"].get<double>() / 1e9
            << "B params (" << j["checkpoint_bytes"].get<double>() / 1e12
            << " TB checkpoint), network " << m["network_gbps"].get<double>() << " Gbps, storage "
            << m["storage_gbps"].get<double>() << " Gbps, iteration "
            << m["iteration_s"].get<double>() << " s\n";
  std::string each = a.scenario.trace.empty()
                         ? std::to_string(a.scenario.mc.machines_per_failure) +
                               " machine(s) each; Monte Carlo " +
                               std::to_string(a.scenario.mc.trials) + " trials x "
                         : "machines as in trace " + a.scenario.trace + "; ";
  std::cout << "failures: " << j["failures_per_day"].get<double>() << "/day, " << each
            << a.scenario.mc.days << " days\n\n";
  std::cout << std::left << std::setw(10) << "policy" << std::right << std::setw(10) << "ckpt s"
            << std::setw(12) << "interval s" << std::setw(12) << "recovery s" << std::setw(14)
            << "waste/fail s" << std::setw(12) << "analytic" << std::setw(20) << "simulated (± se)"
            << "\n";
  for (const auto& p : j["policies"]) {
    std::ostringstream sim_col;
    sim_col << std::fixed << std::setprecision(4) << p["effective_ratio"].get<double>() << " ± "
            << p["effective_ratio_stderr"].get<double>();
    std::cout << std::left << std::setw(10) << p["policy"].get<std::string>() << std::right
              << std::defaultfloat << std::setprecision(5) << std::setw(10)
              << p["checkpoint_s"].get<double>() << std::setw(12) << p["interval_s"].get<double>()
              << std::setw(12) << p["recovery_s"].get<double>() << std::setw(14)
              << p["wasted_per_failure_s"].get<double>() << std::fixed << std::setprecision(4)
              << std::setw(12) << p["effective_ratio_analytic"].get<double>() << std::setw(20)
              << sim_col.str() << "\n";
  }
  const auto& g = j["policies"][0];
  std::cout << std::setprecision(6) << "\ngemini recovers from CPU memory with probability "
            << g["memory_recovery_probability"].get<double>() << " per failure event ("
            << m["placement"].get<std::string>() << ", m=" << m["replicas"]
            << "); simulated fallbacks to persistent storage: "
            << g["fallback_fraction"].get<double>() << " of failures\n";
}

void RunScenarioCommand(const SimulateArgs& a, const sim::ClusterModel& model) {
  sim::ScenarioOptions o = a.scenario;
  o.model = model;
  auto s = sim::RunScenario(o);
  if (!s.ok()) return Fail(s.status());
  auto j = sim::ScenarioJson(o, *s);
  if (!j.ok()) return Fail(j.status());
  if (a.json) {
    std::cout << j->dump(2) << "\n";
  } else {
    PrintHuman(a, *j);
  }
}

// ---- figures ----

gemini::Status RunFigure(const SimulateArgs& a, const sim::ClusterModel& model) {
  sim::FigureOptions opt{model, a.scenario.mc, a.max_machines};
  if (a.scenario.instance_failure_rate >= 0)
    opt.instance_failure_rate = a.scenario.instance_failure_rate;
  std::string figure = a.figure.empty() ? "effective-time" : a.figure;
  GEMINI_ASSIGN_OR_RETURN(json data, sim::FigureData(figure, opt));
  if (a.json) std::cout << data.dump(1) << "\n";
  if (a.plot.empty() && a.data.empty()) return gemini::Status::Ok();
  gemini::Status st = sim::PlotFigure(data, {a.python, a.plot_script, a.plot, a.data});
  if (st.ok() && !a.json) {
    std::cout << "figure " << figure << ":" << (a.plot.empty() ? "" : " wrote " + a.plot)
              << (a.data.empty() ? "" : " data " + a.data) << "\n";
  }
  return st;
}

void Run(const SimulateArgs& a) {
  auto model = BuildModel(a);
  if (!model.ok()) return Fail(model.status());
  if (!a.figure.empty() || !a.plot.empty() || !a.data.empty()) {
    gemini::Status st = RunFigure(a, *model);
    if (!st.ok()) Fail(st);
    return;
  }
  RunScenarioCommand(a, *model);
}

void AddModelOptions(CLI::App* c, SimulateArgs& a) {
  auto& m = a.scenario.model;
  c->add_option("--model-params", m.model_params, "Model parameters")->capture_default_str();
  c->add_option("--bytes-per-param", m.bytes_per_param, "Checkpoint bytes per parameter")
      ->capture_default_str();
  c->add_option("--instances", m.instances, "Machines N")->capture_default_str();
  c->add_option("--gpus-per-instance", m.gpus_per_instance, "GPUs per machine")
      ->capture_default_str();
  c->add_option("--network-gbps", m.network_gbps, "Network bandwidth of one machine")
      ->capture_default_str();
  c->add_option("--storage-gbps", m.storage_gbps, "Aggregate remote storage bandwidth")
      ->capture_default_str();
  c->add_option("--pcie-gbps", m.pcie_gbps, "GPU-CPU copy bandwidth per GPU")
      ->capture_default_str();
  c->add_option("--iteration-s", m.iteration_s, "Iteration time T_iter, seconds")
      ->capture_default_str();
  c->add_option("--replicas", m.replicas, "Copies of each shard in CPU memory (m)")
      ->capture_default_str();
  c->add_option("--strategy", a.strategy, "Placement: group, ring or mixed")
      ->capture_default_str()
      ->check(CLI::IsMember({"group", "ring", "mixed"}));
  c->add_option("--strawman-interval-h", a.strawman_h, "Strawman checkpoint interval, hours")
      ->capture_default_str();
  c->add_option("--persist-interval-h", a.persist_h, "Gemini persistent-tier interval, hours")
      ->capture_default_str();
  c->add_option("--restart-s", m.restart_s, "Downtime added to every recovery, seconds")
      ->capture_default_str();
}

void AddFailureOptions(CLI::App* c, SimulateArgs& a) {
  c->add_option("--failures-per-day", a.scenario.mc.failures_per_day,
                "Cluster-wide failure events per day")
      ->capture_default_str();
  c->add_option("--instance-failure-rate", a.scenario.instance_failure_rate,
                "Failures per instance per day (overrides --failures-per-day), e.g. 0.015");
  c->add_option("--machines-per-failure", a.scenario.mc.machines_per_failure,
                "Machines taken down by each failure event")
      ->capture_default_str();
  c->add_option("--days", a.scenario.mc.days, "Simulated days per trial")->capture_default_str();
  c->add_option("--trials", a.scenario.mc.trials, "Monte Carlo trials")->capture_default_str();
  c->add_option("--seed", a.scenario.mc.seed, "Random seed")->capture_default_str();
  c->add_option("--trace", a.scenario.trace,
                "Failure trace instead of Monte Carlo: lines '<seconds> <machine>...'");
}

void AddSimulate(CLI::App& app) {
  auto args = std::make_shared<SimulateArgs>();
  auto* c = app.add_subcommand(
      "simulate", "Wasted time and effective training time: Gemini vs Strawman vs HighFreq");
  AddModelOptions(c, *args);
  AddFailureOptions(c, *args);
  c->add_flag("--json", args->json, "Print JSON");
  c->add_option("--figure", args->figure, "Figure data: recovery, checkpoint-time, effective-time")
      ->check(CLI::IsMember({"recovery", "checkpoint-time", "effective-time"}));
  c->add_option("--plot", args->plot, "Draw the figure (default effective-time) into this PNG");
  c->add_option("--data", args->data, "Also keep the figure's data in this JSON file");
  c->add_option("--max-machines", args->max_machines, "Recovery figure: largest N")
      ->capture_default_str();
  c->add_option("--python", args->python, "Python with matplotlib")->capture_default_str();
  c->add_option("--plot-script", args->plot_script, "Path of scripts/plot_figures.py");
  c->callback([args] { Run(*args); });
}

}  // namespace
GEMINI_REGISTER_COMMAND(simulate, AddSimulate);
