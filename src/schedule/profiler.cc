// The idle-span profiler: see profiler.h.
#include "schedule/profiler.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>

#include "common/log.h"
#include "schedule/stats.h"

namespace gemini::schedule {
namespace {

constexpr size_t kMaxOpen = 4;   // iterations reported but not complete
constexpr size_t kMaxDone = 16;  // recently completed iterations remembered
constexpr int kMaxOpsPerIteration = 1 << 16;

using nlohmann::json;

Status CheckArgs(int64_t iteration, int op_index, double t) {
  if (iteration < 0) return InvalidArgument("profiler: negative iteration");
  if (op_index < 0 || op_index >= kMaxOpsPerIteration) {
    return InvalidArgument("profiler: op index " + std::to_string(op_index) + " out of range");
  }
  if (!std::isfinite(t)) return InvalidArgument("profiler: time is not finite");
  return Status::Ok();
}

template <typename T>
std::vector<double> Column(const std::vector<const T*>& ts, std::vector<double> T::*field,
                           size_t k) {
  std::vector<double> out;
  out.reserve(ts.size());
  for (const T* t : ts) out.push_back((t->*field)[k]);
  return out;
}

// The op count most iterations have (ties: the latest iteration's).
template <typename T>
size_t ModeOpCount(const std::vector<T>& samples) {
  std::map<size_t, int> counts;
  for (const T& s : samples) ++counts[s.op_start.size()];
  size_t best = samples.back().op_start.size();
  for (const auto& [n, c] : counts) {
    if (c > counts.at(best)) best = n;
  }
  return best;
}

json SegmentsToJson(const IterationProfile& p) {
  json out = json::array();
  for (size_t k = 0; k < p.spans.size(); ++k) {
    out.push_back({{"kind", "idle"},
                   {"position", p.spans[k].position},
                   {"start_s", p.spans[k].start_s},
                   {"length_s", p.spans[k].length_s}});
    if (k >= p.ops.size()) continue;
    out.push_back({{"kind", "busy"},
                   {"op", p.ops[k].index},
                   {"start_s", p.ops[k].start_s},
                   {"length_s", p.ops[k].duration_s}});
  }
  return out;
}

}  // namespace

Status ValidateProfilerOptions(const ProfilerOptions& o) {
  if (o.warmup_iterations < 1) return InvalidArgument("profiler: warmup_iterations must be >= 1");
  if (!(o.length_quantile >= 0 && o.length_quantile <= 1)) {
    return InvalidArgument("profiler: length_quantile must be in [0, 1]");
  }
  if (o.drift_window < 1) return InvalidArgument("profiler: drift_window must be >= 1");
  if (!(o.drift_threshold > 0) || std::isinf(o.drift_threshold)) {
    return InvalidArgument("profiler: drift_threshold must be finite and > 0");
  }
  return Status::Ok();
}

double IterationProfile::IdleSeconds() const {
  double sum = 0;
  for (const SpanProfile& s : spans) sum += s.length_s;
  return sum;
}

std::vector<double> IterationProfile::SpanLengths() const {
  std::vector<double> out;
  for (const SpanProfile& s : spans) out.push_back(s.length_s);
  return out;
}

json ProfileToJson(const IterationProfile& p) {
  json ops = json::array();
  for (const OpProfile& o : p.ops) {
    ops.push_back({{"index", o.index}, {"start_s", o.start_s}, {"duration_s", o.duration_s}});
  }
  json spans = json::array();
  for (const SpanProfile& s : p.spans) {
    spans.push_back({{"position", s.position},
                     {"opened_by", s.opened_by},
                     {"start_s", s.start_s},
                     {"start_offset_s", s.start_offset_s},
                     {"length_s", s.length_s},
                     {"norm_std", s.norm_std}});
  }
  double idle = p.IdleSeconds();
  return {{"version", p.version},
          {"iterations", p.iterations},
          {"first_iteration", p.first_iteration},
          {"last_iteration", p.last_iteration},
          {"iteration_s", p.iteration_s},
          {"idle_s_per_iter", idle},
          {"busy_fraction", p.iteration_s > 0 ? std::max(0.0, 1 - idle / p.iteration_s) : 0.0},
          {"ops", ops},
          {"spans", spans},
          {"timeline", SegmentsToJson(p)}};
}

Result<std::unique_ptr<Profiler>> Profiler::Create(const ProfilerOptions& options) {
  GEMINI_RETURN_IF_ERROR(ValidateProfilerOptions(options));
  return std::unique_ptr<Profiler>(new Profiler(options));
}

double Profiler::Now() {
  auto since = std::chrono::steady_clock::now().time_since_epoch();
  return std::chrono::duration<double>(since).count();
}

Status Profiler::IterationStarted(int64_t iteration, double t) {
  GEMINI_RETURN_IF_ERROR(CheckArgs(iteration, 0, t));
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Open * open, Touch(iteration));
  if (open->start) return Bad(iteration, *open, "started twice");
  if (open->end && *open->end < t) return Bad(iteration, *open, "ended before it started");
  open->start = t;
  MaybeComplete(iteration);
  return Status::Ok();
}

