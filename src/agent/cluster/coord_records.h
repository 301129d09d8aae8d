// Coordination records: the small values a job keeps in etcd, parsed into
// Results.
//
// Anyone who can write the job's etcd prefix can put anything under these
// keys, so every reader goes through these decoders: a malformed, forged or
// out-of-range value is an InvalidArgument naming the key's kind, never an
// exception, a wrapped integer or a crash. Encoders are the only writers.
//
//   complete                     {"epoch":E,"iteration":I}   E >= 0, I >= -1
//   epochs/<e>/replicated/<rank> "I"                          decimal, I >= -1
//   ranks/<rank>, assign/<name>  "H"                          decimal host id
//   exits/<e>/<rank>             {"code":C,"at":T,"host":H}
//   ready/<e>/<host>             {"ok":B,"error":S,"source":S,"at":T}
// Key suffixes (<rank>, <host>) are parsed with KeyId.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace gemini {

struct CompleteRecord {
  int64_t epoch = -1;
  int64_t iteration = -1;
};
std::string EncodeComplete(const CompleteRecord& c);
Result<CompleteRecord> DecodeComplete(std::string_view text);

// A decimal iteration: -1 (none) or more.
Result<int64_t> DecodeIteration(std::string_view text);
// A decimal id (host or rank) below 2^31.
Result<uint32_t> DecodeId(std::string_view text);
// The id after the last '/' of a key.
Result<uint32_t> KeyId(std::string_view key);

struct ExitRecord {
  int code = 0;
  double at = 0;  // Wall-clock seconds; 0 when the record has none.
  uint32_t host = 0;
};
Result<ExitRecord> DecodeExit(std::string_view text);

struct ReadyRecord {
  bool ok = false;
  std::string error;
  std::string source;
  double at = 0;
};
Result<ReadyRecord> DecodeReady(std::string_view text);

}  // namespace gemini
