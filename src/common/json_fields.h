// JsonFields: typed, range-checked reads of a JSON object from outside the
// process (etcd values, a peer's status), with no exceptions and no
// undefined conversions.
//
// nlohmann's get<T>() converts any number to any arithmetic type: 1e300 into
// an int64 is undefined behaviour, -1 into a uint32 wraps. Every read here
// checks the JSON type and the range first. The first problem is kept and
// every later read returns its fallback, so a decoder reads all its fields
// and checks status() once:
//
//   JsonFields f(j, "plan");
//   p.epoch = f.Int("epoch", 0, INT64_MAX);
//   p.reason = f.String("reason", "");
//   GEMINI_RETURN_IF_ERROR(f.status());
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini {

class JsonFields {
 public:
  // `what` names the record in errors ("plan", "host record").
  JsonFields(const nlohmann::json& object, std::string what);

  // An integer in [min, max]; `fallback` when absent (required if none).
  int64_t Int(const char* key, int64_t min, int64_t max,
              std::optional<int64_t> fallback = std::nullopt);
  // A finite number in [min, max].
  double Number(const char* key, double min, double max,
                std::optional<double> fallback = std::nullopt);
  bool Bool(const char* key, std::optional<bool> fallback = std::nullopt);
  std::string String(const char* key, std::optional<std::string> fallback = std::nullopt,
                     size_t max_bytes = 1 << 16);
  // An array of at most max_count integers in [0, max].
  std::vector<uint32_t> Ids(const char* key, uint32_t max, size_t max_count);
  std::vector<std::string> Strings(const char* key, size_t max_count);
  std::map<std::string, std::string> StringMap(const char* key, size_t max_count);
  // A nested object (absent: an empty one when optional, else an error).
  nlohmann::json Object(const char* key, bool optional);

  const Status& status() const { return status_; }

 private:
  // The member, or null (and maybe an error) when absent.
  const nlohmann::json* Find(const char* key, bool required);
  void Fail(const char* key, const std::string& problem);

  const nlohmann::json& object_;
  const std::string what_;
  Status status_;
};

// Parses `text` as a JSON object; InvalidArgument naming `what` otherwise.
Result<nlohmann::json> ParseJsonObject(std::string_view text, const std::string& what);

}  // namespace gemini
