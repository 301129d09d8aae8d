#include "agent/cluster/coord_records.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/json_fields.h"

namespace gemini {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxId = INT32_MAX;

Result<int64_t> ParseDecimal(std::string_view text, int64_t min, int64_t max, const char* what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  // Canonical only ("7", not "07" or "-0"): one number, one spelling, so two
  // keys ("ranks/7", "ranks/07") never name the same rank.
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max ||
      std::to_string(v) != text)
    return InvalidArgument(std::string(what) + ": '" + std::string(text.substr(0, 64)) +
                           "' is not a canonical number in [" + std::to_string(min) + ", " +
                           std::to_string(max) + "]");
  return v;
}

}  // namespace

std::string EncodeComplete(const CompleteRecord& c) {
  return json{{"epoch", c.epoch}, {"iteration", c.iteration}}.dump();
}

Result<CompleteRecord> DecodeComplete(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "complete record"));
  JsonFields f(j, "complete record");
  CompleteRecord c;
  c.epoch = f.Int("epoch", 0, INT64_MAX);
  c.iteration = f.Int("iteration", -1, INT64_MAX);
  GEMINI_RETURN_IF_ERROR(f.status());
  return c;
}

Result<int64_t> DecodeIteration(std::string_view text) {
  return ParseDecimal(text, -1, INT64_MAX, "iteration");
}

Result<uint32_t> DecodeId(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(int64_t v, ParseDecimal(text, 0, kMaxId, "id"));
  return static_cast<uint32_t>(v);
}

Result<uint32_t> KeyId(std::string_view key) {
  auto slash = key.rfind('/');
  return DecodeId(slash == std::string_view::npos ? key : key.substr(slash + 1));
}

Result<ExitRecord> DecodeExit(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "exit record"));
  JsonFields f(j, "exit record");
  ExitRecord e;
  e.code = static_cast<int>(f.Int("code", INT32_MIN, INT32_MAX));
  e.at = f.Number("at", 0, 1e12, 0);
  e.host = static_cast<uint32_t>(f.Int("host", 0, kMaxId));
  GEMINI_RETURN_IF_ERROR(f.status());
  return e;
}

Result<ReadyRecord> DecodeReady(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseJsonObject(text, "ready record"));
  JsonFields f(j, "ready record");
  ReadyRecord r;
  r.ok = f.Bool("ok");
  r.error = f.String("error", "");
  r.source = f.String("source", "");
  r.at = f.Number("at", 0, 1e12, 0);
  GEMINI_RETURN_IF_ERROR(f.status());
  return r;
}

}  // namespace gemini
