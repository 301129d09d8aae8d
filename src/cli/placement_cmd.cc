// `gemini placement`: prints a placement (groups / ring / holders) for full
// copies (--replicas M, or --redundancy copies:M) or Reed–Solomon fragments
// (--redundancy rs:K+F) and, with --failures k, the exact probability of
// recovering from CPU memory when k random machines fail at once. Exit code 2
// on invalid input.
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/command.h"
#include "gemini/placement.h"

namespace {

using gemini::Placement;
using gemini::PlacementBlock;

struct PlacementArgs {
  int machines = 0;
  int replicas = 0;
  std::string redundancy;  // empty: copies:replicas
  std::string strategy = "mixed";
  int failures = -1;  // -1: not asked
  bool json = false;
};

void Fail(const gemini::Status& st) {
  std::cerr << "gemini placement: " << st.message() << "\n";
  gemini::cli::SetExitCode(st.code() == gemini::Code::kInvalidArgument ? 2 : 1);
}

// "a b c" for short lists; the first and last few with "..." between for long ones.
std::string Ids(const std::vector<int>& ids, const char* sep) {
  constexpr size_t kHead = 12, kTail = 4;
  std::ostringstream out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids.size() > kHead + kTail && i == kHead) {
      out << sep << "... (" << ids.size() - kHead - kTail << " more)";
      i = ids.size() - kTail;
    }
    out << (i ? sep : "") << ids[i];
  }
  return out.str();
}

// Groups [from, to), kPerLine to a line.
void PrintGroupRange(const std::vector<const PlacementBlock*>& groups, size_t from, size_t to) {
  constexpr size_t kPerLine = 8;
  for (size_t i = from; i < to; ++i) {
    std::cout << ((i - from) % kPerLine ? " " : "  ") << "{" << Ids(groups[i]->machines, ",")
              << "}";
    if ((i - from + 1) % kPerLine == 0 || i + 1 == to) std::cout << "\n";
  }
}

void PrintGroups(const Placement& p) {
  constexpr size_t kHead = 16, kTail = 2;
  std::vector<const PlacementBlock*> groups;
  for (const auto& b : p.blocks) {
    if (b.kind != PlacementBlock::Kind::kRing) groups.push_back(&b);
  }
  if (groups.empty()) return;
  if (p.parity > 0) {
    std::cout << "groups (" << groups.size() << ", each shard coded into one fragment per member; "
              << "any " << p.parity << " member failures decodable):\n";
  } else {
    std::cout << "groups (" << groups.size() << ", each shard on every member):\n";
  }
  if (groups.size() <= kHead + kTail) return PrintGroupRange(groups, 0, groups.size());
  PrintGroupRange(groups, 0, kHead);
  std::cout << "  ... (" << groups.size() - kHead - kTail << " more groups)\n";
  PrintGroupRange(groups, groups.size() - kTail, groups.size());
}

void PrintRing(const Placement& p) {
  for (const auto& b : p.blocks) {
    if (b.kind != PlacementBlock::Kind::kRing) continue;
    std::cout << "ring (" << b.machines.size() << " machines): " << Ids(b.machines, " -> ")
              << " -> " << b.machines.front() << "\n  each shard on its owner and the next "
              << p.replicas - 1 << " machine(s) of the ring\n";
  }
}

void PrintHuman(const Placement& p, int failures, double probability) {
  auto r = gemini::RedundancyOf(p);
  std::cout << "placement: " << gemini::PlacementStrategyName(p.strategy) << ", " << p.machines
            << " machines, " << r.ToString();
  if (p.parity > 0) {
    std::cout << " (" << r.data << " data + " << r.parity << " parity fragments; memory "
              << r.memory_factor() << "x a shard";
    size_t last = p.blocks.back().machines.size();
    if (last > static_cast<size_t>(p.replicas))
      std::cout << "; the last group of " << last << " codes " << last - p.parity << "+"
                << p.parity;
    std::cout << ")\n";
  } else {
    std::cout << " (" << p.replicas << " replicas, local copy included)\n";
  }
  PrintGroups(p);
  PrintRing(p);
  if (p.machines <= 32) {
    std::cout << "holders:\n";
    for (int i = 0; i < p.machines; ++i) {
      std::cout << "  shard " << i << ": " << Ids(p.holders[i], " ") << "\n";
    }
  }
  if (failures >= 0) {
    std::cout << "recovery probability from CPU memory with " << failures
              << " random simultaneous machine failures: " << std::setprecision(12) << probability
              << " (exact)\n";
  }
}

