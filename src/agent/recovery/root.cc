#include "agent/recovery/root.h"

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "agent/cluster/coord_records.h"
#include "common/log.h"
#include "persist/catalog.h"
#include "persist/env.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTick{100};
constexpr milliseconds kIdleCampaign{1000};
constexpr milliseconds kStopSlice{250};
constexpr milliseconds kCall{2000};
// A host missing from etcd (or with a trainer exit) is lost after this many
// failed probes on successive ticks: one slow or refused dial of a loaded
// machine must not get a live agent replaced (two agents with one host id).
constexpr int kProbesToLose = 2;

std::string EpochDir(const char* dir, int64_t epoch) {
  return std::string(dir) + "/" + std::to_string(epoch) + "/";
}

}  // namespace

RootAgent::RootAgent(RootContext ctx) : ctx_(std::move(ctx)) {}

RootAgent::~RootAgent() { Stop(); }

void RootAgent::Start() {
  thread_ = std::thread([this] { Run(); });
}

void RootAgent::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void RootAgent::Run() {
  uint64_t office = 0;  // The `root` mirror's version last looked at.
  while (!stop_) {
    if (Campaign()) {
      Tick();
      std::this_thread::sleep_for(kTick);
      continue;
    }
    // Not the root: campaign again when the office changes hands (a watch),
    // at the latest after kIdleCampaign.
    const Deadline until = DeadlineAfter(kIdleCampaign);
    while (!stop_ && std::chrono::steady_clock::now() < until) {
      // In slices, so that Stop() is seen within kStopSlice.
      uint64_t now =
          ctx_.coord->WaitWatched("root", office, std::min(until, DeadlineAfter(kStopSlice)));
      if (now != office) {
        office = now;
        break;
      }
    }
  }
}

bool RootAgent::Campaign() {
  KvStore& kv = ctx_.coord->kv();
  // From the mirror (no request); only an office that looks empty is read
  // from etcd itself before campaigning (the mirror may lag a fresh winner).
  auto cur = ctx_.coord->Watched("root");
  if (!cur.ok() && cur.status().code() == Code::kNotFound)
    cur = kv.Get("root", DeadlineAfter(kCall));
  if (cur.ok()) {
    bool mine = cur->value == std::to_string(ctx_.host) && cur->lease == ctx_.coord->lease_id();
    if (mine != is_root_)
      GEMINI_LOG(INFO) << "[root] host " << ctx_.host << (mine ? " is" : " is no longer")
                       << " the root";
    if (mine && !is_root_) in_office_since_ = std::chrono::steady_clock::now();
    if (mine && cur->create_revision > 0) office_revision_ = cur->create_revision;
    if (!mine) {
      auto id = DecodeId(cur->value);
      if (id.ok()) last_root_ = static_cast<int64_t>(*id);
    }
    is_root_ = mine;
    return mine;
  }
  if (cur.status().code() != Code::kNotFound) return false;
  LeaseId lease = ctx_.coord->lease_id();
  if (lease == kNoLease) return false;  // Not registered (or fenced): no office without a lease.
  auto won = kv.CreateIfAbsent("root", std::to_string(ctx_.host), DeadlineAfter(kCall), lease);
  is_root_ = won.ok() && *won;
  office_revision_ = 0;  // Learned from the key (WritePlan reads it when needed).
  if (is_root_) {
    GEMINI_LOG(INFO) << "[root] host " << ctx_.host << " elected root";
    in_office_since_ = std::chrono::steady_clock::now();
  }
  return is_root_;
}

Result<IterationKey> RootAgent::NewestPersisted(const JobLayout& layout) {
  if (ctx_.config.persist_dir.empty()) return NotFound("no persistent tier");
  PersistEnv* env = PersistEnv::Posix();
  // That world's files (agents persist under the epoch's store job).
  const std::string& job = layout.store_job();
  GEMINI_ASSIGN_OR_RETURN(std::vector<IterationKey> keys,
                          ListIterations(env, ctx_.config.persist_dir, job));
  // Newest first: the first one every rank persisted (in one epoch).
  for (auto it = keys.rbegin(); it != keys.rend(); ++it)
    if (MarkComplete(env, ctx_.config.persist_dir, job, *it, layout.world()).ok()) return *it;
  return NotFound("no complete persisted iteration");
}

