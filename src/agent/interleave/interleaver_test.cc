#include "agent/interleave/interleaver.h"

#include <gtest/gtest.h>

#include <future>
#include <thread>

namespace gemini {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

InterleaveOptions Opts(InterleaveMode mode, int warmup = 3) {
  InterleaveOptions o;
  o.mode = mode;
  o.buffer_bytes = 4 << 20;  // 1 MiB chunks at p = 4.
  o.sub_buffers = 4;
  o.warmup_iterations = warmup;
  return o;
}

// One iteration of a fake timeline starting at t: 0.5 s idle, op 0 for 0.2 s,
// 0.1 s idle, op 1 for 0.2 s, step.
void Iteration(Interleaver& il, int64_t it, double t, uint32_t rank = 0) {
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kIterationStart, -1, t).ok());
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kOpStart, 0, t + 0.5).ok());
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kOpFinish, 0, t + 0.7).ok());
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kOpStart, 1, t + 0.8).ok());
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kOpFinish, 1, t + 1.0).ok());
  ASSERT_TRUE(il.OnEvent(rank, it, TimelineEvent::kIterationEnd, -1, t + 1.0).ok());
}

// Link samples of a 100 MB/s link with 1 ms start-up.
void Measure(Interleaver& il) {
  std::vector<schedule::TransferSample> s;
  for (uint64_t b : {1u << 18, 1u << 19, 1u << 20, 1u << 18, 1u << 20})
    s.push_back({b, 0.001 + b / 100e6});
  il.RecordSamples(s);
}

TEST(Interleaver, ModesParseAndValidate) {
  EXPECT_EQ(*ParseInterleaveMode("naive"), InterleaveMode::kNaive);
  EXPECT_FALSE(ParseInterleaveMode("fast").ok());
  auto o = Opts(InterleaveMode::kInterleave);
  o.sub_buffers = 0;
  EXPECT_FALSE(Interleaver::Create(o).ok());
  o = Opts(InterleaveMode::kInterleave);
  o.mu = 1.5;
  EXPECT_FALSE(Interleaver::Create(o).ok());
}

TEST(Interleaver, NoneSendsNothingAndNothingIsDue) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kNone));
  EXPECT_TRUE(il->PlanSend(0, 5, 10 << 20, 1).empty());
  il->MarkReplicated(0, 5, Status::Ok(), 0);
  EXPECT_TRUE(il->WaitDue(0, 6, false, Clock::now()).ok());
}

TEST(Interleaver, NaiveSendsAtOnceAndIsDueBeforeTheNextIteration) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kNaive));
  auto steps = il->PlanSend(0, 5, 3 << 20, 2);
  uint64_t bytes[2] = {0, 0};
  for (const auto& s : steps) {
    EXPECT_EQ(s.gate_iteration, -1);
    EXPECT_LE(s.chunk.length, 1u << 20);
    bytes[s.chunk.copy] += s.chunk.length;
  }
  EXPECT_EQ(bytes[0], 3u << 20);
  EXPECT_EQ(bytes[1], 3u << 20);
  EXPECT_EQ(il->WaitDue(0, 6, false, Clock::now() + 20ms).code(), Code::kDeadlineExceeded);
  EXPECT_TRUE(il->WaitDue(0, 5, false, Clock::now()).ok());  // Not due before its own iteration.
  EXPECT_TRUE(il->WaitDue(1, 6, false, Clock::now()).ok());  // Another rank's.
  auto waiter =
      std::async(std::launch::async, [&] { return il->WaitDue(0, 6, false, Clock::now() + 5s); });
  il->MarkReplicated(0, 5, Status::Ok(), 0.1);
  EXPECT_TRUE(waiter.get().ok());
}

TEST(Interleaver, InterleaveProfilesThenGatesChunksOnSpans) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kInterleave));
  // Warm-up: at once, like naive; first chunks of varying size for the link fit.
  auto warm = il->PlanSend(0, 1, 3 << 20, 1);
  ASSERT_FALSE(warm.empty());
  EXPECT_EQ(warm[0].gate_iteration, -1);
  EXPECT_EQ(warm[0].chunk.length, (1u << 20) >> 2);
  EXPECT_TRUE(warm[0].drain_after);
  il->MarkReplicated(0, 1, Status::Ok(), 0.1);
  EXPECT_FALSE(il->GetSchedule().ready);
  for (int it = 1; it <= 4; ++it) Iteration(*il, it, it * 2.0);
  EXPECT_FALSE(il->GetSchedule().ready);  // No link model yet.
  Measure(*il);
  Schedule s = il->GetSchedule();
  ASSERT_TRUE(s.ready) << s.explanation;
  EXPECT_EQ(s.every_k, 1);
  // 3 MiB at 100 MB/s: about 32 ms, fits the 0.5 s first span.
  auto steps = il->PlanSend(0, 10, 3 << 20, 1);
  ASSERT_FALSE(steps.empty());
  for (const auto& st : steps) {
    EXPECT_EQ(st.gate_iteration, 11);
    EXPECT_EQ(st.gate_position, 0);
  }
  // Due before iteration 11's step, not before it starts.
  EXPECT_TRUE(il->WaitDue(0, 11, false, Clock::now()).ok());
  EXPECT_EQ(il->WaitDue(0, 11, true, Clock::now() + 10ms).code(), Code::kDeadlineExceeded);
  // The span opens when iteration 11 starts.
  EXPECT_FALSE(il->AwaitSpan(11, 0, Clock::now() + 10ms));
  auto opener = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(20ms);
    return il->OnEvent(0, 11, TimelineEvent::kIterationStart, -1, 30.0);
  });
  EXPECT_TRUE(il->AwaitSpan(11, 0, Clock::now() + 5s));
  EXPECT_TRUE(opener.get().ok());
  EXPECT_FALSE(il->AwaitSpan(11, 1, Clock::now() + 10ms));  // Opens when op 0 finishes.
  ASSERT_TRUE(il->OnEvent(0, 11, TimelineEvent::kOpFinish, 0, 30.7).ok());
  EXPECT_TRUE(il->AwaitSpan(11, 1, Clock::now()));
  il->MarkReplicated(0, 10, Status::Ok(), 0.05);
  EXPECT_TRUE(il->WaitDue(0, 11, true, Clock::now()).ok());
  auto j = il->ToJson();
  EXPECT_EQ(j["mode"], "interleave");
  EXPECT_TRUE(j["schedule"]["ready"]);
  EXPECT_TRUE(j.contains("link"));
}

