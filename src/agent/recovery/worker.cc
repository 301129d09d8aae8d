#include "agent/recovery/worker.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "persist/env.h"
#include "persist/layout.h"
#include "persist/shard_file.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
constexpr milliseconds kTick{50};
constexpr milliseconds kCall{3000};
constexpr milliseconds kTermGrace{3000};  // SIGTERM to SIGKILL.
constexpr int kFetchAttempts = 3;         // Per shard, while preparing.
constexpr milliseconds kFetchPause{500};  // Times the attempt number.

std::string Key(const char* dir, int64_t epoch, uint32_t id) {
  return std::string(dir) + "/" + std::to_string(epoch) + "/" + std::to_string(id);
}

}  // namespace

Worker::Worker(WorkerContext ctx) : ctx_(std::move(ctx)) {}
Worker::~Worker() { Stop(); }

void Worker::Start() {
  thread_ = std::thread([this] { Run(); });
}

void Worker::Stop() {
  if (stop_.exchange(true)) return;
  if (thread_.joinable()) thread_.join();
  KillTrainers();
}

std::vector<uint32_t> Worker::Ranks() const {
  return layout_ ? layout_->Ranks(ctx_.host) : std::vector<uint32_t>{};
}

void Worker::Run() {
  while (!stop_) {
    Step();
    std::this_thread::sleep_for(kTick);
  }
}

void Worker::Step() {
  if (fenced_) return;
  auto kv = ctx_.coord->Watched("plan");  // A mirror: no request per step.
  Result<Plan> plan = kv.ok() ? DecodePlan(kv->value) : Result<Plan>(kv.status());
  // Declared lost while still running (frozen, or cut off past its lease): a
  // replacement serves this host id from that epoch on. Stand down before
  // registering again, or two agents would serve one host id.
  // A replacement follows an epoch that already names its host as failed;
  // a newer plan that still does (superseded while preparing) is not news.
  const auto names = [this](const Plan& p) {
    return std::count(p.failed_hosts.begin(), p.failed_hosts.end(), ctx_.host) > 0;
  };
  if (plan.ok() && entered_ && plan->epoch > plan_.epoch && names(*plan) && !names(plan_)) {
    Fence(*plan);
    return;
  }
  auto maintained = ctx_.coord->Maintain();
  if (!maintained.ok()) GEMINI_LOG(WARN) << "[worker] " << maintained.status().ToString();
  if (!plan.ok()) return;  // etcd away: keep training; nothing to follow now.
  if (plan->epoch > plan_.epoch) {
    auto members = JobLayout::ForPlan(ctx_.job, ctx_.config, *plan);
    auto resume = JobLayout::ResumeForPlan(ctx_.job, ctx_.config, *plan);
    if (!members.ok() || !resume.ok()) {  // Forged or corrupt: the root puts a valid plan back.
      GEMINI_LOG_EVERY_N_SEC(WARN, 10) << "[worker] ignoring plan epoch " << plan->epoch << ": "
                                       << (members.ok() ? resume : members).status().ToString();
      return;
    }
    EnterEpoch(*plan, *members, *resume);
  }
  if (plan->epoch != plan_.epoch) return;
  plan_.state = plan->state;
  if (!layout_->Has(ctx_.host)) return;  // The job went on without this host.
  if (plan_.state == "running" && !started_) {
    Status st = StartTrainers(plan_);
    if (!st.ok()) GEMINI_LOG(ERROR) << "[worker] starting trainers: " << st.ToString();
    started_ = true;
  }
  if (started_) WatchTrainers();
}

void Worker::Fence(const Plan& plan) {
  fenced_ = true;
  KillTrainers();
  ctx_.coord->Stop();  // No more heartbeats, registrations or campaigns under this host id.
  GEMINI_LOG(ERROR) << "[worker] host " << ctx_.host << " was declared lost in epoch " << plan.epoch
                    << " (" << plan.reason << ") while this agent was still running "
                    << "(stalled or cut off past its lease): fenced. Its trainers are stopped and "
                    << "it no longer registers; a replacement serves host " << ctx_.host
                    << ". Restart this agent as a standby to rejoin.";
}

