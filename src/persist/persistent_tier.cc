#include "persist/persistent_tier.h"

#include <cmath>

#include "common/log.h"
#include "persist/catalog.h"
#include "persist/layout.h"
#include "persist/shard_file.h"

namespace gemini {
namespace {

Status CheckOptions(const PersistOptions& o) {
  if (o.root.empty()) return InvalidArgument("persistent tier: no root directory");
  if (o.every_iterations < 0) return InvalidArgument("persistent tier: every_iterations < 0");
  if (!(o.every_seconds >= 0) || !std::isfinite(o.every_seconds))
    return InvalidArgument("persistent tier: every_seconds must be finite and >= 0");
  if (o.keep_complete < 1) return InvalidArgument("persistent tier: keep_complete must be >= 1");
  if (o.piece_bytes == 0) return InvalidArgument("persistent tier: piece_bytes must be > 0");
  return Status::Ok();
}

// Cheap checks only; the worker validates the whole manifest before writing.
Status CheckOffer(const std::string& job, uint32_t rank, int64_t iteration, int64_t epoch,
                  const Manifest& m, const std::vector<uint32_t>& crcs, const uint8_t* data) {
  GEMINI_RETURN_IF_ERROR(ValidateJobName(job));
  if (epoch < 0) return InvalidArgument("offer with a negative epoch");
  if (m.job != job || m.rank != rank || m.iteration != iteration)
    return InvalidArgument("offer for job " + job + " rank " + std::to_string(rank) +
                           " iteration " + std::to_string(iteration) +
                           " carries the manifest of another shard");
  if (iteration < 0) return InvalidArgument("offer with a negative iteration");
  if (m.chunk_size == 0 || crcs.size() != m.NumChunks())
    return InvalidArgument("offer: " + std::to_string(crcs.size()) + " CRCs for " +
                           std::to_string(m.chunk_size == 0 ? 0 : m.NumChunks()) + " chunks");
  if (data == nullptr && m.data_bytes > 0) return InvalidArgument("offer without data");
  return Status::Ok();
}

void Call(std::function<void()>& fn) {
  if (fn) fn();
  fn = nullptr;
}

}  // namespace

Result<std::unique_ptr<PersistentTier>> PersistentTier::Open(PersistEnv* env,
                                                             PersistOptions options) {
  if (env == nullptr) return InvalidArgument("persistent tier: no env");
  GEMINI_RETURN_IF_ERROR(CheckOptions(options));
  GEMINI_RETURN_IF_ERROR(CreateDirs(env, options.root));
  if (!options.clock) options.clock = PersistOptions::Clock::now;
  return std::unique_ptr<PersistentTier>(new PersistentTier(env, std::move(options)));
}

PersistentTier::PersistentTier(PersistEnv* env, PersistOptions options)
    : env_(env), options_(std::move(options)) {
  worker_ = std::thread([this] { Run(); });
}

PersistentTier::~PersistentTier() { Stop(); }

Result<OfferOutcome> PersistentTier::Offer(const std::string& job, uint32_t rank, int64_t iteration,
                                           int64_t epoch, Manifest manifest,
                                           std::vector<uint32_t> crcs, const uint8_t* data,
                                           std::function<void()> release) {
  Status bad = CheckOffer(job, rank, iteration, epoch, manifest, crcs, data);
  std::function<void()> to_release;
  Result<OfferOutcome> outcome = OfferOutcome::kSkipped;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.offered;
    if (bad.ok() && stopping_) bad = FailedPrecondition("persistent tier is stopped");
    if (!bad.ok()) {
      ++stats_.rejected;
      outcome = bad;
      to_release = std::move(release);
    } else if (!AcceptLocked(job, iteration)) {
      ++stats_.skipped;
      to_release = std::move(release);
    } else {
      Pending p{epoch, std::move(manifest), std::move(crcs), data, std::move(release)};
      outcome = EnqueueLocked(std::move(p), &to_release);
    }
  }
  cv_.notify_all();
  Call(to_release);
  return outcome;
}

Result<OfferOutcome> PersistentTier::OfferPinned(const std::string& job, uint32_t rank,
                                                 int64_t iteration, int64_t epoch,
                                                 std::unique_ptr<ShardPin> pin) {
  if (!pin) return InvalidArgument("offer without a pinned shard");
  const ShardPin* p = pin.get();
  // std::function needs a copyable callable: share the pin; release drops it.
  auto held = std::make_shared<std::unique_ptr<ShardPin>>(std::move(pin));
  return Offer(job, rank, iteration, epoch, p->manifest, p->crcs, p->data,
               [held] { held->reset(); });
}

bool PersistentTier::AcceptLocked(const std::string& job, int64_t iteration) {
  auto now = options_.clock();
  auto [it, first] = policy_.try_emplace(job);
  JobPolicy& p = it->second;
  if (first) p.last_choice = now;
  if (iteration == p.chosen) return true;
  bool forced = p.forced.erase(iteration) > 0;
  bool by_iter = options_.every_iterations > 0 && iteration % options_.every_iterations == 0;
  bool by_time =
      options_.every_seconds > 0 &&
      std::chrono::duration<double>(now - p.last_choice).count() >= options_.every_seconds;
  if (!forced && !by_iter && !by_time) return false;
  p.chosen = iteration;
  p.last_choice = now;
  return true;
}

