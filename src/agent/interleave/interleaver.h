// Interleaver: when checkpoint traffic may use the network (docs/design.md, interleaving).
//
// The trainer reports its timeline (iteration start, each communication op's
// start and finish, iteration end at the optimizer step) over the agent
// socket; the Interleaver feeds a schedule::Profiler with the reports of the
// lowest rank on this host (its ops share the host's link) and tracks which
// idle spans of which iteration are open. The replicator asks PlanSend() how
// to send a checkpoint: a list of chunks (at most R/p bytes each), each gated
// on the span of a following iteration it was placed in by Algorithm 2
// (schedule::Partition), and waits in AwaitSpan() until that span opens
// before sending it.
//
// Modes (per job):
//   none        checkpoints stay on their own machine (no network traffic;
//               completion records the local captures).
//   naive       all chunks right after the capture; the trainer waits for
//               them before its next iteration starts (the paper's blocking
//               baseline).
//   interleave  chunks in the profiled idle spans of the next iteration(s);
//               the trainer waits before its next optimizer step only for
//               what did not fit. Until a profile and a link model exist
//               (the first W iterations), it behaves like naive, so the
//               profile sees training traffic alone and the chunks measure
//               the link (B and alpha, schedule::FitLinkModel).
// If one iteration's idle time cannot carry a checkpoint, the schedule says
// so and asks for one every k-th iteration (schedule::ChooseFrequency), the
// chunks spread over the k iterations that follow it.
//
// Trainers ask Schedule() each iteration and WaitReplicated() where their
// mode says to wait. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "schedule/frequency.h"
#include "schedule/link_fit.h"
#include "schedule/partition.h"
#include "schedule/profiler.h"

namespace gemini {

enum class InterleaveMode { kNone, kNaive, kInterleave };
Result<InterleaveMode> ParseInterleaveMode(const std::string& name);
const char* InterleaveModeName(InterleaveMode mode);

struct InterleaveOptions {
  InterleaveMode mode = InterleaveMode::kInterleave;
  uint64_t buffer_bytes = 128ull << 20;  // R
  uint32_t sub_buffers = 4;              // p
  double mu = 0.9;                       // usable part of each span
  int warmup_iterations = 20;            // W
  int max_every_k = 100;
  int replication_nice = 10;  // CPU nice of the threads that move replicas (0: as training).
};
Status ValidateInterleaveOptions(const InterleaveOptions& o);

enum class TimelineEvent : uint32_t {
  kIterationStart = 1,
  kOpStart = 2,
  kOpFinish = 3,
  kIterationEnd = 4,
};

// What the trainer should do this iteration.
struct Schedule {
  InterleaveMode mode = InterleaveMode::kInterleave;
  bool ready = false;  // Interleave: profile and link model exist (else: behave as naive).
  int every_k = 1;     // Checkpoint iterations that are multiples of k.
  std::string explanation;
};
nlohmann::json ScheduleToJson(const Schedule& s);

// One chunk of a send and the span that must open before it goes;
// gate_iteration -1: at once.
struct SendStep {
  int64_t gate_iteration = -1;
  int gate_position = 0;
  schedule::Chunk chunk;
  bool drain_after = false;  // Wait for its acknowledgement (a link sample) before going on.
};

class Interleaver {
 public:
  static Result<std::unique_ptr<Interleaver>> Create(const InterleaveOptions& options);

  InterleaveMode mode() const { return options_.mode; }
  uint64_t max_chunk() const { return options_.buffer_bytes / options_.sub_buffers; }
  uint32_t window() const { return options_.sub_buffers; }
  int replication_nice() const { return options_.replication_nice; }

  // A trainer's timeline report; InvalidArgument for a malformed one.
  Status OnEvent(uint32_t rank, int64_t iteration, TimelineEvent kind, int op, double t);
  Schedule GetSchedule();

  // How to send the checkpoint of (rank, iteration), bytes per copy, to
  // `copies` holders. Called when the capture commits; from then on the
  // checkpoint is pending until MarkReplicated().
  std::vector<SendStep> PlanSend(uint32_t rank, int64_t iteration, uint64_t bytes, int copies);
  // Waits until span `position` of `iteration` is open; false on timeout or Stop().
  bool AwaitSpan(int64_t iteration, int position, std::chrono::steady_clock::time_point deadline);
  // How long a sender waits for a span before sending anyway.
  std::chrono::milliseconds SpanTimeout();
  void RecordSamples(const std::vector<schedule::TransferSample>& samples);
  // The replication of (rank, iteration) ended (OK or not) after `send_s`.
  void MarkReplicated(uint32_t rank, int64_t iteration, const Status& status, double send_s);

  // The trainer of `rank` is about to start iteration `iteration`
  // (before_step false) or to run its optimizer step (true). Waits until no
  // checkpoint of the rank that is due by then is pending: one sent at once
  // (naive, warm-up) is due before the next iteration starts; one placed in
  // the spans of the following k iterations is due before the k-th one's
  // step. OK also when a due replication failed (the replicator logs it; the
  // job's complete iteration does not advance); DeadlineExceeded on timeout.
  Status WaitDue(uint32_t rank, int64_t iteration, bool before_step,
                 std::chrono::steady_clock::time_point deadline);
  void Stop();

  // For `gemini status`: mode, schedule, link model, profile, send times.
  nlohmann::json ToJson();

 private:
  explicit Interleaver(const InterleaveOptions& o, std::unique_ptr<schedule::Profiler> p)
      : options_(o), profiler_(std::move(p)) {}
  struct Spans {
    bool started = false, ended = false;
    std::vector<bool> finished;  // By op index.
  };
  bool OpenLocked(int64_t iteration, int position) const;
  // Schedule plus the partition params it used (mu_ held).
  Schedule ScheduleLocked(schedule::PartitionParams* params, std::vector<double>* spans);
  schedule::PartitionParams ParamsLocked(uint64_t bytes, int copies) const;

  const InterleaveOptions options_;
  std::unique_ptr<schedule::Profiler> profiler_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::optional<uint32_t> timeline_rank_;  // Lowest rank reporting.
  std::map<int64_t, Spans> spans_;         // Recent iterations.
  std::vector<schedule::TransferSample> samples_;
  std::optional<schedule::LinkModel> link_;
  uint64_t last_bytes_ = 0;  // Size and copies of the last checkpoint sent.
  int last_copies_ = 0;
  struct Pending {
    bool at_once = true;  // Sent at once, due before the next iteration starts.
    int64_t due = 0;      // Else (sent in planned spans) due before this iteration's step.
  };
  std::map<std::pair<uint32_t, int64_t>, Pending> pending_;  // (rank, iteration)
  uint64_t failed_ = 0;
  std::vector<double> send_s_;  // Recent replication times.
  // Whole-checkpoint times of replicas sent at once (not waiting for spans):
  // what the link really takes, a check on the fitted model (ParamsLocked).
  std::vector<double> ungated_send_s_;
  uint64_t late_chunks_ = 0;  // Sent after a span timeout.
  uint64_t gated_chunks_ = 0;
};

}  // namespace gemini
