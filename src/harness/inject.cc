#include "harness/inject.h"

#include <cstdlib>
#include <sstream>

namespace gemini::harness {
namespace {

bool ParseInt(const std::string& s, int64_t* v) {
  if (s.empty()) return false;
  char* end = nullptr;
  *v = std::strtoll(s.c_str(), &end, 10);
  return *end == '\0' && *v >= 0;
}

Result<Injection> ParseOne(const std::string& item) {
  auto bad = [&](const std::string& why) {
    return InvalidArgument("--inject '" + item + "': " + why +
                           " (expected kill-trainer:RANK@ITER, kill-host:HOST@ITER, "
                           "kill-root@ITER, stop-etcd:SECONDS@ITER, kill-etcd-member:M@ITER, "
                           "freeze-host:HOST:SECONDS@ITER, forge-etcd@ITER or add-standby@ITER)");
  };
  size_t at = item.rfind('@');
  if (at == std::string::npos) return bad("no @ITER");
  Injection inj;
  inj.text = item;
  if (!ParseInt(item.substr(at + 1), &inj.iteration) || inj.iteration < 1)
    return bad("bad iteration");
  std::string head = item.substr(0, at), name = head, arg;
  if (size_t colon = head.find(':'); colon != std::string::npos) {
    name = head.substr(0, colon);
    arg = head.substr(colon + 1);
  }
  if (name == "kill-root" || name == "forge-etcd" || name == "add-standby") {
    if (!arg.empty()) return bad(name + " takes no argument");
    inj.kind = name == "kill-root"    ? Injection::Kind::kKillRoot
               : name == "forge-etcd" ? Injection::Kind::kForgeEtcd
                                      : Injection::Kind::kAddStandby;
    return inj;
  }
  if (name == "kill-trainer")
    inj.kind = Injection::Kind::kKillTrainer;
  else if (name == "kill-host")
    inj.kind = Injection::Kind::kKillHost;
  else if (name == "stop-etcd")
    inj.kind = Injection::Kind::kStopEtcd;
  else if (name == "kill-etcd-member")
    inj.kind = Injection::Kind::kKillEtcdMember;
  else if (name == "freeze-host")
    inj.kind = Injection::Kind::kFreezeHost;
  else
    return bad("unknown fault '" + name + "'");
  if (inj.kind == Injection::Kind::kFreezeHost) {
    size_t colon = arg.find(':');
    if (colon == std::string::npos || !ParseInt(arg.substr(colon + 1), &inj.seconds) ||
        inj.seconds < 1)
      return bad("freeze-host needs HOST:SECONDS");
    arg = arg.substr(0, colon);
  }
  if (!ParseInt(arg, &inj.target)) return bad("bad or missing number after ':'");
  return inj;
}

}  // namespace

Result<std::vector<Injection>> ParseInjections(const std::string& spec) {
  std::vector<Injection> out;
  std::stringstream ss(spec);
  for (std::string item; std::getline(ss, item, ',');) {
    if (item.empty()) continue;
    GEMINI_ASSIGN_OR_RETURN(Injection inj, ParseOne(item));
    out.push_back(inj);
  }
  return out;
}

const char* InjectionEventKind(const Injection& i) {
  switch (i.kind) {
    case Injection::Kind::kKillTrainer:
      return "software";
    case Injection::Kind::kKillHost:
    case Injection::Kind::kFreezeHost:
      return "hardware";
    case Injection::Kind::kKillRoot:
      return "root";
    case Injection::Kind::kStopEtcd:
      return "etcd";
    case Injection::Kind::kForgeEtcd:
      return "forged";
    case Injection::Kind::kKillEtcdMember:
      return "etcd_member";
    case Injection::Kind::kAddStandby:
      return "grow";
  }
  return "?";
}

}  // namespace gemini::harness
