#include "common/json_fields.h"

#include <cmath>

namespace gemini {

using json = nlohmann::json;

JsonFields::JsonFields(const json& object, std::string what)
    : object_(object), what_(std::move(what)) {
  if (!object_.is_object()) status_ = InvalidArgument(what_ + " is not a JSON object");
}

void JsonFields::Fail(const char* key, const std::string& problem) {
  if (status_.ok()) status_ = InvalidArgument(what_ + ": '" + key + "' " + problem);
}

const json* JsonFields::Find(const char* key, bool required) {
  if (!status_.ok()) return nullptr;
  auto it = object_.find(key);
  if (it != object_.end()) return &*it;
  if (required) Fail(key, "is missing");
  return nullptr;
}

int64_t JsonFields::Int(const char* key, int64_t min, int64_t max,
                        std::optional<int64_t> fallback) {
  const json* v = Find(key, !fallback);
  if (v == nullptr) return fallback.value_or(min);
  if (!v->is_number_integer()) {
    Fail(key, "is not an integer");
    return fallback.value_or(min);
  }
  bool in_range;
  if (v->is_number_unsigned()) {  // nlohmann parses every non-negative integer as unsigned.
    uint64_t u = v->get<uint64_t>();
    in_range = max >= 0 && u <= static_cast<uint64_t>(max) &&
               (min <= 0 || u >= static_cast<uint64_t>(min));
  } else {
    int64_t i = v->get<int64_t>();
    in_range = i >= min && i <= max;
  }
  if (!in_range) {
    Fail(key, "is outside [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    return fallback.value_or(min);
  }
  return v->is_number_unsigned() ? static_cast<int64_t>(v->get<uint64_t>()) : v->get<int64_t>();
}

double JsonFields::Number(const char* key, double min, double max, std::optional<double> fallback) {
  const json* v = Find(key, !fallback);
  if (v == nullptr) return fallback.value_or(min);
  if (!v->is_number() || !std::isfinite(v->get<double>()) || v->get<double>() < min ||
      v->get<double>() > max) {
    Fail(key, "is not a number in range");
    return fallback.value_or(min);
  }
  return v->get<double>();
}

bool JsonFields::Bool(const char* key, std::optional<bool> fallback) {
  const json* v = Find(key, !fallback);
  if (v == nullptr) return fallback.value_or(false);
  if (!v->is_boolean()) {
    Fail(key, "is not a boolean");
    return fallback.value_or(false);
  }
  return v->get<bool>();
}

std::string JsonFields::String(const char* key, std::optional<std::string> fallback,
                               size_t max_bytes) {
  const json* v = Find(key, !fallback);
  if (v == nullptr) return fallback.value_or("");
  if (!v->is_string() || v->get_ref<const std::string&>().size() > max_bytes) {
    Fail(key, "is not a string of at most " + std::to_string(max_bytes) + " bytes");
    return fallback.value_or("");
  }
  return v->get<std::string>();
}

std::vector<uint32_t> JsonFields::Ids(const char* key, uint32_t max, size_t max_count) {
  const json* v = Find(key, true);
  std::vector<uint32_t> out;
  if (v == nullptr) return out;
  if (!v->is_array() || v->size() > max_count) {
    Fail(key, "is not an array of at most " + std::to_string(max_count) + " ids");
    return out;
  }
  for (const auto& e : *v) {
    if (!e.is_number_unsigned() || e.get<uint64_t>() > max) {
      Fail(key, "holds something other than an id in [0, " + std::to_string(max) + "]");
      return {};
    }
    out.push_back(static_cast<uint32_t>(e.get<uint64_t>()));
  }
  return out;
}

std::vector<std::string> JsonFields::Strings(const char* key, size_t max_count) {
  const json* v = Find(key, true);
  std::vector<std::string> out;
  if (v == nullptr) return out;
  if (!v->is_array() || v->size() > max_count) {
    Fail(key, "is not an array of at most " + std::to_string(max_count) + " strings");
    return out;
  }
  for (const auto& e : *v) {
    if (!e.is_string()) {
      Fail(key, "holds something other than a string");
      return {};
    }
    out.push_back(e.get<std::string>());
  }
  return out;
}

std::map<std::string, std::string> JsonFields::StringMap(const char* key, size_t max_count) {
  const json* v = Find(key, true);
  std::map<std::string, std::string> out;
  if (v == nullptr) return out;
  if (!v->is_object() || v->size() > max_count) {
    Fail(key, "is not an object of at most " + std::to_string(max_count) + " strings");
    return out;
  }
  for (const auto& [k, e] : v->items()) {
    if (!e.is_string()) {
      Fail(key, "holds a value that is not a string");
      return {};
    }
    out[k] = e.get<std::string>();
  }
  return out;
}

json JsonFields::Object(const char* key, bool optional) {
  const json* v = Find(key, !optional);
  if (v == nullptr) return json::object();
  if (!v->is_object()) {
    Fail(key, "is not an object");
    return json::object();
  }
  return *v;
}

Result<json> ParseJsonObject(std::string_view text, const std::string& what) {
  auto j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InvalidArgument(what + " is not a JSON object");
  return j;
}

}  // namespace gemini