std::optional<RootAgent::Persisted> RootAgent::NewestPersisted(const Plan& plan) {
  // The current world's files, and those of the world it resumed from (a
  // world that just shrank or grew has none of its own yet): the newer.
  std::optional<Persisted> best;
  for (const auto& world : {JobLayout::ForPlan(ctx_.job, ctx_.config, plan),
                            JobLayout::ResumeForPlan(ctx_.job, ctx_.config, plan)}) {
    if (!world.ok()) continue;
    auto key = NewestPersisted(**world);
    if (key.ok() && (!best || key->iteration > best->key.iteration))
      best = Persisted{*key, (*world)->members()};
  }
  return best;
}

Result<Observations> RootAgent::Observe(const Plan& plan, const JobLayout& layout) {
  Observations obs;
  obs.now = WallNow();
  obs.lease_ttl_s = ctx_.lease_ttl_s;
  GEMINI_ASSIGN_OR_RETURN(auto hosts, ctx_.coord->WatchedHosts());
  for (const auto& [id, h] : hosts) {
    obs.live_hosts.insert(id);
    last_seen_[id] = h;
  }
  // Missing: confirm it is really gone. One this root never saw registered
  // (it took office after an etcd outage, say) has until a lease TTL + 1 s
  // after the root took office to register again; not the previous root's
  // host, whose lease expiring is how this root got the office.
  std::map<uint32_t, HostInfo> missing;
  bool settling = std::chrono::steady_clock::now() - in_office_since_ <
                  std::chrono::duration<double>(ctx_.lease_ttl_s + 1.0);
  for (uint32_t h : layout.members()) {
    if (obs.live_hosts.count(h)) continue;
    if (last_seen_.count(h))
      missing[h] = last_seen_[h];
    else if (settling && static_cast<int64_t>(h) != last_root_)
      obs.live_hosts.insert(h);
  }
  for (const auto& [h, live] : Confirm(missing))
    if (live) obs.live_hosts.insert(h);
  GEMINI_ASSIGN_OR_RETURN(auto exits,
                          ctx_.coord->WatchedPrefix("exits/", EpochDir("exits", plan.epoch)));
  for (const auto& e : exits.kvs) {
    // A trainer's exit: a forged or corrupt record still says "something
    // exited" only when its key names a rank; it is timed now.
    auto rank = KeyId(e.key);
    auto exit = DecodeExit(e.value);
    if (!rank.ok() || *rank >= layout.world()) {
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[root] ignoring " << e.key << ": not a rank";
      continue;
    }
    if (!exit.ok())
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[root] " << e.key << ": " << exit.status().ToString();
    obs.exits[*rank] = exit.ok() && exit->at > 0 ? exit->at : obs.now;
  }
  // A trainer died: is its whole host gone? (Faster than waiting for its lease.)
  if (!obs.exits.empty()) {
    std::map<uint32_t, HostInfo> registered;
    for (uint32_t h : obs.live_hosts)
      if (hosts.count(h) && layout.Has(h)) registered[h] = hosts[h];
    for (const auto& [h, live] : Confirm(registered))
      if (!live) obs.live_hosts.erase(h);
  } else {
    for (const auto& [id, h] : hosts) failed_probes_.erase(id);  // Registered and quiet.
  }
  GEMINI_ASSIGN_OR_RETURN(auto ready,
                          ctx_.coord->WatchedPrefix("ready/", EpochDir("ready", plan.epoch)));
  for (const auto& r : ready.kvs) {
    auto host = KeyId(r.key);
    auto rec = DecodeReady(r.value);
    if (!host.ok() || !layout.Has(*host)) {
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[root] ignoring " << r.key << ": not a member host";
      continue;
    }
    if (!rec.ok())
      obs.not_ready[*host] = "unreadable ready record: " + rec.status().ToString();
    else if (!rec->ok)
      obs.not_ready[*host] = rec->error.empty() ? "unknown" : rec->error;
    else
      obs.ready.insert(*host);
  }
  if (plan.state == "preparing" && plan.kind != "start" && plan.detected_at > 0 &&
      obs.now - plan.detected_at > 10) {
    std::string waiting;
    for (uint32_t h : layout.members())
      if (!obs.ready.count(h) && !obs.not_ready.count(h))
        waiting += " " + std::to_string(h) + (obs.live_hosts.count(h) ? "" : " (no machine yet)");
    if (!waiting.empty())
      GEMINI_LOG_EVERY_N_SEC(WARN, 10)
          << "[root] epoch " << plan.epoch << " has been preparing for "
          << static_cast<int64_t>(obs.now - plan.detected_at) << " s; waiting for host(s)"
          << waiting << "; gives up after " << ctx_.config.prepare_timeout_s
          << " s (--prepare-timeout)";
  }
  GEMINI_ASSIGN_OR_RETURN(CompleteRecord complete, ctx_.coord->CompleteWithEpoch());
  obs.complete = complete.iteration;
  obs.complete_epoch = complete.epoch;
  // Idle standbys (a mirror): a lost host is replaced when one is at hand;
  // under --nnodes MIN:MAX it leaves the job otherwise.
  auto standby = ctx_.coord->WatchedPrefix("standby/", "standby/");
  obs.standbys = standby.ok() ? standby->kvs.size() : 0;
  return obs;
}

