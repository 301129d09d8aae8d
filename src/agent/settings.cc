#include "agent/settings.h"

#include "common/units.h"

namespace gemini {

Result<Redundancy> ToRedundancy(const RedundancyFlags& f, Redundancy fallback) {
  if (!f.redundancy.empty()) return ParseRedundancy(f.redundancy);
  if (f.replicas != 0) {
    if (f.replicas < 1) return InvalidArgument("--replicas must be at least 1");
    return Redundancy::Copies(f.replicas);
  }
  return fallback;
}

Result<InterleaveOptions> ToInterleaveOptions(const InterleaveFlags& f) {
  InterleaveOptions o;
  GEMINI_ASSIGN_OR_RETURN(o.mode, ParseInterleaveMode(f.mode));
  GEMINI_ASSIGN_OR_RETURN(o.buffer_bytes, ParseBytes(f.buffer));
  o.sub_buffers = f.sub_buffers;
  o.mu = f.mu;
  o.warmup_iterations = f.warmup;
  o.replication_nice = f.replication_nice;
  GEMINI_RETURN_IF_ERROR(ValidateInterleaveOptions(o));
  return o;
}

}  // namespace gemini
