// Generations of a job: one store job per world size. A store job keeps one
// world size, so a job restored onto another number of ranks saves into
//   JOB          its first world size, or
//   JOB.worldW   any other world size W (e.g. "llama.world6").
// The same names as the Python package's gemini.generations.
#pragma once

#include <cstdint>
#include <string>

namespace gemini {

inline constexpr const char* kGenerationSep = ".world";

// The store job of `job`'s generation of world size `world` (never the bare name).
inline std::string GenerationName(const std::string& job, uint32_t world) {
  return job + kGenerationSep + std::to_string(world);
}

// Whether `store_job` is `job` itself or one of its JOB.worldW generations.
inline bool IsGenerationOf(const std::string& job, const std::string& store_job) {
  if (store_job == job) return true;
  const std::string head = job + kGenerationSep;
  if (store_job.size() <= head.size() || store_job.compare(0, head.size(), head) != 0) return false;
  if (store_job[head.size()] == '0') return false;
  for (size_t i = head.size(); i < store_job.size(); ++i)
    if (store_job[i] < '0' || store_job[i] > '9') return false;
  return store_job.size() - head.size() <= 9;
}

}  // namespace gemini
