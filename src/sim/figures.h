// Data behind our analogs of the paper's figures, as JSON objects that
// scripts/plot_figures.py draws (the "figure" key names the kind):
//   recovery         Fig. 9: exact probability of recovering from CPU memory vs
//                    N for group / ring / mixed, m = 2 and 3, k = 2, 3, 4.
//   checkpoint-time  Fig. 11: checkpoint time to remote storage divided by
//                    Gemini's, vs instance network bandwidth.
//   effective-time   Fig. 15: effective-training-time ratio of Gemini,
//                    Strawman and HighFreq vs failures per day (base cluster)
//                    and vs instances at a fixed per-instance failure rate.
// Pure functions of their arguments (Monte Carlo is seeded); thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/status.h"
#include "sim/failure_sim.h"
#include "sim/wasted_time.h"

namespace gemini::sim {

inline constexpr const char* kFigureNames[] = {"recovery", "checkpoint-time", "effective-time"};

struct FigureOptions {
  ClusterModel model;                    // base cluster
  MonteCarloOptions monte_carlo;         // trials, days, seed, machines_per_failure
  int max_machines = 64;                 // recovery: N from 2 to this
  double instance_failure_rate = 0.015;  // effective-time, vs instances: per instance-day
};

// One of kFigureNames; InvalidArgument for any other name.
Result<nlohmann::json> FigureData(const std::string& figure, const FigureOptions& opt);

// Every field of the model, by the names of its members.
nlohmann::json ModelToJson(const ClusterModel& model);

Result<nlohmann::json> RecoveryFigure(int max_machines);
Result<nlohmann::json> CheckpointTimeFigure(const ClusterModel& model);
Result<nlohmann::json> EffectiveTimeFigure(const FigureOptions& opt);

}  // namespace gemini::sim
