// EtcdCluster: an etcd cluster of one or more members, each an EtcdProcess
// on `member.host` with its own ports, data and log, for tests and the
// namespace harness. With 3 members a job survives one member's death:
// clients get every member's endpoint (endpoints()) and move to the next one
// when a connection is refused.
//
// Start() picks the ports, starts every member (a member answers only once
// the cluster has a quorum) and returns once each one answers. Kill(i) is a
// member's death (SIGKILL). Stop() (also run by the destructor) kills them
// all. Thread safety: none; one owner drives it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "coord/etcd_process.h"

namespace gemini {

struct EtcdClusterOptions {
  int members = 1;
  // For every member: host, TLS, limits. Ports, name, data dir and
  // membership are set per member. With several members the raft timers
  // default to 50 ms / 500 ms (leases down to 1 s, no elections from a
  // loaded machine's hiccups).
  EtcdProcessOptions member;
};

class EtcdCluster {
 public:
  static Result<std::unique_ptr<EtcdCluster>> Start(EtcdClusterOptions options);
  ~EtcdCluster();

  // Every member's client URL, comma-separated (what --etcd takes).
  std::string endpoints() const;
  int size() const { return static_cast<int>(members_.size()); }
  // -1 once the member was killed.
  pid_t pid(int member) const;
  // SIGKILL member `member` (its data goes with it).
  Status Kill(int member);
  void Stop();

 private:
  EtcdCluster() = default;
  std::vector<std::unique_ptr<EtcdProcess>> members_;
  std::vector<std::string> urls_;
};

}  // namespace gemini