std::map<uint32_t, bool> RootAgent::Confirm(const std::map<uint32_t, HostInfo>& hosts) {
  std::map<uint32_t, std::future<bool>> probes;
  for (const auto& [h, info] : hosts)
    probes[h] = std::async(std::launch::async, [this, info = info] { return ctx_.probe(info); });
  std::map<uint32_t, bool> live;
  for (auto& [h, probe] : probes) {
    if (probe.get()) {
      failed_probes_.erase(h);
      live[h] = true;
      continue;
    }
    int failed = ++failed_probes_[h];
    live[h] = failed < kProbesToLose;
    if (failed <= kProbesToLose)  // Said once; a lost host is probed every tick.
      GEMINI_LOG(WARN) << "[root] host " << h << " did not answer a probe (" << failed
                       << " in a row" << (live[h] ? ", probing again" : ": lost") << ")";
  }
  return live;
}

void RootAgent::Tick() {
  auto cur = ctx_.coord->Watched("plan");  // A stale copy only makes a plan write fail.
  if (!cur.ok()) return;
  auto plan = DecodePlan(cur->value);
  Result<LayoutPtr> layout = NotFound("no plan");
  if (plan.ok()) {
    layout = JobLayout::ForPlan(ctx_.job, ctx_.config, *plan);
    auto resume = JobLayout::ResumeForPlan(ctx_.job, ctx_.config, *plan);
    if (!layout.ok() || !resume.ok())
      plan = InvalidArgument("members: " + (layout.ok() ? resume : layout).status().message());
  }
  if (!plan.ok() || (known_ && plan->epoch < known_->epoch)) {
    if (known_ && WritePlan(*known_, cur->mod_revision))
      GEMINI_LOG(WARN) << "[root] the plan key held "
                       << (plan.ok() ? "epoch " + std::to_string(plan->epoch) + ", older than "
                                     : "an invalid value (" + plan.status().message() + ") after ")
                       << "epoch " << known_->epoch << ": restored epoch " << known_->epoch;
    return;
  }
  known_ = *plan;
  auto obs = Observe(*plan, **layout);
  if (!obs.ok()) return;
  auto next = PlanRecovery(ctx_.config, *plan, *obs);
  if (next && (next->kind == "group_lost" || next->kind == "shrink")) {  // Maybe from files.
    auto persisted = NewestPersisted(*plan);
    obs->persisted = persisted ? persisted->key.iteration : -1;
    if (persisted) obs->persisted_hosts = persisted->members;
    next = PlanRecovery(ctx_.config, *plan, *obs);
    // The files' timeline, when the plan resumes from them (not when it loads
    // again the files the current epoch resumed from: it names those itself).
    if (next && persisted && next->source == "persistent" && next->persisted_epoch < 0)
      next->persisted_epoch = persisted->key.epoch;
  }
  if (!next) return Advance(*plan, **layout, cur->mod_revision);
  if (!WritePlan(*next, cur->mod_revision)) return;
  GEMINI_LOG(WARN) << "[root] " << next->kind << " failure (" << next->reason << "): epoch "
                   << next->epoch << " resumes at iteration " << next->resume_iteration << " from "
                   << next->source;
  RequestReplacements(*next, *plan);
}

