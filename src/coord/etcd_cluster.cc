#include "coord/etcd_cluster.h"

namespace gemini {

Result<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(EtcdClusterOptions o) {
  if (o.members < 1 || o.members > 7) return InvalidArgument("etcd members must be 1 to 7");
  if (o.members == 1) {
    std::unique_ptr<EtcdCluster> c(new EtcdCluster());
    GEMINI_ASSIGN_OR_RETURN(auto p, EtcdProcess::Start(o.member));
    c->urls_.push_back(p->endpoint());
    c->members_.push_back(std::move(p));
    return c;
  }
  if (o.member.fast_timers && o.member.heartbeat_ms == 10 && o.member.election_ms == 50) {
    o.member.heartbeat_ms = 50;
    o.member.election_ms = 500;
  }
  Status last;
  for (int attempt = 0; attempt < 3; ++attempt) {  // Ports picked early may be taken.
    std::vector<int> client, peer;
    std::string initial;
    for (int i = 0; i < o.members; ++i) {
      client.push_back(EtcdProcess::PickPort(o.member.host));
      peer.push_back(EtcdProcess::PickPort(o.member.host));
      initial += (i ? "," : "") + std::string("m") + std::to_string(i) + "=http://" +
                 o.member.host + ":" + std::to_string(peer.back());
    }
    std::unique_ptr<EtcdCluster> c(new EtcdCluster());
    last = Status::Ok();
    for (int i = 0; i < o.members && last.ok(); ++i) {
      EtcdProcessOptions m = o.member;
      m.name = "m" + std::to_string(i);
      m.client_port = client[i];
      m.peer_port = peer[i];
      m.initial_cluster = initial;
      m.wait_ready = false;
      auto p = EtcdProcess::Start(m);
      if (!p.ok()) {
        last = p.status();
        break;
      }
      c->urls_.push_back((*p)->endpoint());
      c->members_.push_back(std::move(*p));
    }
    for (int i = 0; i < c->size() && last.ok(); ++i) last = c->members_[i]->AwaitReady();
    if (last.ok()) return c;
  }
  return last;
}

EtcdCluster::~EtcdCluster() { Stop(); }

std::string EtcdCluster::endpoints() const {
  std::string out;
  for (const auto& u : urls_) out += (out.empty() ? "" : ",") + u;
  return out;
}

pid_t EtcdCluster::pid(int member) const {
  return member >= 0 && member < size() ? members_[member]->pid() : -1;
}

Status EtcdCluster::Kill(int member) {
  if (member < 0 || member >= size()) return NotFound("no etcd member " + std::to_string(member));
  members_[member]->Stop();
  return Status::Ok();
}

void EtcdCluster::Stop() {
  for (auto& m : members_) m->Stop();
}

}  // namespace gemini