nlohmann::json ToJson(const Placement& p, int failures, double probability) {
  auto r = gemini::RedundancyOf(p);
  nlohmann::json j = {{"strategy", gemini::PlacementStrategyName(p.strategy)},
                      {"machines", p.machines},
                      {"redundancy", r.ToString()},
                      {"replicas", p.replicas},
                      {"tolerates", r.tolerates()},
                      {"memory_factor", r.memory_factor()},
                      {"holders", p.holders}};
  nlohmann::json groups = nlohmann::json::array(), ring = nullptr;
  for (const auto& b : p.blocks) {
    if (b.kind != PlacementBlock::Kind::kRing) groups.push_back(b.machines);
    if (b.kind == PlacementBlock::Kind::kRing) ring = b.machines;
  }
  j["groups"] = groups;
  j["ring"] = ring;
  if (failures >= 0) {
    j["failures"] = failures;
    j["recovery_probability"] = probability;
  }
  return j;
}

void Run(const PlacementArgs& a) {
  auto strategy = gemini::ParsePlacementStrategy(a.strategy);
  if (!strategy.ok()) return Fail(strategy.status());
  auto redundancy = a.redundancy.empty()
                        ? gemini::Result<gemini::Redundancy>(gemini::Redundancy::Copies(a.replicas))
                        : gemini::ParseRedundancy(a.redundancy);
  if (!redundancy.ok()) return Fail(redundancy.status());
  auto p = gemini::MakePlacement(a.machines, *redundancy, *strategy);
  if (!p.ok()) return Fail(p.status());
  double probability = 0;
  if (a.failures >= 0) {
    auto r = gemini::RecoveryProbability(*p, a.failures);
    if (!r.ok()) return Fail(r.status());
    probability = *r;
  }
  if (a.json) {
    std::cout << ToJson(*p, a.failures, probability).dump() << "\n";
  } else {
    PrintHuman(*p, a.failures, probability);
  }
}

void AddPlacement(CLI::App& app) {
  auto args = std::make_shared<PlacementArgs>();
  auto* c = app.add_subcommand(
      "placement", "Show where each machine's checkpoint shard is replicated (Algorithm 1)");
  c->add_option("--machines,-n", args->machines, "Number of machines N")->required();
  auto* replicas = c->add_option("--replicas,-m", args->replicas,
                                 "Copies of each shard, the local one included (= copies:M)");
  auto* redundancy = c->add_option("--redundancy", args->redundancy,
                                   "copies:M (full copies) or rs:K+F (Reed-Solomon: K data and F "
                                   "parity fragments on the K+F machines of a group)");
  replicas->excludes(redundancy);
  redundancy->excludes(replicas);
  c->add_option("--strategy", args->strategy, "group, ring or mixed")
      ->capture_default_str()
      ->check(CLI::IsMember({"group", "ring", "mixed"}));
  c->add_option("--failures,-k", args->failures,
                "Also print the exact probability of recovering from memory when this many "
                "random machines fail at once");
  c->add_flag("--json", args->json, "Print one JSON object");
  c->callback([args] {
    if (args->replicas == 0 && args->redundancy.empty()) {
      std::cerr << "gemini placement: give --replicas M or --redundancy copies:M|rs:K+F\n";
      return gemini::cli::SetExitCode(2);
    }
    Run(*args);
  });
}

}  // namespace
GEMINI_REGISTER_COMMAND(placement, AddPlacement);
