#include "coord/etcd_codec.h"

#include <charconv>

namespace gemini::etcd {
namespace {

using nlohmann::json;

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;  // standard and URL-safe alphabets
  if (c == '/' || c == '_') return 63;
  return -1;
}

Status Malformed(const std::string& what) { return Internal("etcd: malformed response: " + what); }

const char* TargetName(Compare::Target t) {
  switch (t) {
    case Compare::Target::kValue:
      return "VALUE";
    case Compare::Target::kVersion:
      return "VERSION";
    case Compare::Target::kCreateRevision:
      return "CREATE";
    case Compare::Target::kModRevision:
      return "MOD";
  }
  return "VALUE";
}

const char* OpName(Compare::Op op) {
  switch (op) {
    case Compare::Op::kEqual:
      return "EQUAL";
    case Compare::Op::kNotEqual:
      return "NOT_EQUAL";
    case Compare::Op::kGreater:
      return "GREATER";
    case Compare::Op::kLess:
      return "LESS";
  }
  return "EQUAL";
}

}  // namespace

Code CodeFromGrpc(int64_t grpc) {
  switch (grpc) {
    case 3:  // INVALID_ARGUMENT
      return Code::kInvalidArgument;
    case 4:  // DEADLINE_EXCEEDED
      return Code::kDeadlineExceeded;
    case 5:  // NOT_FOUND
      return Code::kNotFound;
    case 6:   // ALREADY_EXISTS
    case 7:   // PERMISSION_DENIED
    case 9:   // FAILED_PRECONDITION
    case 16:  // UNAUTHENTICATED
      return Code::kFailedPrecondition;
    case 8:  // RESOURCE_EXHAUSTED
      return Code::kResourceExhausted;
    case 1:   // CANCELLED
    case 10:  // ABORTED
    case 11:  // OUT_OF_RANGE (revision compacted)
      return Code::kAborted;
    case 14:  // UNAVAILABLE
      return Code::kUnavailable;
    case 15:  // DATA_LOSS
      return Code::kDataLoss;
    default:
      return Code::kInternal;
  }
}

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return false;
  out->clear();
  out->reserve(in.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int s = Sextet(c);
    if (s < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(s);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

int64_t Int(const json& obj, const char* name) {
  if (!obj.is_object()) return 0;
  auto it = obj.find(name);
  if (it == obj.end()) return 0;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (!it->is_string()) return 0;
  const std::string& s = it->get_ref<const std::string&>();
  int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

bool Bool(const json& obj, const char* name) {
  if (!obj.is_object()) return false;
  auto it = obj.find(name);
  return it != obj.end() && it->is_boolean() && it->get<bool>();
}

std::string Str(const json& obj, const char* name) {
  if (!obj.is_object()) return "";
  auto it = obj.find(name);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : "";
}

bool Bytes(const json& obj, const char* name, std::string* out) {
  out->clear();
  if (!obj.is_object()) return false;
  auto it = obj.find(name);
  if (it == obj.end()) return true;
  if (!it->is_string()) return false;
  return Base64Decode(it->get_ref<const std::string&>(), out);
}

int64_t HeaderRevision(const json& resp) {
  if (!resp.is_object()) return 0;
  auto it = resp.find("header");
  return it == resp.end() ? 0 : Int(*it, "revision");
}

Result<KeyValue> DecodeKeyValue(const json& j) {
  KeyValue kv;
  if (!Bytes(j, "key", &kv.key) || !Bytes(j, "value", &kv.value)) return Malformed("key-value");
  kv.create_revision = Int(j, "create_revision");
  kv.mod_revision = Int(j, "mod_revision");
  kv.version = Int(j, "version");
  kv.lease = Int(j, "lease");
  return kv;
}

Result<RangeResult> DecodeRange(const json& resp) {
  RangeResult r;
  r.revision = HeaderRevision(resp);
  if (!resp.is_object()) return Malformed("range");
  auto kvs = resp.find("kvs");
  if (kvs == resp.end()) return r;
  if (!kvs->is_array()) return Malformed("kvs");
  for (const json& j : *kvs) {
    GEMINI_ASSIGN_OR_RETURN(KeyValue kv, DecodeKeyValue(j));
    r.kvs.push_back(std::move(kv));
  }
  return r;
}

Result<std::vector<WatchEvent>> DecodeEvents(const json& result) {
  std::vector<WatchEvent> out;
  auto events = result.find("events");
  if (events == result.end()) return out;
  if (!events->is_array()) return Malformed("events");
  for (const json& e : *events) {
    if (!e.is_object()) return Malformed("event");
    WatchEvent ev;
    auto type = e.find("type");
    if (type != e.end() && type->is_string() && type->get_ref<const std::string&>() == "DELETE") {
      ev.type = WatchEvent::Type::kDelete;
    }
    auto kv = e.find("kv");
    if (kv == e.end()) return Malformed("event without kv");
    GEMINI_ASSIGN_OR_RETURN(ev.kv, DecodeKeyValue(*kv));
    out.push_back(std::move(ev));
  }
  return out;
}

std::pair<std::string, std::string> RangeBounds(const std::string& key, bool prefix) {
  const std::string zero(1, '\0');
  if (prefix && key.empty()) return {zero, zero};  // etcd: "\0".."\0" = every key
  if (!prefix) return {key, ""};
  std::string end = PrefixEnd(key);
  // No end (key is all 0xff): "\0" means every key >= key.
  return {key, end.empty() ? zero : end};
}

void SetRange(json& req, const std::string& key, bool prefix) {
  auto [first, end] = RangeBounds(key, prefix);
  req["key"] = Base64Encode(first);
  if (!end.empty()) req["range_end"] = Base64Encode(end);
}

json EncodeCompare(const Compare& c) {
  json j = {
      {"key", Base64Encode(c.key)}, {"target", TargetName(c.target)}, {"result", OpName(c.op)}};
  switch (c.target) {
    case Compare::Target::kValue:
      j["value"] = Base64Encode(c.value);
      break;
    case Compare::Target::kVersion:
      j["version"] = std::to_string(c.number);
      break;
    case Compare::Target::kCreateRevision:
      j["create_revision"] = std::to_string(c.number);
      break;
    case Compare::Target::kModRevision:
      j["mod_revision"] = std::to_string(c.number);
      break;
  }
  return j;
}

json EncodeOp(const TxnOp& op) {
  json req = json::object();
  switch (op.type) {
    case TxnOp::Type::kPut:
      req["key"] = Base64Encode(op.key);
      req["value"] = Base64Encode(op.value);
      if (op.lease != kNoLease) req["lease"] = std::to_string(op.lease);
      return {{"request_put", req}};
    case TxnOp::Type::kDelete:
      SetRange(req, op.key, op.prefix);
      return {{"request_delete_range", req}};
    case TxnOp::Type::kGet:
      SetRange(req, op.key, op.prefix);
      return {{"request_range", req}};
  }
  return json::object();
}

Status DecodeError(const json& err, long http_status) {
  // Streaming calls wrap it: {"error": {"grpc_code": 14, "message": ...}}.
  if (err.is_object()) {
    auto inner = err.find("error");
    if (inner != err.end() && inner->is_object()) {
      json flat = *inner;
      if (!flat.contains("code")) flat["code"] = Int(*inner, "grpc_code");
      return DecodeError(flat, http_status);
    }
  }
  std::string message = Str(err, "message");
  if (message.empty()) message = Str(err, "error");
  int64_t grpc = Int(err, "code");
  if (message.empty()) message = "HTTP " + std::to_string(http_status);
  return Status(CodeFromGrpc(grpc), "etcd: " + message);
}

}  // namespace gemini::etcd
