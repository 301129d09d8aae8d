// `gemini status [--json]`: what the machine's agent holds.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/paths.h"
#include "common/units.h"
#include "store/client.h"

namespace gemini::cli {
namespace {

void PrintCluster(const nlohmann::json& c) {
  std::cout << "cluster: job " << c["job"].get<std::string>() << ", this is host " << c["host"]
            << " of " << c["num_hosts"] << ", shards kept as "
            << c.value("redundancy", "copies:" + c["replicas"].dump())
            << " in memory, newest complete iteration " << c["complete_iteration"] << "\n";
  if (c.contains("protection") && c["protection"].is_object()) {
    const auto& p = c["protection"];
    if (p.value("protected", true))
      std::cout << "protection: every shard committed here is complete (protected)\n";
    else
      std::cout << "protection: NOT PROTECTED since iteration " << p.value("unprotected_since", -1)
                << ": " << p.value("reason", std::string("unknown")) << "\n";
  }
  for (const auto& h : c["hosts"])
    std::cout << "  host " << h["host"] << " at " << h["address"].get<std::string>() << ", ranks "
              << h["ranks"].dump()
              << (h.contains("error") ? "  (" + h["error"].get<std::string>() + ")" : "") << "\n";
  for (const auto& [rank, r] : c["ranks"].items()) {
    std::cout << "  rank " << rank << ": owner host " << r.value("owner", -1) << ", holders "
              << r.value("holders", nlohmann::json::array()).dump() << "; held:";
    for (const auto& h : r["held_by"])
      std::cout << " host " << h["host"]
                << (h.contains("fragment") ? " (fragment " + h["fragment"].dump() + ")" : "") << " "
                << h["iterations"].dump();
    std::cout << "\n";
  }
}

// The interleaving schedule and one profiled iteration, busy/idle in order.
void PrintInterleave(const nlohmann::json& i) {
  const auto& sched = i["schedule"];
  std::cout << "interleave: mode " << i["mode"].get<std::string>() << "; "
            << sched["explanation"].get<std::string>() << "\n";
  if (i.contains("link"))
    std::cout << "  link: "
              << FormatBytes(static_cast<uint64_t>(i["link"]["bandwidth_Bps"].get<double>()))
              << "/s, start-up " << i["link"]["alpha_s"].get<double>() * 1e3 << " ms\n";
  const auto& prof = i["profiler"];
  if (!prof.contains("profile")) return;
  const auto& p = prof["profile"];
  std::cout << "  profiled iteration: " << p["iteration_s"].get<double>() << " s, idle "
            << p["idle_s_per_iter"].get<double>() << " s:";
  for (const auto& seg : p["timeline"])
    std::cout << " " << seg["kind"].get<std::string>() << " " << seg["length_s"].get<double>();
  std::cout << "\n";
}

void PrintHuman(const nlohmann::json& s) {
  if (s.contains("cluster")) PrintCluster(s["cluster"]);
  if (s.contains("cluster") && s["cluster"].contains("interleave"))
    PrintInterleave(s["cluster"]["interleave"]);
  std::cout << "memory: " << FormatBytes(s["used_bytes"]) << " used of "
            << FormatBytes(s["budget_bytes"]) << " budget\n";
  if (s["jobs"].empty()) std::cout << "no checkpoints held\n";
  for (const auto& j : s["jobs"]) {
    uint32_t every_k = j.value("every_k", 1u);
    std::cout << "job " << j["job"].get<std::string>() << ": world " << j["world_size"]
              << ", newest complete iteration " << j["complete_iteration"] << ", checkpoints every "
              << (every_k == 1 ? std::string("iteration") : std::to_string(every_k) + " iterations")
              << "\n";
    for (const auto& r : j["ranks"]) {
      std::string why = r.value("every_k_reason", std::string());
      if (!why.empty())
        std::cout << "  rank " << r["rank"] << " checkpoints every " << r.value("every_k", 1u)
                  << ": " << why << "\n";
    }
    for (const auto& r : j["ranks"]) {
      std::cout << "  rank " << r["rank"] << ":";
      for (const auto& sl : r["slots"]) {
        std::cout << "  [" << sl["state"].get<std::string>();
        if (sl.contains("iteration"))
          std::cout << " it " << sl["iteration"] << ", " << FormatBytes(sl["data_bytes"]) << ", "
                    << sl["tensors"] << " tensors";
        std::cout << "]";
      }
      std::cout << "\n";
    }
  }
}

int RunStatus(const std::string& socket, bool json) {
  auto client = AgentClient::Connect(socket);
  if (!client.ok()) {
    std::cerr << "gemini status: " << client.status().message() << "\n";
    return 1;
  }
  auto text = (*client)->StatusJson();
  if (!text.ok()) {
    std::cerr << "gemini status: " << text.status().ToString() << "\n";
    return 1;
  }
  auto s = nlohmann::json::parse(*text);
  s["socket"] = socket;
  if (json) {
    std::cout << s.dump(2) << "\n";
  } else {
    PrintHuman(s);
  }
  return 0;
}

void AddStatus(CLI::App& app) {
  auto socket = std::make_shared<std::string>(DefaultSocketPath());
  auto json = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand("status", "Show what the agent holds: jobs, ranks, iterations");
  cmd->add_option("--socket", *socket, "The agent's Unix socket")->capture_default_str();
  cmd->add_flag("--json", *json, "Machine-readable output");
  cmd->callback([socket, json] { SetExitCode(RunStatus(*socket, *json)); });
}

}  // namespace
}  // namespace gemini::cli

GEMINI_REGISTER_COMMAND(status, gemini::cli::AddStatus);