void Worker::EnterEpoch(const Plan& plan, LayoutPtr members, LayoutPtr resume) {
  entered_ = true;
  KillTrainers();
  {
    std::lock_guard<std::mutex> lock(mu_);
    plan_ = plan;
    resumed_ = false;
  }
  layout_ = std::move(members);
  resume_ = std::move(resume);
  started_ = reported_done_ = false;
  finished_.clear();
  reported_.clear();
  if (ctx_.on_layout) ctx_.on_layout(plan.epoch, layout_, resume_);
  ctx_.coord->SetEpoch(plan.epoch);
  if (plan.state == "failed") {
    GEMINI_LOG(ERROR) << "[worker] host " << ctx_.host << ": the job failed: " << plan.reason;
    return;
  }
  if (plan.kind != "start" && ctx_.metrics)
    ctx_.metrics->RecordRecovery(plan.kind, plan.detected_at - plan.failed_at);
  // Complete: the resume iteration in the world that saved it; nothing in any
  // other generation of the job (this epoch's world when it is another one,
  // and older worlds), so that trainers restore exactly what the plan says.
  ctx_.store->ResetGenerations(ctx_.job, resume_->store_job(), plan.resume_iteration);
  if (!layout_->Has(ctx_.host)) {
    GEMINI_LOG(WARN) << "[worker] host " << ctx_.host << " is not a member of epoch " << plan.epoch
                     << " (" << plan.reason << "): the job goes on without it";
    return;
  }
  if (plan.kind == "shrink")
    GEMINI_LOG(WARN) << "[worker] epoch " << plan.epoch << ": the job goes on with "
                     << layout_->members().size() << " of " << ctx_.config.num_hosts
                     << " hosts (world size " << resume_->world() << " -> " << layout_->world()
                     << ", store job " << layout_->store_job() << ")";
  Status st = Prepare(plan);
  GEMINI_LOG(INFO) << "[worker] host " << ctx_.host << " epoch " << plan.epoch << " (" << plan.kind
                   << "): resume at " << plan.resume_iteration << " from "
                   << plan.SourceFor(ctx_.host) << ": " << st.ToString();
  nlohmann::json ready{{"ok", st.ok()},
                       {"error", st.ok() ? "" : st.ToString()},
                       {"source", plan.SourceFor(ctx_.host)},
                       {"at", WallNow()}};
  for (int i = 0; i < 100 && !stop_; ++i) {  // etcd may be briefly away.
    if (PutOwn(Key("ready", plan.epoch, ctx_.host), ready.dump())) break;
    std::this_thread::sleep_for(milliseconds(100));
  }
}

Status Worker::Prepare(const Plan& plan) {
  if (plan.resume_iteration < 0) return Status::Ok();
  std::string source = plan.SourceFor(ctx_.host);
  const JobLayout& from = *resume_;
  // Same world: this host's ranks. Another world (a shrink): every rank of
  // the world that saved the iteration, which each trainer reshards from.
  std::vector<uint32_t> ranks = Ranks();
  const bool reshard = from.members() != layout_->members();
  if (reshard) {
    ranks.clear();
    for (uint32_t r = 0; r < from.world(); ++r) ranks.push_back(r);
  }
  int fetched = 0;
  for (uint32_t rank : ranks) {
    if (source == "persistent") {
      GEMINI_RETURN_IF_ERROR(
          LoadPersisted(from, rank, {plan.resume_iteration, plan.persisted_epoch}));
      continue;
    }
    if (ctx_.store->Pin(from.store_job(), rank, plan.resume_iteration).ok()) continue;  // Local.
    // A holder that is slow or briefly unreachable must not turn the recovery
    // into a persistent-tier one: kFetchAttempts tries, with a pause between.
    Result<int64_t> got = ctx_.fetch(from.store_job(), rank, plan.resume_iteration);
    for (int attempt = 1; !got.ok() && attempt < kFetchAttempts && !stop_; ++attempt) {
      GEMINI_LOG(WARN) << "[worker] fetching rank " << rank << " iteration "
                       << plan.resume_iteration << " of " << from.store_job() << " (attempt "
                       << attempt << " of " << kFetchAttempts << "): " << got.status().ToString();
      std::this_thread::sleep_for(kFetchPause * attempt);
      got = ctx_.fetch(from.store_job(), rank, plan.resume_iteration);
    }
    GEMINI_RETURN_IF_ERROR(got.status());
    ++fetched;
  }
  if (reshard)
    GEMINI_LOG(INFO) << "[worker] host " << ctx_.host << " holds all " << from.world()
                     << " shards of iteration " << plan.resume_iteration << " of "
                     << from.store_job() << " (" << fetched << " fetched) for resharding onto "
                     << layout_->world() << " ranks";
  return Status::Ok();
}

Status Worker::LoadPersisted(const JobLayout& world, uint32_t rank, const IterationKey& key) {
  PersistEnv* env = PersistEnv::Posix();
  // Checked: that job, rank, iteration, epoch and world size, or an error.
  ShardId id{world.store_job(), rank, key, world.world()};
  GEMINI_ASSIGN_OR_RETURN(ShardInfo info, ReadShardInfoFor(env, ctx_.config.persist_dir, id));
  uint64_t writer = next_writer_++;
  GEMINI_ASSIGN_OR_RETURN(SlotGrant g,
                          ctx_.store->Begin(writer, info.manifest, milliseconds(10000)));
  close(g.fd);
  auto read = ReadShardIntoFor(env, ctx_.config.persist_dir, id, g.data, g.segment_size);
  Status st = read.ok()
                  ? ctx_.store->Commit(writer, world.store_job(), rank, key.iteration, read->crcs)
                  : read.status();
  if (!st.ok()) ctx_.store->AbortWriter(writer);
  return st;
}

