// Encoding between KvStore types and the JSON of etcd's v3 gRPC gateway:
// bytes are base64, int64 fields are decimal strings, enum values are names,
// zero-valued fields are omitted. Private to the etcd backend.
//
// Decoding never throws: every field is looked up and type-checked, and a
// malformed answer becomes a kInternal status. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "coord/kv_store.h"

namespace gemini::etcd {

std::string Base64Encode(std::string_view in);
// False on characters outside the alphabet or a bad length.
bool Base64Decode(std::string_view in, std::string* out);

// An int64 field given as a string or a number; 0 when absent.
int64_t Int(const nlohmann::json& obj, const char* name);
// A bool / string field; false / "" when absent or of another type.
bool Bool(const nlohmann::json& obj, const char* name);
std::string Str(const nlohmann::json& obj, const char* name);
// A base64 bytes field; "" when absent. False when present but malformed.
bool Bytes(const nlohmann::json& obj, const char* name, std::string* out);
// The header's revision (0 when absent).
int64_t HeaderRevision(const nlohmann::json& resp);

Result<KeyValue> DecodeKeyValue(const nlohmann::json& kv);
// A RangeResponse (top level or inside a transaction).
Result<RangeResult> DecodeRange(const nlohmann::json& resp);
// One watch message's events.
Result<std::vector<WatchEvent>> DecodeEvents(const nlohmann::json& result);

// etcd's [key, range_end) for a single key (range_end "") or a prefix
// ("" = every key). Shared with the gRPC backend.
std::pair<std::string, std::string> RangeBounds(const std::string& key, bool prefix);
// {"key", "range_end"} for a single key or a prefix ("" = every key).
void SetRange(nlohmann::json& req, const std::string& key, bool prefix);
nlohmann::json EncodeCompare(const Compare& c);
nlohmann::json EncodeOp(const TxnOp& op);

// A gateway error ({"error": ..., "code": grpc code, "message": ...}) as a
// Status; code chosen from the gRPC code.
Status DecodeError(const nlohmann::json& err, long http_status);
// A gRPC status code (etcd's server errors, the transport's) as a Code.
Code CodeFromGrpc(int64_t grpc);

}  // namespace gemini::etcd