TEST(Interleaver, NoisyLinkSamplesFallBackToTheMeanRate) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kInterleave));
  for (int it = 1; it <= 4; ++it) Iteration(*il, it, it * 2.0);
  il->PlanSend(0, 9, 1 << 20, 1);
  // Bigger transfers not slower: no line fits; 8 samples give the mean rate.
  std::vector<schedule::TransferSample> s;
  for (int i = 0; i < 8; ++i) s.push_back({i % 2 ? 4000u : 1000u, i % 2 ? 0.001 : 0.002});
  il->RecordSamples(s);
  ASSERT_TRUE(il->GetSchedule().ready);
  EXPECT_NEAR(il->ToJson()["link"]["bandwidth_Bps"].get<double>(), 20000.0 / 0.012, 1.0);
}

TEST(Interleaver, ShortIdleTimeChecksEveryKthIteration) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kInterleave));
  for (int it = 1; it <= 4; ++it) Iteration(*il, it, it * 2.0);
  Measure(*il);
  // 200 MB per checkpoint at 100 MB/s: 2 s of traffic, 0.6 s idle per iteration.
  auto steps = il->PlanSend(0, 10, 200 << 20, 1);
  Schedule s = il->GetSchedule();
  ASSERT_TRUE(s.ready);
  EXPECT_GT(s.every_k, 1) << s.explanation;
  int64_t last_gate = 0;
  for (const auto& st : steps) last_gate = std::max(last_gate, st.gate_iteration);
  EXPECT_EQ(last_gate, 10 + s.every_k);  // Spread over the k iterations that follow.
  EXPECT_TRUE(il->WaitDue(0, 10 + s.every_k - 1, true, Clock::now()).ok());
  EXPECT_EQ(il->WaitDue(0, 10 + s.every_k, true, Clock::now() + 10ms).code(),
            Code::kDeadlineExceeded);
}

// A fitted link that looks faster than whole checkpoints really went (a
// shaper's burst bucket): the measured whole sends decide, so checkpoints
// become less frequent instead of late.
TEST(Interleaver, SlowWholeSendsOverruleAnOptimisticFit) {
  for (double whole_s : {0.0, 1.5}) {
    auto il = *Interleaver::Create(Opts(InterleaveMode::kInterleave));
    for (int it = 1; it <= 4; ++it) {
      il->PlanSend(0, it, 40 << 20, 1);  // At once while profiling: 0.42 s at 100 MB/s.
      if (whole_s > 0) il->MarkReplicated(0, it, Status::Ok(), whole_s);
      Iteration(*il, it, it * 2.0);
    }
    Measure(*il);
    Schedule s = il->GetSchedule();
    ASSERT_TRUE(s.ready) << s.explanation;
    if (whole_s == 0)
      EXPECT_EQ(s.every_k, 1) << s.explanation;  // 0.42 s fits the 0.54 s usable.
    else
      EXPECT_GE(s.every_k, 3) << s.explanation;  // 1.5 s needs three iterations' spans.
  }
}

TEST(Interleaver, OnlyTheLowestRankDrivesTheTimeline) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kInterleave));
  ASSERT_TRUE(il->OnEvent(1, 3, TimelineEvent::kIterationStart, -1, 1.0).ok());
  ASSERT_TRUE(il->OnEvent(0, 4, TimelineEvent::kIterationStart, -1, 1.0).ok());
  ASSERT_TRUE(il->OnEvent(1, 5, TimelineEvent::kIterationStart, -1, 2.0).ok());  // Ignored.
  EXPECT_FALSE(il->AwaitSpan(5, 0, Clock::now()));
  EXPECT_TRUE(il->AwaitSpan(4, 0, Clock::now()));
  EXPECT_FALSE(il->OnEvent(0, -1, TimelineEvent::kIterationStart, -1, 1.0).ok());
  EXPECT_FALSE(il->OnEvent(0, 1, TimelineEvent::kOpStart, -1, 1.0).ok());
  EXPECT_FALSE(il->OnEvent(0, 1, static_cast<TimelineEvent>(9), 0, 1.0).ok());
}

TEST(Interleaver, StopWakesWaiters) {
  auto il = *Interleaver::Create(Opts(InterleaveMode::kNaive));
  il->PlanSend(0, 1, 1 << 20, 1);
  auto waiter =
      std::async(std::launch::async, [&] { return il->WaitDue(0, 2, false, Clock::now() + 10s); });
  auto span =
      std::async(std::launch::async, [&] { return il->AwaitSpan(9, 0, Clock::now() + 10s); });
  std::this_thread::sleep_for(20ms);
  il->Stop();
  EXPECT_EQ(waiter.get().code(), Code::kAborted);
  EXPECT_FALSE(span.get());
}

}  // namespace
}  // namespace gemini