Result<OfferOutcome> PersistentTier::EnqueueLocked(Pending offer,
                                                   std::function<void()>* superseded) {
  Key key{offer.manifest.job, offer.manifest.rank};
  auto it = pending_.find(key);
  if (it == pending_.end()) {
    pending_.emplace(std::move(key), std::move(offer));
    return OfferOutcome::kQueued;
  }
  ++stats_.dropped;
  *superseded = std::move(it->second.release);
  it->second = std::move(offer);
  return OfferOutcome::kReplaced;
}

void PersistentTier::PersistIteration(const std::string& job, int64_t iteration) {
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, first] = policy_.try_emplace(job);
  if (first) it->second.last_choice = options_.clock();
  it->second.forced.insert(iteration);
}

Status PersistentTier::Flush(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return pending_.empty() && !writing_; }))
    return DeadlineExceeded("persistent tier: " + std::to_string(pending_.size()) +
                            " offers still pending after " + std::to_string(timeout.count()) +
                            " ms");
  return Status::Ok();
}

void PersistentTier::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mu_);
  std::map<Key, Pending> abandoned;
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cancel_ = true;
    abandoned.swap(pending_);
    stats_.abandoned += abandoned.size();
  }
  cv_.notify_all();
  for (auto& [key, offer] : abandoned) Call(offer.release);
  if (worker_.joinable()) worker_.join();
}

PersistStats PersistentTier::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Status PersistentTier::MarkComplete(const std::string& job, const IterationKey& key,
                                    uint32_t world_size) {
  return gemini::MarkComplete(env_, options_.root, job, key, world_size);
}

Result<IterationKey> PersistentTier::NewestComplete(const std::string& job) {
  return gemini::NewestComplete(env_, options_.root, job);
}

Result<std::vector<IterationKey>> PersistentTier::ApplyRetention(const std::string& job) {
  return gemini::ApplyRetention(env_, options_.root, job, options_.keep_complete,
                                BusyIterations(job));
}

void PersistentTier::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;
    Pending offer = TakeNextLocked();
    writing_.emplace(offer.manifest.job, IterationKey{offer.manifest.iteration, offer.epoch});
    lock.unlock();
    WriteOne(offer);
    lock.lock();
    writing_.reset();
    cv_.notify_all();
  }
}

PersistentTier::Pending PersistentTier::TakeNextLocked() {
  auto next = pending_.begin();
  for (auto it = pending_.begin(); it != pending_.end(); ++it)
    if (it->second.manifest.iteration < next->second.manifest.iteration) next = it;
  Pending offer = std::move(next->second);
  pending_.erase(next);
  return offer;
}

void PersistentTier::WriteOne(Pending& offer) {
  const Manifest& m = offer.manifest;
  ShardWriteOptions wo;
  wo.cancel = &cancel_;
  wo.piece_bytes = options_.piece_bytes;
  Status st = WriteShard(env_, options_.root, offer.epoch, m, offer.crcs, offer.data, wo);
  Call(offer.release);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (st.ok()) {
      ++stats_.written;
      stats_.bytes_written += m.data_bytes;
      stats_.last_written_iteration = m.iteration;
    } else if (cancel_) {
      ++stats_.abandoned;
    } else {
      ++stats_.failed;
      stats_.last_error = st;
    }
  }
  if (!st.ok()) {
    if (!cancel_)
      GEMINI_LOG(WARN) << "[persist] job " << m.job << " rank " << m.rank << " iteration "
                       << m.iteration << " epoch " << offer.epoch
                       << ": write failed: " << st.ToString();
    return;
  }
  GEMINI_LOG(INFO) << "[persist] job " << m.job << " rank " << m.rank << " iteration "
                   << m.iteration << " epoch " << offer.epoch << ": wrote " << m.data_bytes
                   << " bytes";
  CompleteAndRetain({m.iteration, offer.epoch}, m);
}

void PersistentTier::CompleteAndRetain(const IterationKey& key, const Manifest& m) {
  Status st = gemini::MarkComplete(env_, options_.root, m.job, key, m.world_size);
  if (st.code() == Code::kFailedPrecondition) return;  // Other ranks are not there (yet).
  if (!st.ok()) return RecordError(st);
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.completed;
  }
  auto removed = ApplyRetention(m.job);
  if (!removed.ok()) return RecordError(removed.status());
  std::lock_guard<std::mutex> lock(mu_);
  stats_.removed += removed->size();
}

std::set<IterationKey> PersistentTier::BusyIterations(const std::string& job) {
  std::lock_guard<std::mutex> lock(mu_);
  std::set<IterationKey> keys;
  if (writing_ && writing_->first == job) keys.insert(writing_->second);
  for (const auto& [key, offer] : pending_)
    if (key.first == job) keys.insert({offer.manifest.iteration, offer.epoch});
  return keys;
}

void PersistentTier::RecordError(const Status& st) {
  GEMINI_LOG(WARN) << "[persist] " << st.ToString();
  std::lock_guard<std::mutex> lock(mu_);
  stats_.last_error = st;
}

}  // namespace gemini
