// Checkpoint partition: the paper's Algorithm 2 (docs/design.md, part 3).
//
// Given the profiled idle spans t1..td of one iteration (td, the span before
// the next optimizer step, is the last one), Partition() decides which bytes
// of the m-1 remote copies of a checkpoint shard are sent in which span. Each
// span offers a usable time mu*t; it is filled with chunks of at most R/p
// bytes (the size of one receive sub-buffer), each costing
// f(s) = alpha + s/B, and where a whole R/p chunk no longer fits, one smaller
// chunk of floor((mu*t_left - alpha)*B) bytes still goes in. The walk goes on
// span by span until every byte of every copy is placed. What does not fit in
// any span's usable time is placed in the last span anyway (td is treated as
// unbounded): those chunks are marked `leftover`, and the optimizer step that
// follows waits for them, lengthening the iteration by about the sum of their
// f(s) (`extra_s`, a serial estimate).
//
// Copies are walked in order (copy 0 from byte 0 to C, then copy 1, ...); a
// chunk never straddles two copies, since each copy goes to its own peer, so
// the chunk that ends a copy may be shorter than R/p.
//
// B and alpha come from measurements of the link (see link_fit.h); nothing
// here has a default bandwidth. All functions are pure and thread-safe; bad
// inputs give InvalidArgument.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"

namespace gemini::schedule {

struct PartitionParams {
  uint64_t checkpoint_bytes = 0;      // C: bytes of one copy of the shard
  int copies = 1;                     // m-1: remote copies to send (0: nothing to send)
  uint64_t buffer_bytes = 128 << 20;  // R: receive buffer, split into p sub-buffers
  int sub_buffers = 4;                // p: chunks are at most R/p bytes (paper: 4 x 32 MB)
  double bandwidth_Bps = 0;           // B: measured link bandwidth, bytes/s (must be > 0)
  double alpha_s = 0;                 // per-chunk start-up cost, seconds (>= 0)
  double mu = 0.9;                    // safety factor in (0, 1]: usable part of each span
  uint64_t min_chunk_bytes = 1;       // smallest shrunk chunk worth sending (1: the paper's rule)
};

Status ValidatePartitionParams(const PartitionParams& params);

// R/p: the largest chunk.
uint64_t MaxChunkBytes(const PartitionParams& params);
// f(s) = alpha + s/B.
double ChunkSeconds(uint64_t bytes, const PartitionParams& params);
// Time to send `bytes` of one copy as back-to-back chunks of at most R/p.
double SendSeconds(uint64_t bytes, const PartitionParams& params);
// The most bytes one span of `span_s` seconds can carry, as whole R/p chunks
// plus one shrunk chunk, with unlimited data to send. UINT64_MAX if unbounded.
uint64_t SpanCapacityBytes(double span_s, const PartitionParams& params);

struct Chunk {
  int copy = 0;           // which remote copy (0 .. copies-1)
  uint64_t offset = 0;    // byte offset in the shard
  uint64_t length = 0;    // 1 .. R/p bytes
  bool leftover = false;  // did not fit any span's usable time (only in the last span)
};

struct SpanPlan {
  std::vector<Chunk> chunks;  // in send order
  double busy_s = 0;          // sum of f(length) over the chunks that fit (not leftover)
};

struct PartitionPlan {
  std::vector<SpanPlan> spans;  // one per input span, same order
  uint64_t total_bytes = 0;     // copies * C
  uint64_t leftover_bytes = 0;  // bytes of the leftover chunks (in spans.back())
  double extra_s = 0;           // sum of f(length) over the leftover chunks
  size_t ChunkCount() const;
};

// Algorithm 2. `spans_s` are t1..td in seconds (finite or +inf, >= 0, at
// least one); the last one is td.
Result<PartitionPlan> Partition(const std::vector<double>& spans_s, const PartitionParams& params);

// Checks that a plan places every byte of every copy exactly once, in chunks
// of 1..R/p bytes, with leftover chunks only in the last span and
// leftover_bytes matching them. InvalidArgument naming the first problem.
Status CheckPlan(const PartitionPlan& plan, const PartitionParams& params);

}  // namespace gemini::schedule
