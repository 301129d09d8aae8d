#include "agent/interleave/interleaver.h"

#include <algorithm>
#include <cmath>

#include "common/log.h"

namespace gemini {
namespace {

constexpr int64_t kKeepIterations = 32;
constexpr size_t kMinSamplesForMeanRate = 8;
// Whole checkpoints sent at once before their times may correct the fit.
constexpr size_t kMinWholeSends = 3;
constexpr size_t kKeepSamples = 64;  // Refitted per replica: keep the fit cheap.

void KeepLast(std::vector<double>& v, double x, size_t n) {
  v.push_back(x);
  if (v.size() > n) v.erase(v.begin());
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

}  // namespace

Result<InterleaveMode> ParseInterleaveMode(const std::string& name) {
  if (name == "none") return InterleaveMode::kNone;
  if (name == "naive") return InterleaveMode::kNaive;
  if (name == "interleave") return InterleaveMode::kInterleave;
  return InvalidArgument("unknown interleave mode '" + name + "' (none, naive or interleave)");
}

const char* InterleaveModeName(InterleaveMode mode) {
  switch (mode) {
    case InterleaveMode::kNone:
      return "none";
    case InterleaveMode::kNaive:
      return "naive";
    case InterleaveMode::kInterleave:
      return "interleave";
  }
  return "?";
}

Status ValidateInterleaveOptions(const InterleaveOptions& o) {
  if (o.sub_buffers == 0 || o.sub_buffers > 64)
    return InvalidArgument("sub-buffers (p) must be 1..64");
  if (o.buffer_bytes < o.sub_buffers || o.buffer_bytes / o.sub_buffers > (256ull << 20) ||
      o.buffer_bytes > (1ull << 30))
    return InvalidArgument("buffer R must be at most 1 GiB, with R/p at most 256 MiB");
  if (!(o.mu > 0 && o.mu <= 1)) return InvalidArgument("mu must be in (0, 1]");
  if (o.warmup_iterations < 1) return InvalidArgument("warm-up iterations must be >= 1");
  if (o.replication_nice < 0 || o.replication_nice > 19)
    return InvalidArgument("replication nice must be 0..19");
  if (o.max_every_k < 1 || o.max_every_k > 10000)
    return InvalidArgument("max every-k must be 1..10000");
  return Status::Ok();
}

nlohmann::json ScheduleToJson(const Schedule& s) {
  return {{"mode", InterleaveModeName(s.mode)},
          {"ready", s.ready},
          {"every_k", s.every_k},
          {"explanation", s.explanation}};
}

Result<std::unique_ptr<Interleaver>> Interleaver::Create(const InterleaveOptions& options) {
  GEMINI_RETURN_IF_ERROR(ValidateInterleaveOptions(options));
  schedule::ProfilerOptions po;
  po.warmup_iterations = options.warmup_iterations;
  GEMINI_ASSIGN_OR_RETURN(auto profiler, schedule::Profiler::Create(po));
  return std::unique_ptr<Interleaver>(new Interleaver(options, std::move(profiler)));
}

Status Interleaver::OnEvent(uint32_t rank, int64_t iteration, TimelineEvent kind, int op,
                            double t) {
  if (iteration < 0 || op < -1 || op > 1 << 20 || !std::isfinite(t))
    return InvalidArgument("malformed timeline event");
  std::lock_guard<std::mutex> lock(mu_);
  if (timeline_rank_ && rank > *timeline_rank_) return Status::Ok();
  timeline_rank_ = rank;
  Status st;
  switch (kind) {
    case TimelineEvent::kIterationStart: {
      // A restarted trainer may repeat iterations: start their spans afresh.
      spans_.erase(spans_.lower_bound(iteration), spans_.end());
      spans_[iteration].started = true;
      while (!spans_.empty() && spans_.begin()->first < iteration - kKeepIterations)
        spans_.erase(spans_.begin());
      st = profiler_->IterationStarted(iteration, t);
      break;
    }
    case TimelineEvent::kOpStart:
      if (op < 0) return InvalidArgument("op event without an op index");
      st = profiler_->OpStarted(iteration, op, t);
      break;
    case TimelineEvent::kOpFinish: {
      if (op < 0) return InvalidArgument("op event without an op index");
      auto& f = spans_[iteration].finished;
      if (f.size() <= static_cast<size_t>(op)) f.resize(op + 1, false);
      f[op] = true;
      st = profiler_->OpFinished(iteration, op, t);
      break;
    }
    case TimelineEvent::kIterationEnd:
      spans_[iteration].ended = true;
      st = profiler_->IterationEnded(iteration, t);
      break;
    default:
      return InvalidArgument("unknown timeline event " + std::to_string(static_cast<int>(kind)));
  }
  cv_.notify_all();
  return st;
}

bool Interleaver::OpenLocked(int64_t iteration, int position) const {
  auto it = spans_.find(iteration);
  if (it == spans_.end()) return spans_.upper_bound(iteration) != spans_.end();
  const Spans& s = it->second;
  if (s.ended || std::next(it) != spans_.end()) return true;
  if (position == 0) return s.started;
  return static_cast<size_t>(position - 1) < s.finished.size() && s.finished[position - 1];
}

schedule::PartitionParams Interleaver::ParamsLocked(uint64_t bytes, int copies) const {
  schedule::PartitionParams p;
  p.checkpoint_bytes = bytes;
  p.copies = copies;
  p.buffer_bytes = options_.buffer_bytes;
  p.sub_buffers = static_cast<int>(options_.sub_buffers);
  p.mu = options_.mu;
  if (link_) {
    p.bandwidth_Bps = link_->bandwidth_Bps;
    p.alpha_s = link_->alpha_s;
  }
  // The fit comes from chunk transfers, which a link's burst allowance (or a
  // shaper's bucket) can make look faster than whole checkpoints go. When
  // whole checkpoints sent at once took longer than the model says, plan with
  // their measured rate: checkpoint less often rather than late.
  if (ungated_send_s_.size() >= kMinWholeSends && bytes > 0 && copies > 0) {
    double measured = Median(ungated_send_s_);
    double model = p.bandwidth_Bps > 0 ? p.alpha_s + double(bytes) * copies / p.bandwidth_Bps : 0;
    if (measured > model && measured > 0) {
      p.bandwidth_Bps = double(bytes) * copies / measured;
      p.alpha_s = 0;
    }
  }
  return p;
}

Schedule Interleaver::ScheduleLocked(schedule::PartitionParams* params,
                                     std::vector<double>* spans) {
  Schedule s;
  s.mode = options_.mode;
  if (options_.mode == InterleaveMode::kNone) {
    s.explanation = "checkpoints stay in this machine's memory (no replication traffic)";
    return s;
  }
  if (options_.mode == InterleaveMode::kNaive) {
    s.explanation = "replicas are sent right after each step; the next iteration waits for them";
    return s;
  }
  auto profile = profiler_->Profile();
  if (!profile.ok()) {
    s.explanation = "profiling the training traffic: " +
                    std::to_string(profiler_->Stats().completed_iterations) + " of " +
                    std::to_string(options_.warmup_iterations) +
                    " iterations (replicas sent as in naive mode meanwhile)";
    return s;
  }
  if (!link_ || last_bytes_ == 0) {
    s.explanation = "measuring the link from the replicas sent so far";
    return s;
  }
  *params = ParamsLocked(last_bytes_, last_copies_);
  *spans = profile->SpanLengths();
  auto choice = schedule::ChooseFrequency(*spans, *params, options_.max_every_k);
  if (!choice.ok()) {
    s.explanation = "no schedule: " + choice.status().ToString();
    return s;
  }
  s.ready = true;
  s.every_k = choice->every_k;
  s.explanation = choice->explanation;
  if (!choice->fits) {
    // No k helps (e.g. every span is shorter than one chunk's start-up):
    // checkpoint every iteration; the leftover goes before each step.
    s.every_k = 1;
    s.explanation = "idle spans of " + std::to_string(choice->idle_s_per_iter) +
                    " s/iteration cannot carry the checkpoint (" + std::to_string(choice->send_s) +
                    " s to send) at any frequency up to every " +
                    schedule::Ordinal(options_.max_every_k) +
                    " iteration: checkpointing every iteration, each lengthened by about " +
                    std::to_string(choice->send_s) + " s";
  }
  return s;
}

Schedule Interleaver::GetSchedule() {
  std::lock_guard<std::mutex> lock(mu_);
  schedule::PartitionParams params;
  std::vector<double> spans;
  return ScheduleLocked(&params, &spans);
}

std::vector<SendStep> Interleaver::PlanSend(uint32_t rank, int64_t iteration, uint64_t bytes,
                                            int copies) {
  std::lock_guard<std::mutex> lock(mu_);
  pending_[{rank, iteration}] = Pending{true, iteration + 1};
  if (options_.mode == InterleaveMode::kNone || copies == 0) return {};
  last_bytes_ = bytes;
  last_copies_ = copies;
  schedule::PartitionParams params;
  std::vector<double> spans;
  Schedule s = ScheduleLocked(&params, &spans);
  std::vector<SendStep> steps;
  if (s.ready) {
    std::vector<double> all;
    for (int j = 0; j < s.every_k; ++j) all.insert(all.end(), spans.begin(), spans.end());
    auto plan = schedule::Partition(all, params);
    if (plan.ok()) {
      const int n = static_cast<int>(spans.size());
      for (size_t i = 0; i < plan->spans.size(); ++i)
        for (const auto& c : plan->spans[i].chunks)
          steps.push_back(
              {iteration + 1 + static_cast<int64_t>(i) / n, static_cast<int>(i) % n, c});
      gated_chunks_ += steps.size();
      pending_[{rank, iteration}] = Pending{false, iteration + s.every_k};
      return steps;
    }
    GEMINI_LOG(WARN) << "[interleave] partition: " << plan.status().ToString();
  }
  // At once. While the link is being measured (interleave mode, warm-up),
  // the first chunk of each copy takes one of four sizes in turn and is
  // acknowledged before the rest go: two bursts of different sizes per copy.
  const uint64_t max = max_chunk();
  const bool measure = options_.mode == InterleaveMode::kInterleave;
  for (int c = 0; c < copies; ++c) {
    uint64_t first = std::max<uint64_t>(1, std::min(max, bytes) >> (1 + (iteration & 3)));
    for (uint64_t off = 0; off < bytes;) {
      uint64_t len = std::min(bytes - off, off == 0 && measure ? first : max);
      steps.push_back({-1, 0, {c, off, len, false}, off == 0 && measure});
      off += len;
    }
  }
  return steps;
}

bool Interleaver::AwaitSpan(int64_t iteration, int position,
                            std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  bool open =
      cv_.wait_until(lock, deadline, [&] { return stop_ || OpenLocked(iteration, position); });
  if (!open || stop_) ++late_chunks_;
  return open && !stop_;
}

std::chrono::milliseconds Interleaver::SpanTimeout() {
  std::lock_guard<std::mutex> lock(mu_);
  auto profile = profiler_->Profile();
  double s = profile.ok() ? 1.0 + 3.0 * profile->iteration_s : 10.0;
  return std::chrono::milliseconds(static_cast<int64_t>(s * 1000));
}

void Interleaver::RecordSamples(const std::vector<schedule::TransferSample>& samples) {
  if (samples.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  samples_.insert(samples_.end(), samples.begin(), samples.end());
  if (samples_.size() > kKeepSamples)
    samples_.erase(samples_.begin(), samples_.end() - kKeepSamples);
  auto fit = schedule::FitLinkModel(samples_);
  if (fit.ok()) {
    link_ = *fit;
    return;
  }
  // Small transfers can be too noisy for a line (e.g. a shard that passes in
  // the link's burst): with enough of them, the mean rate, no start-up cost.
  if (link_ || samples_.size() < kMinSamplesForMeanRate) return;
  double bytes = 0, seconds = 0;
  for (const auto& s : samples_) {
    bytes += static_cast<double>(s.bytes);
    seconds += s.seconds;
  }
  if (seconds > 0 && bytes > 0) {
    schedule::LinkModel mean;
    mean.bandwidth_Bps = bytes / seconds;
    mean.samples_used = static_cast<int>(samples_.size());
    link_ = mean;
  }
}

void Interleaver::MarkReplicated(uint32_t rank, int64_t iteration, const Status& status,
                                 double send_s) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pending_.find({rank, iteration});
  bool at_once = it == pending_.end() || it->second.at_once;
  if (it != pending_.end()) pending_.erase(it);
  if (!status.ok()) ++failed_;
  if (status.ok() && at_once && options_.mode == InterleaveMode::kInterleave)
    KeepLast(ungated_send_s_, send_s, 16);
  if (status.ok() && options_.mode != InterleaveMode::kNone) KeepLast(send_s_, send_s, 64);
  cv_.notify_all();
}

Status Interleaver::WaitDue(uint32_t rank, int64_t iteration, bool before_step,
                            std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  auto due = [&] {
    for (auto it = pending_.lower_bound({rank, INT64_MIN});
         it != pending_.end() && it->first.first == rank; ++it) {
      const Pending& p = it->second;
      if (it->first.second >= iteration) continue;  // A newer timeline's, or not yet.
      if (p.at_once || (before_step && p.due <= iteration)) return true;
    }
    return false;
  };
  if (!cv_.wait_until(lock, deadline, [&] { return stop_ || !due(); }))
    return DeadlineExceeded("rank " + std::to_string(rank) + ": checkpoints due before iteration " +
                            std::to_string(iteration) + " not replicated in time");
  if (stop_) return Aborted("agent stopping");
  return Status::Ok();
}

void Interleaver::Stop() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_ = true;
  cv_.notify_all();
}

nlohmann::json Interleaver::ToJson() {
  std::lock_guard<std::mutex> lock(mu_);
  schedule::PartitionParams params;
  std::vector<double> spans;
  Schedule s = ScheduleLocked(&params, &spans);
  nlohmann::json j{{"mode", InterleaveModeName(options_.mode)},
                   {"buffer_bytes", options_.buffer_bytes},
                   {"sub_buffers", options_.sub_buffers},
                   {"mu", options_.mu},
                   {"schedule", ScheduleToJson(s)},
                   {"checkpoint_bytes", last_bytes_},
                   {"copies", last_copies_},
                   {"send_s_median", Median(send_s_)},
                   {"whole_send_s_median", Median(ungated_send_s_)},
                   {"gated_chunks", gated_chunks_},
                   {"late_chunks", late_chunks_},
                   {"failed_replications", failed_},
                   {"pending", pending_.size()},
                   {"link_samples", samples_.size()},
                   {"profiler", profiler_->ToJson()}};
  if (link_)
    j["link"] = {{"bandwidth_Bps", link_->bandwidth_Bps},
                 {"alpha_s", link_->alpha_s},
                 {"samples_used", link_->samples_used},
                 {"outliers", link_->outliers}};
  if (s.ready) {
    auto plan = schedule::Partition(spans, params);
    if (plan.ok()) {
      j["plan"] = {
          {"chunks", plan->ChunkCount()},
          {"leftover_bytes", plan->leftover_bytes},
          {"extra_s", plan->extra_s},
          {"send_s", schedule::SendSeconds(params.checkpoint_bytes, params) * params.copies}};
    }
  }
  return j;
}

}  // namespace gemini