Status Profiler::IterationEnded(int64_t iteration, double t) {
  GEMINI_RETURN_IF_ERROR(CheckArgs(iteration, 0, t));
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Open * open, Touch(iteration));
  if (open->end) return Bad(iteration, *open, "ended twice");
  if (open->start && t < *open->start) return Bad(iteration, *open, "ended before it started");
  open->end = t;
  MaybeComplete(iteration);
  return Status::Ok();
}

Status Profiler::OpStarted(int64_t iteration, int op_index, double t) {
  GEMINI_RETURN_IF_ERROR(CheckArgs(iteration, op_index, t));
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Open * open, Touch(iteration));
  if (open->ops.size() <= static_cast<size_t>(op_index)) open->ops.resize(op_index + 1);
  OpTimes& op = open->ops[op_index];
  if (op.start) return Bad(iteration, *open, "op " + std::to_string(op_index) + " started twice");
  if (op.finish && *op.finish < t) {
    return Bad(iteration, *open, "op " + std::to_string(op_index) + " finished before it started");
  }
  op.start = t;
  MaybeComplete(iteration);
  return Status::Ok();
}

Status Profiler::OpFinished(int64_t iteration, int op_index, double t) {
  GEMINI_RETURN_IF_ERROR(CheckArgs(iteration, op_index, t));
  std::lock_guard<std::mutex> lock(mu_);
  GEMINI_ASSIGN_OR_RETURN(Open * open, Touch(iteration));
  if (open->ops.size() <= static_cast<size_t>(op_index)) open->ops.resize(op_index + 1);
  OpTimes& op = open->ops[op_index];
  if (op.finish) return Bad(iteration, *open, "op " + std::to_string(op_index) + " finished twice");
  if (op.start && t < *op.start) {
    return Bad(iteration, *open, "op " + std::to_string(op_index) + " finished before it started");
  }
  op.finish = t;
  MaybeComplete(iteration);
  return Status::Ok();
}

Result<Profiler::Open*> Profiler::Touch(int64_t iteration) {
  if (std::find(done_.begin(), done_.end(), iteration) != done_.end()) {
    return FailedPrecondition("profiler: iteration " + std::to_string(iteration) +
                              " is already complete or dropped");
  }
  Open& open = open_[iteration];
  open.touched = ++clock_;
  if (open_.size() > kMaxOpen) {
    auto oldest = std::min_element(open_.begin(), open_.end(), [](const auto& a, const auto& b) {
      return a.second.touched < b.second.touched;
    });
    Forget(oldest->first, /*dropped=*/true);
  }
  return &open;
}

Status Profiler::Bad(int64_t iteration, Open& open, const std::string& why) {
  open.bad = true;
  if (open.end) Forget(iteration, /*dropped=*/true);  // ended: nothing more will come
  return InvalidArgument("profiler: iteration " + std::to_string(iteration) + ": " + why);
}

void Profiler::Forget(int64_t iteration, bool dropped) {
  open_.erase(iteration);
  done_.push_back(iteration);
  if (done_.size() > kMaxDone) done_.pop_front();
  if (dropped) ++stats_.dropped_iterations;
}

// Complete once ended with every op started and finished; dropped if ended
// with an op never started, or after a bad report.
void Profiler::MaybeComplete(int64_t iteration) {
  Open& open = open_[iteration];
  if (!open.end) return;
  auto never_started = [](const OpTimes& op) { return !op.start; };
  if (open.bad || !open.start || std::any_of(open.ops.begin(), open.ops.end(), never_started)) {
    GEMINI_LOG(DEBUG) << "[profiler] iteration " << iteration << " dropped (incomplete)";
    return Forget(iteration, /*dropped=*/true);
  }
  auto unfinished = [](const OpTimes& op) { return !op.finish; };
  if (std::any_of(open.ops.begin(), open.ops.end(), unfinished)) return;
  Timeline timeline = Extract(iteration, open);
  Forget(iteration, /*dropped=*/false);
  Accept(std::move(timeline));
}

Profiler::Timeline Profiler::Extract(int64_t iteration, const Open& open) {
  Timeline tl;
  tl.iteration = iteration;
  double t0 = *open.start;
  tl.iteration_s = *open.end - t0;
  for (const OpTimes& op : open.ops) {
    tl.op_start.push_back(*op.start - t0);
    tl.op_duration.push_back(*op.finish - *op.start);
  }
  double frontier = 0;  // when every op so far has finished
  double opener = 0;    // when the span's opener finished
  for (size_t k = 0; k <= tl.op_start.size(); ++k) {
    double end = k < tl.op_start.size() ? tl.op_start[k] : tl.iteration_s;
    tl.span_start.push_back(frontier);
    tl.span_offset.push_back(frontier - opener);
    tl.span_length.push_back(std::max(0.0, end - frontier));
    if (k == tl.op_start.size()) break;
    opener = tl.op_start[k] + tl.op_duration[k];
    frontier = std::max(frontier, opener);
  }
  return tl;
}

void Profiler::Accept(Timeline timeline) {
  ++stats_.completed_iterations;
  if (profile_ && !needs_reprofile_) return CheckDrift(timeline);
  samples_.push_back(std::move(timeline));
  if (samples_.size() >= static_cast<size_t>(options_.warmup_iterations)) BuildProfile();
}

