// Algorithm 2: see partition.h.
#include "schedule/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

namespace gemini::schedule {
namespace {

// Beyond this many chunks a plan is a configuration mistake (R/p far too small).
constexpr uint64_t kMaxChunks = uint64_t{1} << 24;

// Walks the bytes to send: copy 0 from offset 0 to C, then copy 1, ...
class Cursor {
 public:
  explicit Cursor(const PartitionParams& p) : size_(p.checkpoint_bytes), copies_(p.copies) {}
  bool Done() const { return size_ == 0 || copy_ >= copies_; }
  uint64_t CopyRemaining() const { return size_ - offset_; }

  // The next `length` bytes (at most CopyRemaining()) as a chunk.
  Chunk Take(uint64_t length, bool leftover) {
    Chunk c{copy_, offset_, length, leftover};
    offset_ += length;
    if (offset_ == size_) {
      ++copy_;
      offset_ = 0;
    }
    return c;
  }

 private:
  uint64_t size_;
  int copies_;
  int copy_ = 0;
  uint64_t offset_ = 0;
};

// The largest chunk of at most `want` bytes whose f(s) fits in `budget_s`:
// `want` itself, or the shrunk floor((budget - alpha) * B); 0 when that is
// below min_chunk_bytes.
uint64_t FittingChunk(double budget_s, uint64_t want, const PartitionParams& p) {
  double room = (budget_s - p.alpha_s) * p.bandwidth_Bps;
  if (!(room >= static_cast<double>(p.min_chunk_bytes))) return 0;
  if (room >= static_cast<double>(want)) return want;
  uint64_t shrunk = static_cast<uint64_t>(std::floor(room));
  return std::min(shrunk, want) >= p.min_chunk_bytes ? std::min(shrunk, want) : 0;
}

// Fills one span's usable time (mu * t) with chunks, as many as fit.
void FillSpan(double span_s, const PartitionParams& p, Cursor& cursor, SpanPlan& out) {
  double budget = p.mu * span_s;
  while (!cursor.Done()) {
    uint64_t want = std::min(MaxChunkBytes(p), cursor.CopyRemaining());
    uint64_t size = FittingChunk(budget, want, p);
    if (size == 0) return;
    out.chunks.push_back(cursor.Take(size, /*leftover=*/false));
    double cost = ChunkSeconds(size, p);
    budget -= cost;
    out.busy_s += cost;
  }
}

// Whatever is left goes into the last span, in R/p chunks.
void PlaceLeftover(const PartitionParams& p, Cursor& cursor, PartitionPlan& plan) {
  SpanPlan& last = plan.spans.back();
  while (!cursor.Done()) {
    uint64_t size = std::min(MaxChunkBytes(p), cursor.CopyRemaining());
    last.chunks.push_back(cursor.Take(size, /*leftover=*/true));
    plan.leftover_bytes += size;
    plan.extra_s += ChunkSeconds(size, p);
  }
}

Status ValidateSpans(const std::vector<double>& spans_s) {
  if (spans_s.empty()) return InvalidArgument("partition: no idle spans (need at least td)");
  for (size_t i = 0; i < spans_s.size(); ++i) {
    if (std::isnan(spans_s[i]) || spans_s[i] < 0) {
      return InvalidArgument("partition: idle span " + std::to_string(i) + " is " +
                             std::to_string(spans_s[i]) + " s (must be >= 0)");
    }
  }
  return Status::Ok();
}

Status ValidateSize(const PartitionParams& p) {
  uint64_t copies = static_cast<uint64_t>(p.copies);
  if (copies > 0 && p.checkpoint_bytes > std::numeric_limits<uint64_t>::max() / copies) {
    return InvalidArgument("partition: copies * checkpoint_bytes overflows");
  }
  uint64_t max_chunk = MaxChunkBytes(p);
  uint64_t per_copy = p.checkpoint_bytes / max_chunk + (p.checkpoint_bytes % max_chunk != 0);
  if (copies > 0 && per_copy > kMaxChunks / copies) {
    return InvalidArgument("partition: " + std::to_string(per_copy) + " chunks per copy of " +
                           std::to_string(max_chunk) + " bytes; raise the buffer size R");
  }
  return Status::Ok();
}

}  // namespace

Status ValidatePartitionParams(const PartitionParams& p) {
  if (!(p.bandwidth_Bps > 0) || std::isinf(p.bandwidth_Bps)) {
    return InvalidArgument("partition: bandwidth must be finite and > 0 bytes/s");
  }
  if (p.sub_buffers < 1) return InvalidArgument("partition: sub_buffers p must be >= 1");
  if (p.buffer_bytes < static_cast<uint64_t>(p.sub_buffers)) {
    return InvalidArgument("partition: buffer R must hold at least one byte per sub-buffer");
  }
  if (!(p.mu > 0 && p.mu <= 1)) return InvalidArgument("partition: mu must be in (0, 1]");
  if (!(p.alpha_s >= 0) || std::isinf(p.alpha_s)) {
    return InvalidArgument("partition: alpha must be finite and >= 0 s");
  }
  if (p.copies < 0) return InvalidArgument("partition: copies must be >= 0");
  if (p.min_chunk_bytes < 1) return InvalidArgument("partition: min_chunk_bytes must be >= 1");
  return ValidateSize(p);
}

uint64_t MaxChunkBytes(const PartitionParams& p) {
  return p.buffer_bytes / static_cast<uint64_t>(std::max(p.sub_buffers, 1));
}

double ChunkSeconds(uint64_t bytes, const PartitionParams& p) {
  return p.alpha_s + static_cast<double>(bytes) / p.bandwidth_Bps;
}

double SendSeconds(uint64_t bytes, const PartitionParams& p) {
  uint64_t max_chunk = std::max<uint64_t>(MaxChunkBytes(p), 1);
  uint64_t chunks = bytes / max_chunk + (bytes % max_chunk != 0);
  return static_cast<double>(chunks) * p.alpha_s + static_cast<double>(bytes) / p.bandwidth_Bps;
}

uint64_t SpanCapacityBytes(double span_s, const PartitionParams& p) {
  constexpr uint64_t kAll = std::numeric_limits<uint64_t>::max();
  double budget = p.mu * span_s;
  if (std::isinf(budget)) return kAll;
  uint64_t max_chunk = MaxChunkBytes(p);
  double full = ChunkSeconds(max_chunk, p);
  double whole = std::floor(budget / full);
  uint64_t partial = FittingChunk(budget - whole * full, max_chunk, p);
  long double bytes = static_cast<long double>(whole) * max_chunk + partial;
  return bytes >= static_cast<long double>(kAll) ? kAll : static_cast<uint64_t>(bytes);
}

size_t PartitionPlan::ChunkCount() const {
  size_t n = 0;
  for (const SpanPlan& s : spans) n += s.chunks.size();
  return n;
}

Result<PartitionPlan> Partition(const std::vector<double>& spans_s, const PartitionParams& params) {
  GEMINI_RETURN_IF_ERROR(ValidatePartitionParams(params));
  GEMINI_RETURN_IF_ERROR(ValidateSpans(spans_s));
  PartitionPlan plan;
  plan.spans.resize(spans_s.size());
  plan.total_bytes = static_cast<uint64_t>(params.copies) * params.checkpoint_bytes;
  Cursor cursor(params);
  for (size_t i = 0; i < spans_s.size() && !cursor.Done(); ++i) {
    FillSpan(spans_s[i], params, cursor, plan.spans[i]);
  }
  PlaceLeftover(params, cursor, plan);
  return plan;
}

namespace {

struct Extent {
  uint64_t offset;
  uint64_t length;
};

Status CheckChunk(const Chunk& c, size_t span, size_t last_span, const PartitionParams& p) {
  std::string where = "plan: span " + std::to_string(span) + " chunk of copy " +
                      std::to_string(c.copy) + " at " + std::to_string(c.offset);
  if (c.copy < 0 || c.copy >= p.copies) return InvalidArgument(where + ": no such copy");
  if (c.length == 0 || c.length > MaxChunkBytes(p)) {
    return InvalidArgument(where + ": length " + std::to_string(c.length) + " not in 1..R/p");
  }
  if (c.leftover && span != last_span) {
    return InvalidArgument(where + ": leftover chunk outside the last span");
  }
  return Status::Ok();
}

// Extents of one copy, sorted, must tile [0, size) exactly.
Status CheckCoverage(int copy, std::vector<Extent>& extents, uint64_t size) {
  std::sort(extents.begin(), extents.end(),
            [](const Extent& a, const Extent& b) { return a.offset < b.offset; });
  uint64_t next = 0;
  for (const Extent& e : extents) {
    if (e.offset != next) {
      return InvalidArgument("plan: copy " + std::to_string(copy) +
                             (e.offset < next ? " overlaps at byte " : " has a gap at byte ") +
                             std::to_string(std::min(e.offset, next)));
    }
    next = e.offset + e.length;
  }
  if (next != size) {
    return InvalidArgument("plan: copy " + std::to_string(copy) + " covers " +
                           std::to_string(next) + " of " + std::to_string(size) + " bytes");
  }
  return Status::Ok();
}

}  // namespace

Status CheckPlan(const PartitionPlan& plan, const PartitionParams& params) {
  GEMINI_RETURN_IF_ERROR(ValidatePartitionParams(params));
  if (plan.spans.empty()) return InvalidArgument("plan: no spans");
  std::vector<std::vector<Extent>> extents(static_cast<size_t>(params.copies));
  uint64_t leftover = 0;
  for (size_t s = 0; s < plan.spans.size(); ++s) {
    for (const Chunk& c : plan.spans[s].chunks) {
      GEMINI_RETURN_IF_ERROR(CheckChunk(c, s, plan.spans.size() - 1, params));
      extents[static_cast<size_t>(c.copy)].push_back({c.offset, c.length});
      if (c.leftover) leftover += c.length;
    }
  }
  for (int copy = 0; copy < params.copies; ++copy) {
    GEMINI_RETURN_IF_ERROR(
        CheckCoverage(copy, extents[static_cast<size_t>(copy)], params.checkpoint_bytes));
  }
  if (leftover != plan.leftover_bytes) {
    return InvalidArgument("plan: leftover chunks hold " + std::to_string(leftover) +
                           " bytes, plan says " + std::to_string(plan.leftover_bytes));
  }
  return Status::Ok();
}

}  // namespace gemini::schedule