void RootAgent::RequestReplacements(const Plan& plan, const Plan& superseded) {
  KvStore& kv = ctx_.coord->kv();
  if (plan.kind == "shrink") {  // Nobody to replace; a machine asked for earlier is not wanted.
    for (uint32_t h : plan.failed_hosts)
      (void)kv.Delete("provider/requests/" + std::to_string(h), DeadlineAfter(kCall));
    return;
  }
  if (plan.state != "preparing") return;
  auto standby = kv.GetPrefix("standby/", DeadlineAfter(kCall));
  size_t next_standby = 0;
  for (uint32_t h : plan.failed_hosts) {
    // A host the superseded plan was still replacing has its replacement on
    // the way (a standby assigned, or a machine requested): a second one
    // would put two agents on one host id.
    if (superseded.Replaces(h)) continue;
    bool assigned = false;
    while (standby.ok() && next_standby < standby->kvs.size() && !assigned) {
      std::string name = standby->kvs[next_standby++].key.substr(8);
      auto won = kv.CreateIfAbsent("assign/" + name, std::to_string(h), DeadlineAfter(kCall));
      assigned = won.ok() && *won;
      if (assigned) GEMINI_LOG(INFO) << "[root] standby " << name << " replaces host " << h;
    }
    if (!assigned)
      (void)kv.Put("provider/requests/" + std::to_string(h), std::to_string(plan.epoch),
                   DeadlineAfter(kCall));
  }
}

void RootAgent::Advance(const Plan& plan, const JobLayout& layout, int64_t mod_revision) {
  const char* dir = plan.state == "preparing" ? "ready"
                    : plan.state == "running" ? "done"
                                              : nullptr;
  if (dir == nullptr) return;
  auto got = ctx_.coord->WatchedPrefix(std::string(dir) + "/", EpochDir(dir, plan.epoch));
  if (!got.ok()) return;
  size_t members = 0;  // Records of hosts that left the job do not count.
  for (const auto& kv : got->kvs) {
    auto host = KeyId(kv.key);
    members += host.ok() && layout.Has(*host);
  }
  if (members < layout.members().size()) return;
  Plan next = plan;
  next.state = plan.state == "preparing" ? "running" : "done";
  if (WritePlan(next, mod_revision))
    GEMINI_LOG(INFO) << "[root] epoch " << plan.epoch << " " << next.state;
}

bool RootAgent::WritePlan(const Plan& plan, int64_t mod_revision) {
  KvStore& kv = ctx_.coord->kv();
  if (office_revision_ == 0) {  // Won just now: which `root` key is this root's office?
    auto office = kv.Get("root", DeadlineAfter(kCall));
    if (!office.ok() || office->value != std::to_string(ctx_.host) ||
        office->lease != ctx_.coord->lease_id())
      return false;
    office_revision_ = office->create_revision;
  }
  // Only while this root holds the office it won (etcd checks, atomically with
  // the write): a root that stalled past its lease, or was cut off, and lost
  // the office meanwhile cannot overwrite its successor's plans.
  Compare holds_office{"root", Compare::Target::kCreateRevision, Compare::Op::kEqual, "",
                       office_revision_};
  auto done = kv.Txn({Compare::ModRevisionEquals("plan", mod_revision),
                      Compare::ValueEquals("root", std::to_string(ctx_.host)), holds_office},
                     {TxnOp::Put("plan", EncodePlan(plan))}, {}, DeadlineAfter(kCall));
  if (!done.ok() || !done->succeeded) return false;
  known_ = plan;
  return true;
}

}  // namespace gemini