Status Worker::StartTrainers(const Plan& plan) {
  GEMINI_ASSIGN_OR_RETURN(auto hosts, ctx_.coord->Hosts());
  const uint32_t master = layout_->members().front();  // Group rank 0.
  if (!hosts.count(master))
    return Unavailable("host " + std::to_string(master) + " is not registered");
  for (uint32_t rank : Ranks()) {
    std::map<std::string, std::string> env = ctx_.config.env;
    // torchrun's contract, so that a script written for torchrun runs as is.
    const std::string world = std::to_string(layout_->world());
    env["RANK"] = env["ROLE_RANK"] = std::to_string(rank);
    env["WORLD_SIZE"] = env["ROLE_WORLD_SIZE"] = world;
    env["LOCAL_RANK"] = std::to_string(rank % ctx_.config.nproc_per_host);
    env["LOCAL_WORLD_SIZE"] = std::to_string(ctx_.config.nproc_per_host);
    env["GROUP_RANK"] = std::to_string(*layout_->Position(ctx_.host));
    env["GROUP_WORLD_SIZE"] = std::to_string(layout_->members().size());
    env["ROLE_NAME"] = "default";
    env["MASTER_ADDR"] = hosts[master].addr;
    env["MASTER_PORT"] = std::to_string(plan.master_port);
    env["TORCHELASTIC_RUN_ID"] = ctx_.job;
    env["TORCHELASTIC_RESTART_COUNT"] = std::to_string(plan.restarts);
    env["TORCHELASTIC_MAX_RESTARTS"] = std::to_string(ctx_.config.max_restarts);
    env["GEMINI_SOCKET"] = ctx_.socket;
    env["GEMINI_JOB"] = ctx_.job;
    env["GEMINI_STORE_JOB"] = layout_->store_job();  // This world's generation of the job.
    env["GEMINI_EPOCH"] = std::to_string(plan.epoch);
    std::string log = ctx_.log_dir + "/trainer-" + std::to_string(rank) + ".log";
    {  // Every start of the rank appends to its log, under a line that says which.
      std::ofstream mark(log, std::ios::app);
      mark << "=== gemini: epoch " << plan.epoch << " (" << plan.kind << ", restart "
           << plan.restarts << "): rank " << rank << " of " << world << " on host " << ctx_.host
           << ", resuming at iteration " << plan.resume_iteration << " ===" << std::endl;
    }
    GEMINI_ASSIGN_OR_RETURN(auto p, Subprocess::Start(ctx_.config.command, env, false, log));
    (void)ctx_.coord->kv().Put("pids/" + std::to_string(rank), std::to_string(p->pid()),
                               DeadlineAfter(kCall));
    trainers_[rank] = std::move(p);
  }
  return Status::Ok();
}

void Worker::WatchTrainers() {
  for (auto& [rank, p] : trainers_) {
    if (finished_.count(rank) || reported_.count(rank)) continue;
    auto code = p->Wait(milliseconds(0));
    if (!code.ok()) continue;  // Still running.
    if (*code == 0) {
      finished_.insert(rank);
      continue;
    }
    nlohmann::json exit{{"code", *code}, {"at", WallNow()}, {"host", ctx_.host}};
    if (PutOwn(Key("exits", plan_.epoch, rank), exit.dump())) reported_.insert(rank);
    GEMINI_LOG(WARN) << "[worker] trainer rank " << rank << " exited with " << *code;
  }
  if (!reported_done_ && finished_.size() == trainers_.size() && !trainers_.empty())
    reported_done_ = PutOwn(Key("done", plan_.epoch, ctx_.host), std::to_string(WallNow()));
}

bool Worker::PutOwn(const std::string& key, const std::string& value) {
  auto put = ctx_.coord->PutOwn(key, value, DeadlineAfter(kCall));
  if (put.ok() && !*put)
    GEMINI_LOG_EVERY_N_SEC(WARN, 10)
        << "[worker] not writing " << key << ": host " << ctx_.host
        << "'s registration is not this agent's (lease lost, or a replacement took it)";
  return put.ok() && *put;
}

void Worker::KillTrainers() {
  // SIGTERM first (a trainer may clean up), SIGKILL for any still there
  // after the grace period.
  for (auto& [rank, p] : trainers_) p->Signal(SIGTERM);
  const auto grace = std::chrono::steady_clock::now() + kTermGrace;
  for (auto& [rank, p] : trainers_) {
    auto left = std::chrono::duration_cast<milliseconds>(grace - std::chrono::steady_clock::now());
    if (p->Wait(std::max(left, milliseconds(0))).ok()) continue;
    GEMINI_LOG(WARN) << "[worker] trainer rank " << rank << " ignored SIGTERM for "
                     << kTermGrace.count() << " ms: SIGKILL";
    p->Signal(SIGKILL);
    (void)p->Wait(milliseconds(10000));
  }
  trainers_.clear();
}

void Worker::OnCommit(uint32_t rank, int64_t iteration) {
  int64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (resumed_ || iteration <= plan_.resume_iteration) return;
    resumed_ = true;
    epoch = plan_.epoch;
    if (plan_.kind != "start" && ctx_.metrics)
      ctx_.metrics->RecordResume(WallNow() - plan_.failed_at);
  }
  (void)ctx_.coord->kv().Put(Key("resumed", epoch, ctx_.host), std::to_string(WallNow()),
                             DeadlineAfter(kCall));
}

}  // namespace gemini
