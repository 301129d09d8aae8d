#include "agent/coord_records.h"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>

namespace gemini {
namespace {

using json = nlohmann::json;

constexpr int64_t kMaxId = INT32_MAX;

Result<int64_t> ParseDecimal(std::string_view text, int64_t min, int64_t max, const char* what) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || v < min || v > max)
    return InvalidArgument(std::string(what) + ": '" + std::string(text.substr(0, 64)) +
                           "' is not a number in [" + std::to_string(min) + ", " +
                           std::to_string(max) + "]");
  return v;
}

Result<json> ParseObject(std::string_view text, const char* what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return InvalidArgument(std::string(what) + " record is not a JSON object");
  return j;
}

// An integer member in [min, max]; `fallback` when absent and optional.
Result<int64_t> IntMember(const json& j, const char* key, int64_t min, int64_t max,
                          const char* what) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    return InvalidArgument(std::string(what) + " record: '" + key + "' missing or not an integer");
  int64_t v = it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(INT64_MAX)
                  ? INT64_MAX
                  : it->get<int64_t>();
  if (v < min || v > max)
    return InvalidArgument(std::string(what) + " record: '" + key + "' out of range");
  return v;
}

// A finite wall-clock time member, 0 when absent.
Result<double> TimeMember(const json& j, const char* key, const char* what) {
  auto it = j.find(key);
  if (it == j.end()) return 0.0;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0)
    return InvalidArgument(std::string(what) + " record: '" + key + "' is not a time");
  return it->get<double>();
}

Result<std::string> StringMember(const json& j, const char* key, const char* what) {
  auto it = j.find(key);
  if (it == j.end()) return std::string();
  if (!it->is_string())
    return InvalidArgument(std::string(what) + " record: '" + key + "' is not a string");
  return it->get<std::string>();
}

}  // namespace

std::string EncodeComplete(const CompleteRecord& c) {
  return json{{"epoch", c.epoch}, {"iteration", c.iteration}}.dump();
}

Result<CompleteRecord> DecodeComplete(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseObject(text, "complete"));
  CompleteRecord c;
  GEMINI_ASSIGN_OR_RETURN(c.epoch, IntMember(j, "epoch", 0, INT64_MAX, "complete"));
  GEMINI_ASSIGN_OR_RETURN(c.iteration, IntMember(j, "iteration", -1, INT64_MAX, "complete"));
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
  GEMINI_ASSIGN_OR_RETURN(json j, ParseObject(text, "exit"));
  ExitRecord e;
  GEMINI_ASSIGN_OR_RETURN(int64_t code, IntMember(j, "code", INT32_MIN, INT32_MAX, "exit"));
  e.code = static_cast<int>(code);
  GEMINI_ASSIGN_OR_RETURN(e.at, TimeMember(j, "at", "exit"));
  GEMINI_ASSIGN_OR_RETURN(int64_t host, IntMember(j, "host", 0, kMaxId, "exit"));
  e.host = static_cast<uint32_t>(host);
  return e;
}

Result<ReadyRecord> DecodeReady(std::string_view text) {
  GEMINI_ASSIGN_OR_RETURN(json j, ParseObject(text, "ready"));
  ReadyRecord r;
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean())
    return InvalidArgument("ready record: 'ok' missing or not a boolean");
  r.ok = ok->get<bool>();
  GEMINI_ASSIGN_OR_RETURN(r.error, StringMember(j, "error", "ready"));
  GEMINI_ASSIGN_OR_RETURN(r.source, StringMember(j, "source", "ready"));
  GEMINI_ASSIGN_OR_RETURN(r.at, TimeMember(j, "at", "ready"));
  return r;
}

}  // namespace gemini
