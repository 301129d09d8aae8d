// Fuzz target `coord`: values read back from etcd, which any process holding
// the etcd endpoint can write.
//
// Input: [u8 mode][text...]; mode % 16 picks the decoder:
//   0-3  the etcd gateway's JSON (src/coord/etcd_codec.h): DecodeRange,
//        DecodeEvents, DecodeKeyValue, DecodeError (mode's high bits pick
//        the HTTP status), on the text parsed without exceptions;
//   4    DecodePlan and 5 DecodeJobConfig (src/agent/cluster/plan.h);
//   6    DecodeHostInfo (src/agent/cluster/job_coordinator.h);
//   7    CompleteMarker::Decode (src/persist/catalog.h);
//   8-12 the job's own records (src/agent/cluster/coord_records.h): DecodeComplete,
//        DecodeIteration, DecodeId and KeyId, DecodeExit, DecodeReady;
//   13-15 as 0-3.
// Decoders must return an error for bad input, never throw or crash; a value
// that decodes must survive Encode -> Decode unchanged.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "agent/cluster/coord_records.h"
#include "agent/cluster/job_coordinator.h"
#include "agent/cluster/plan.h"
#include "coord/etcd_codec.h"
#include "fuzz_check.h"
#include "persist/catalog.h"

using namespace gemini;

namespace {

void Json(uint8_t mode, const std::string& text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return;
  switch (mode % 4) {
    case 0:
      (void)etcd::DecodeRange(j);
      break;
    case 1:
      (void)etcd::DecodeEvents(j);
      break;
    case 2:
      (void)etcd::DecodeKeyValue(j);
      break;
    default: {
      static const long kHttp[] = {200, 400, 404, 500, 503, 0, -1, 599};
      Status st = etcd::DecodeError(j, kHttp[(mode >> 5) & 7]);
      (void)st;
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const uint8_t mode = data[0];
  std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  switch (mode % 16) {
    case 8: {
      auto c = DecodeComplete(text);
      if (c.ok()) {
        auto again = DecodeComplete(EncodeComplete(*c));
        FUZZ_CHECK(again.ok() && again->epoch == c->epoch && again->iteration == c->iteration,
                   "complete round trip differs");
      }
      break;
    }
    case 9: {
      auto i = DecodeIteration(text);
      if (i.ok()) FUZZ_CHECK(*i >= -1 && std::to_string(*i) == text, "iteration not canonical");
      break;
    }
    case 10:
      if (auto id = DecodeId(text); id.ok()) FUZZ_CHECK(*id <= INT32_MAX, "id out of range");
      (void)KeyId(text);
      break;
    case 11:
      (void)DecodeExit(text);
      break;
    case 12:
      (void)DecodeReady(text);
      break;
    case 4: {
      auto p = DecodePlan(text);
      if (p.ok()) {
        auto again = DecodePlan(EncodePlan(*p));
        FUZZ_CHECK(again.ok(), "DecodePlan refused EncodePlan's output");
        FUZZ_CHECK(EncodePlan(*again) == EncodePlan(*p), "plan round trip differs");
      }
      break;
    }
    case 5: {
      auto c = DecodeJobConfig(text);
      if (c.ok()) {
        auto again = DecodeJobConfig(EncodeJobConfig(*c));
        FUZZ_CHECK(again.ok(), "DecodeJobConfig refused EncodeJobConfig's output");
        FUZZ_CHECK(EncodeJobConfig(*again) == EncodeJobConfig(*c), "config round trip differs");
      }
      break;
    }
    case 6: {
      auto h = DecodeHostInfo(text);
      if (h.ok()) {
        auto again = DecodeHostInfo(EncodeHostInfo(*h));
        FUZZ_CHECK(again.ok(), "DecodeHostInfo refused EncodeHostInfo's output");
        FUZZ_CHECK(EncodeHostInfo(*again) == EncodeHostInfo(*h), "host info round trip differs");
      }
      break;
    }
    case 7: {
      auto m = CompleteMarker::Decode(text);
      if (m.ok()) {
        auto again = CompleteMarker::Decode(m->Encode());
        FUZZ_CHECK(again.ok(), "CompleteMarker::Decode refused Encode's output");
        FUZZ_CHECK(again->Encode() == m->Encode(), "marker round trip differs");
      }
      break;
    }
    default:
      Json(mode, text);
      break;
  }
  return 0;
}
