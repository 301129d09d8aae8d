#include "harness/cluster_demo.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/subprocess.h"

namespace gemini::harness {
namespace {

using nlohmann::json;

// Runs `gemini launch`, echoing its timeline when `echo`; returns its report.
Result<json> Launch(const ClusterDemoArgs& a, const std::string& inject, const std::string& report,
                    bool echo) {
  GEMINI_ASSIGN_OR_RETURN(auto p, Subprocess::Start(ClusterDemoLaunchArgs(a, inject, report), {},
                                                    true, report + ".stderr"));
  for (;;) {
    auto line = p->ReadLine(std::chrono::minutes(15));
    if (!line.ok()) break;
    if (echo) std::fprintf(a.json ? stderr : stdout, "  %s\n", line->c_str());
  }
  GEMINI_ASSIGN_OR_RETURN(int code, p->Wait(std::chrono::minutes(1)));
  std::ifstream f(report);
  auto j = json::parse(f, nullptr, false);
  if (code != 0 || j.is_discarded())
    return Internal("gemini launch failed (exit " + std::to_string(code) + "); see " + report +
                    ".stderr");
  return j;
}

}  // namespace

std::vector<std::string> ClusterDemoLaunchArgs(const ClusterDemoArgs& a, const std::string& inject,
                                               const std::string& report) {
  std::vector<std::string> argv{SelfExe(),      "launch",     "--hosts",  std::to_string(a.hosts),
                                "--redundancy", a.redundancy, "--report", report};
  if (!inject.empty())
    argv.insert(argv.end(), {"--inject", inject, "--standby-hosts", "1", "--show-placement"});
  argv.insert(argv.end(), {"--", a.python, "-m", "gemini.demo_train", "--iterations",
                           std::to_string(a.iterations)});
  return argv;
}

int RunClusterDemo(const ClusterDemoArgs& a) {
  FILE* out = a.json ? stderr : stdout;
  std::string inject =
      a.inject.empty() ? "kill-host:1@" + std::to_string(a.iterations / 2) : a.inject;
  char tmpl[] = "/tmp/gemini-demo-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::fprintf(out,
               "gemini demo: GPT-style model, DDP over gloo on %d namespace hosts (one trainer and "
               "one agent each, etcd), every shard kept as %s in CPU memory, %d iterations\n"
               "[1/2] reference run, uninterrupted ...\n",
               a.hosts, a.redundancy.c_str(), a.iterations);
  std::fflush(out);
  auto ref = Launch(a, "", dir + "/reference.json", false);
  if (!ref.ok()) {
    std::cerr << "gemini demo: " << ref.status().ToString() << "\n";
    return 1;
  }
  std::fprintf(out, "[2/2] the same run with a failure (%s), one standby machine:\n",
               inject.c_str());
  std::fflush(out);
  auto run = Launch(a, inject, a.report.empty() ? dir + "/failure.json" : a.report, true);
  if (!run.ok()) {
    std::cerr << "gemini demo: " << run.status().ToString() << "\n";
    return 1;
  }
  bool same = (*run)["final_state_crc"] == (*ref)["final_state_crc"] &&
              !(*ref)["final_state_crc"].is_null();
  if (a.json) {
    std::cout << json{{"reference", *ref}, {"failure", *run}, {"same_final_state", same}}.dump(2)
              << "\n";
  } else {
    for (const auto& ev : (*run)["events"]) {
      auto num = [&](const char* k) { return ev[k].is_number() ? ev[k].get<double>() : -1.0; };
      std::printf(
          "\nfailure: %s (%s)\n  detected after %.2f s; training resumed %.2f s after "
          "the failure (includes Python and torch start-up)\n  resumed from iteration %s "
          "(source: %s), %s iteration(s) lost\n",
          ev["inject"].get<std::string>().c_str(), ev["kind"].get<std::string>().c_str(),
          num("detect_s"), num("resume_s"), ev["resumed_iteration"].dump().c_str(),
          ev["source"].dump().c_str(), ev.value("iterations_lost", json(0)).dump().c_str());
    }
    std::printf("\nresult: final state CRC32C %s with the failure, %s without: %s\n",
                (*run)["final_state_crc"].dump().c_str(), (*ref)["final_state_crc"].dump().c_str(),
                same ? "identical, bit for bit" : "DIFFERENT");
  }
  // The two runs' reports: printed above; kept only when the runs differ.
  if (same) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::fprintf(out, "gemini demo: the runs' reports are in %s\n", dir.c_str());
  }
  return same ? 0 : 1;
}

}  // namespace gemini::harness
