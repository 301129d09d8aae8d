// LocalCluster: a handle on a namespace cluster made by scripts/cluster (see
// docs/cluster.md), plus a job secret file, for the namespace harness
// (launcher.h) and the benchmarks. Hosts are network namespaces; ExecArgs(i)
// prefixes a command so that it runs inside host i. Down() (also run by the
// destructor) removes exactly the cluster it created. Needs root.
// Not thread-safe; one owner.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini::harness {

class LocalCluster {
 public:
  ~LocalCluster();
  // Creates `hosts` hosts named with a unique prefix; rate "" = unlimited,
  // mtu 0 = the default (1500).
  static Result<std::unique_ptr<LocalCluster>> Up(int hosts, const std::string& rate = "",
                                                  int mtu = 0);

  const std::string& bridge() const { return bridge_; }
  const std::string& addr(int host) const { return addrs_[host]; }
  int size() const { return static_cast<int>(addrs_.size()); }
  const std::string& secret_file() const { return secret_file_; }
  const std::string& dir() const { return dir_; }
  std::vector<std::string> ExecArgs(int host) const;
  // A hardware failure: every process in the host killed, the host deleted.
  Status Remove(int host);
  // A machine that stalls: every process in the host stopped (SIGSTOP), or
  // resumed (SIGCONT).
  Status Freeze(int host);
  Status Thaw(int host);
  // One more host; returns its index.
  Result<int> Add();
  // Removes the hosts; the log folder too unless keep_logs.
  void Down(bool keep_logs = false);

 private:
  Result<std::string> Run(const std::vector<std::string>& args) const;
  std::string name_, script_, bridge_, dir_, secret_file_;
  std::vector<std::string> addrs_;
  bool up_ = false;
};

}  // namespace gemini::harness
