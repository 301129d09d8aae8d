#include "harness/report.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>

#include "store/client.h"

namespace gemini::harness {
namespace {

using nlohmann::json;
constexpr std::chrono::milliseconds kCall{2000};

}  // namespace

json Report(KvStore& kv, const Plan& plan, const std::vector<Fired>& fired,
            const std::string& logs) {
  json out{{"final_iteration", nullptr}, {"final_state_crc", nullptr}, {"events", json::array()}};
  std::ifstream f(logs + "/final.json");
  auto fin = json::parse(f, nullptr, false);
  if (fin.is_object()) {
    out["final_iteration"] = fin["final_iteration"];
    out["final_state_crc"] = fin["final_state_crc"];
  }
  out["epochs"] = plan.epoch;
  for (const auto& fd : fired) {
    json ev{{"kind", InjectionEventKind(fd.inj)},
            {"inject", fd.inj.text},
            {"injected_at_iteration", fd.complete},
            {"detect_s", nullptr},
            {"resume_s", nullptr},
            {"resumed_iteration", nullptr},
            {"source", nullptr}};
    // Detection: the first plan made after the injection. Recovery: the first
    // plan from then on whose trainers resumed (a plan can be superseded while
    // it prepares, e.g. when a second symptom of the same failure arrives).
    bool detected = false;
    // Faults of etcd itself, or in its values, cause no recovery of their own.
    const bool plans = fd.inj.kind != Injection::Kind::kKillEtcdMember &&
                       fd.inj.kind != Injection::Kind::kForgeEtcd;
    for (int64_t e = 2; plans && e <= plan.epoch; ++e) {
      auto pk = kv.Get("plans/" + std::to_string(e), DeadlineAfter(kCall));
      auto p = pk.ok() ? DecodePlan(pk->value) : Result<Plan>(pk.status());
      if (!p.ok() || p->detected_at < fd.at) continue;
      if (!detected) ev["detect_s"] = p->detected_at - fd.at;
      detected = true;
      auto resumed = kv.GetPrefix("resumed/" + std::to_string(e) + "/", DeadlineAfter(kCall));
      double last = 0;
      if (resumed.ok())
        for (const auto& r : resumed->kvs) last = std::max(last, std::atof(r.value.c_str()));
      if (last == 0 && e < plan.epoch) continue;
      if (last > 0) ev["resume_s"] = last - fd.at;
      ev["resumed_iteration"] = p->resume_iteration;
      ev["iterations_lost"] = fd.complete - p->resume_iteration;
      ev["source"] = p->failed_hosts.empty() || p->source != "local" ? p->source : "peer";
      ev["plan_kind"] = p->kind;
      if (p->kind == "group_lost") ev["kind"] = "group_lost";
      break;
    }
    if (fd.inj.kind == Injection::Kind::kStopEtcd) {
      ev["etcd_stopped_s"] = fd.inj.target;
      ev["complete_when_stopped"] = fd.complete;
      ev["complete_when_resumed"] = fd.complete_at_resume;
      if (fd.completion_resumed > 0)
        ev["completion_resumed_s"] = fd.completion_resumed + fd.etcd_back;  // After SIGCONT.
    }
    out["events"].push_back(ev);
  }
  return out;
}

json Memory(const std::vector<std::string>& sockets, const std::string& job, int nproc) {
  json hosts = json::array();
  double factor_max = 0;
  // Each agent says which host id it serves and who the members are.
  for (const auto& socket : sockets) {
    auto client = AgentClient::Connect(socket);
    auto text = client.ok() ? (*client)->StatusJson() : Result<std::string>(client.status());
    auto s = text.ok() ? json::parse(*text, nullptr, false) : json();
    if (!s.is_object() || !s.contains("jobs") || !s["jobs"].is_array()) continue;
    // The store job and members of the last epoch (after a shrink: JOB.worldW
    // on fewer hosts; agent/cluster/layout.h).
    std::string store_job = job;
    std::vector<int64_t> members;
    int64_t host = -1;
    if (s.contains("cluster") && s["cluster"].is_object()) {
      store_job = s["cluster"].value("store_job", store_job);
      host = s["cluster"].value("host", int64_t{-1});
      if (s["cluster"].contains("members") && s["cluster"]["members"].is_array())
        for (const auto& m : s["cluster"]["members"])
          if (m.is_number_integer()) members.push_back(m.get<int64_t>());
    }
    // Not serving a member host (an idle standby, a machine the job left).
    if (host < 0 || std::find(members.begin(), members.end(), host) == members.end()) continue;
    uint64_t own = 0, held = 0;
    for (const auto& j : s["jobs"]) {
      if (j.value("job", "") != store_job) continue;
      for (const auto& r : j["ranks"]) {
        int64_t newest = -1;
        uint64_t bytes = 0;
        for (const auto& slot : r["slots"])
          if (slot.value("state", "") == "committed" && slot.value("iteration", -1) > newest) {
            newest = slot["iteration"].get<int64_t>();
            bytes = slot.value("data_bytes", uint64_t{0});
          }
        const int64_t position = r["rank"].get<int64_t>() / nproc;
        const int64_t owner = position < static_cast<int64_t>(members.size())
                                  ? members[static_cast<size_t>(position)]
                                  : position;
        (owner == host ? own : held) += bytes;
      }
    }
    double factor = own ? double(own + held) / double(own) : 0;
    factor_max = std::max(factor_max, factor);
    hosts.push_back({{"host", host}, {"own_bytes", own}, {"held_bytes", held}, {"factor", factor}});
  }
  if (hosts.empty()) return json::object();
  return {{"hosts", hosts}, {"factor_max", factor_max}};
}

}  // namespace gemini::harness