IterationProfile Profiler::Summarize(const std::vector<const Timeline*>& use, double q) {
  IterationProfile p;
  p.iterations = static_cast<int>(use.size());
  p.first_iteration = use.front()->iteration;
  p.last_iteration = use.back()->iteration;
  std::vector<double> iteration_s;
  for (const Timeline* t : use) iteration_s.push_back(t->iteration_s);
  p.iteration_s = Median(iteration_s);
  size_t n_ops = use.front()->op_start.size();
  for (size_t k = 0; k < n_ops; ++k) {
    p.ops.push_back({static_cast<int>(k), Median(Column(use, &Timeline::op_start, k)),
                     Median(Column(use, &Timeline::op_duration, k))});
  }
  for (size_t k = 0; k <= n_ops; ++k) {
    std::vector<double> lengths = Column(use, &Timeline::span_length, k);
    double mean = Mean(lengths);
    p.spans.push_back({static_cast<int>(k), static_cast<int>(k) - 1,
                       Median(Column(use, &Timeline::span_start, k)),
                       Median(Column(use, &Timeline::span_offset, k)), Quantile(lengths, q),
                       mean > 0 ? StdDev(lengths) / mean : 0.0});
  }
  return p;
}

void Profiler::BuildProfile() {
  size_t n_ops = ModeOpCount(samples_);
  std::vector<const Timeline*> use;
  for (const Timeline& s : samples_) {
    if (s.op_start.size() == n_ops) use.push_back(&s);
  }
  IterationProfile p = Summarize(use, options_.length_quantile);
  p.version = profile_ ? profile_->version + 1 : 1;
  GEMINI_LOG(INFO) << "[profiler] profile v" << p.version << ": " << n_ops << " ops, idle "
                   << p.IdleSeconds() << " s of " << p.iteration_s << " s per iteration";
  profile_ = std::move(p);
  samples_.clear();
  window_.clear();
  mismatch_run_ = 0;
  needs_reprofile_ = false;
  stats_.last_drift = 0;
}

double Profiler::Drift(const std::deque<Timeline>& window, const IterationProfile& p, double q) {
  std::vector<const Timeline*> use;
  for (const Timeline& t : window) use.push_back(&t);
  double delta = 0;
  for (size_t k = 0; k < p.spans.size(); ++k) {
    double length = Quantile(Column(use, &Timeline::span_length, k), q);
    double offset = Median(Column(use, &Timeline::span_offset, k));
    delta +=
        std::fabs(length - p.spans[k].length_s) + std::fabs(offset - p.spans[k].start_offset_s);
  }
  return delta / std::max({p.IdleSeconds(), 1e-3 * p.iteration_s, 1e-9});
}

void Profiler::CheckDrift(const Timeline& timeline) {
  if (timeline.op_start.size() != profile_->ops.size()) {
    if (++mismatch_run_ >= options_.drift_window) StartReprofile("the op count changed");
    return;
  }
  mismatch_run_ = 0;
  window_.push_back(timeline);
  if (window_.size() > static_cast<size_t>(options_.drift_window)) window_.pop_front();
  if (window_.size() < static_cast<size_t>(options_.drift_window)) return;
  stats_.last_drift = Drift(window_, *profile_, options_.length_quantile);
  if (stats_.last_drift > options_.drift_threshold) StartReprofile("the idle spans drifted");
}

void Profiler::StartReprofile(const std::string& why) {
  GEMINI_LOG(INFO) << "[profiler] re-profiling: " << why << " (drift " << stats_.last_drift << ")";
  ++stats_.reprofiles;
  needs_reprofile_ = true;
  samples_.clear();
  window_.clear();
  mismatch_run_ = 0;
}

bool Profiler::Ready() const {
  std::lock_guard<std::mutex> lock(mu_);
  return profile_.has_value();
}

Result<IterationProfile> Profiler::Profile() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (!profile_) {
    return FailedPrecondition("profiler: " + std::to_string(samples_.size()) + " of " +
                              std::to_string(options_.warmup_iterations) +
                              " warm-up iterations recorded");
  }
  return *profile_;
}

bool Profiler::NeedsReprofile() const {
  std::lock_guard<std::mutex> lock(mu_);
  return needs_reprofile_;
}

void Profiler::RequestReprofile() {
  std::lock_guard<std::mutex> lock(mu_);
  open_.clear();
  done_.clear();
  StartReprofile("requested");
}

ProfilerStats Profiler::Stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

json Profiler::ToJson() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {{"ready", profile_.has_value()},
          {"needs_reprofile", needs_reprofile_},
          {"warmup_iterations", options_.warmup_iterations},
          {"collected", samples_.size()},
          {"completed_iterations", stats_.completed_iterations},
          {"dropped_iterations", stats_.dropped_iterations},
          {"reprofiles", stats_.reprofiles},
          {"last_drift", stats_.last_drift},
          {"profile", profile_ ? ProfileToJson(*profile_) : json(nullptr)}};
}

}  // namespace gemini::schedule
