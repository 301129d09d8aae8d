#include "harness/cluster.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>

#include "common/paths.h"
#include "common/subprocess.h"

namespace gemini::harness {

Result<std::string> LocalCluster::Run(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"bash", script_};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--name");
  argv.push_back(name_);
  GEMINI_ASSIGN_OR_RETURN(auto p, Subprocess::Start(argv, {}, true, dir_ + "/cluster.log"));
  std::string out;
  for (;;) {
    auto line = p->ReadLine(std::chrono::seconds(60));
    if (!line.ok()) break;
    out += *line;
  }
  GEMINI_ASSIGN_OR_RETURN(int code, p->Wait(std::chrono::seconds(60)));
  if (code != 0)
    return Internal("scripts/cluster " + args[0] + " failed (exit " + std::to_string(code) +
                    "); see " + dir_ + "/cluster.log");
  return out;
}

Result<std::unique_ptr<LocalCluster>> LocalCluster::Up(int hosts, const std::string& rate,
                                                       int mtu) {
  if (geteuid() != 0) return FailedPrecondition("namespace hosts need root");
  auto c = std::unique_ptr<LocalCluster>(new LocalCluster());
  std::random_device rd;
  c->name_ = "g" + std::to_string(rd() % 1000000);
  GEMINI_ASSIGN_OR_RETURN(c->script_, SupportFile("cluster"));
  char tmpl[] = "/tmp/gemini-cluster-XXXXXX";
  c->dir_ = mkdtemp(tmpl);
  std::vector<std::string> args{"up", std::to_string(hosts)};
  if (!rate.empty()) args.insert(args.end(), {"--rate", rate});
  if (mtu > 0) args.insert(args.end(), {"--mtu", std::to_string(mtu)});
  c->up_ = true;
  GEMINI_RETURN_IF_ERROR(c->Run(args).status());
  GEMINI_ASSIGN_OR_RETURN(c->bridge_, c->Run({"addr", "bridge"}));
  for (int i = 0; i < hosts; ++i) {
    GEMINI_ASSIGN_OR_RETURN(std::string a, c->Run({"addr", std::to_string(i)}));
    c->addrs_.push_back(a);
  }
  c->secret_file_ = c->dir_ + "/secret";
  std::ofstream(c->secret_file_) << std::hex << rd() << rd() << rd() << rd() << "\n";
  chmod(c->secret_file_.c_str(), 0600);
  return c;
}

std::vector<std::string> LocalCluster::ExecArgs(int host) const {
  return {"bash", script_, "exec", std::to_string(host), "--name", name_, "--"};
}

Status LocalCluster::Remove(int host) { return Run({"remove", std::to_string(host)}).status(); }

Status LocalCluster::Freeze(int host) { return Run({"freeze", std::to_string(host)}).status(); }

Status LocalCluster::Thaw(int host) { return Run({"thaw", std::to_string(host)}).status(); }

Result<int> LocalCluster::Add() {
  GEMINI_ASSIGN_OR_RETURN(std::string idx, Run({"add"}));
  int i = std::atoi(idx.c_str());
  GEMINI_ASSIGN_OR_RETURN(std::string a, Run({"addr", std::to_string(i)}));
  if (static_cast<int>(addrs_.size()) <= i) addrs_.resize(i + 1);
  addrs_[i] = a;
  return i;
}

void LocalCluster::Down(bool keep_logs) {
  if (!up_) return;
  up_ = false;
  (void)Run({"down"});
  if (!keep_logs) std::filesystem::remove_all(dir_);
}

LocalCluster::~LocalCluster() { Down(); }

}  // namespace gemini::harness
