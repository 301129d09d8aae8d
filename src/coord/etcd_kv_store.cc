#include "coord/etcd_kv_store.h"

#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <utility>

#include "common/log.h"
#include "coord/etcd_codec.h"
#include "coord/watch_queue.h"

namespace gemini {

std::vector<std::string> ParseEndpoints(const std::string& list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(',', start), list.size());
    std::string e = list.substr(start, end - start);
    if (!e.empty()) out.push_back(e.find("://") == std::string::npos ? "http://" + e : e);
    start = end + 1;
  }
  return out;
}
namespace {

using nlohmann::json;

constexpr size_t kMaxWatchLine = 64 << 20;

// One watch: a streaming POST to /v3/watch read by a thread this object owns.
// The thread turns each newline-delimited JSON message into queued events.
class EtcdWatch : public Watch {
 public:
  EtcdWatch(std::string url, std::string body, const TlsFiles& tls)
      : url_(std::move(url)), body_(std::move(body)), stream_(tls) {}

  ~EtcdWatch() override {
    Cancel();
    if (thread_.joinable()) thread_.join();
  }

  // Starts the stream and waits until etcd confirms the watch exists.
  Status Start(Deadline deadline) {
    thread_ = std::thread([this, deadline] { RunStream(deadline); });
    return q_.WaitCreated(deadline, "etcd watch: not created before the deadline");
  }

  Result<std::vector<WatchEvent>> Poll(Deadline deadline) override { return q_.Poll(deadline); }

  void Cancel() override {
    Fail(Aborted("watch canceled"));
    stream_.Stop();
  }

 private:
  void RunStream(Deadline connect_deadline) {
    Status st = stream_.Run(url_, body_, connect_deadline,
                            [this](std::string_view data) { return OnData(data); });
    if (st.ok()) st = Unavailable("etcd watch: server ended the stream");
    Fail(st);
  }

  void Fail(Status st) { q_.Fail(std::move(st)); }

  bool OnData(std::string_view data) {
    buffer_.append(data);
    size_t start = 0;
    for (size_t nl; (nl = buffer_.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (!OnMessage(std::string_view(buffer_).substr(start, nl - start))) return false;
    }
    buffer_.erase(0, start);
    if (buffer_.size() > kMaxWatchLine) {
      Fail(ResourceExhausted("etcd watch: message over " + std::to_string(kMaxWatchLine)));
      return false;
    }
    return true;
  }

  // Returns false when the stream should stop.
  bool OnMessage(std::string_view line) {
    json msg = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (msg.is_discarded() || !msg.is_object()) {
      // Whitespace or trailers between messages are fine; anything else is not.
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) return true;
      Fail(Internal("etcd watch: malformed message"));
      return false;
    }
    if (msg.contains("error")) {
      Fail(etcd::DecodeError(msg, 200));
      return false;
    }
    auto result = msg.find("result");
    if (result == msg.end() || !result->is_object()) return true;
    if (etcd::Bool(*result, "canceled")) {
      int64_t compacted = etcd::Int(*result, "compact_revision");
      Fail(compacted > 0
               ? Aborted("etcd watch: required revision has been compacted (at " +
                         std::to_string(compacted) + ")")
               : Aborted("etcd watch: canceled by server: " + etcd::Str(*result, "cancel_reason")));
      return false;
    }
    Result<std::vector<WatchEvent>> events = etcd::DecodeEvents(*result);
    if (!events.ok()) {
      Fail(events.status());
      return false;
    }
    q_.Push(std::move(*events), etcd::Bool(*result, "created"));
    return true;
  }

  const std::string url_;
  const std::string body_;
  HttpStream stream_;
  std::thread thread_;
  std::string buffer_;  // stream thread only
  WatchQueue q_;
};

}  // namespace

EtcdKvStore::EtcdKvStore(EtcdOptions options)
    : options_(std::move(options)), http_(options_.max_response_bytes, options_.tls) {}

EtcdKvStore::~EtcdKvStore() = default;

Result<json> EtcdKvStore::Call(const std::string& path, const json& request, Deadline deadline) {
  if (options_.endpoints.empty()) return InvalidArgument("etcd: no endpoints configured");
  const std::string body = request.dump();
  const size_t n = options_.endpoints.size();
  const size_t first = preferred_.load() % n;
  Status last;
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (first + i) % n;
    bool connect_failed = false;
    Result<HttpResponse> resp =
        http_.Post(options_.endpoints[idx] + path, body, deadline, &connect_failed);
    if (!resp.ok()) {
      last = resp.status();
      if (connect_failed) continue;  // nothing was sent: try the next member
      return last;
    }
    preferred_.store(idx);
    json answer = json::parse(resp->body, nullptr, /*allow_exceptions=*/false);
    if (answer.is_discarded() || !answer.is_object()) {
      return Internal("etcd " + path + ": HTTP " + std::to_string(resp->status) +
                      ", not JSON: " + resp->body.substr(0, 200));
    }
    if (resp->status != 200 || answer.contains("error")) {
      return etcd::DecodeError(answer, resp->status);
    }
    return answer;
  }
  return last;
}

Result<int64_t> EtcdKvStore::Put(const std::string& key, const std::string& value,
                                 Deadline deadline, LeaseId lease) {
  json req = {{"key", etcd::Base64Encode(key)}, {"value", etcd::Base64Encode(value)}};
  if (lease != kNoLease) req["lease"] = std::to_string(lease);
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/put", req, deadline));
  return etcd::HeaderRevision(resp);
}

Result<KeyValue> EtcdKvStore::Get(const std::string& key, Deadline deadline) {
  json req = json::object();
  etcd::SetRange(req, key, false);
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/range", req, deadline));
  GEMINI_ASSIGN_OR_RETURN(RangeResult r, etcd::DecodeRange(resp));
  if (r.kvs.empty()) return NotFound("key not found: " + key);
  return std::move(r.kvs.front());
}

Result<RangeResult> EtcdKvStore::GetPrefix(const std::string& prefix, Deadline deadline) {
  json req = json::object();
  etcd::SetRange(req, prefix, true);
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/range", req, deadline));
  return etcd::DecodeRange(resp);
}

Result<int64_t> EtcdKvStore::Delete(const std::string& key, Deadline deadline) {
  json req = json::object();
  etcd::SetRange(req, key, false);
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/deleterange", req, deadline));
  return etcd::Int(resp, "deleted");
}

Result<int64_t> EtcdKvStore::DeletePrefix(const std::string& prefix, Deadline deadline) {
  json req = json::object();
  etcd::SetRange(req, prefix, true);
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/deleterange", req, deadline));
  return etcd::Int(resp, "deleted");
}

Result<TxnResult> EtcdKvStore::Txn(const std::vector<Compare>& compares,
                                   const std::vector<TxnOp>& success,
                                   const std::vector<TxnOp>& failure, Deadline deadline) {
  json req = {{"compare", json::array()}, {"success", json::array()}, {"failure", json::array()}};
  for (const auto& c : compares) req["compare"].push_back(etcd::EncodeCompare(c));
  for (const auto& op : success) req["success"].push_back(etcd::EncodeOp(op));
  for (const auto& op : failure) req["failure"].push_back(etcd::EncodeOp(op));
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/kv/txn", req, deadline));
  TxnResult r;
  r.succeeded = etcd::Bool(resp, "succeeded");
  r.revision = etcd::HeaderRevision(resp);
  auto responses = resp.find("responses");
  if (responses == resp.end() || !responses->is_array()) return r;
  for (const json& one : *responses) {
    auto range = one.is_object() ? one.find("response_range") : one.end();
    if (range == one.end()) continue;
    GEMINI_ASSIGN_OR_RETURN(RangeResult got, etcd::DecodeRange(*range));
    if (got.revision == 0) got.revision = r.revision;
    r.gets.push_back(std::move(got));
  }
  return r;
}

Result<LeaseInfo> EtcdKvStore::LeaseGrant(int64_t ttl_seconds, Deadline deadline) {
  if (ttl_seconds <= 0) return InvalidArgument("lease TTL must be positive");
  GEMINI_ASSIGN_OR_RETURN(json resp, Call("/v3/lease/grant", json{{"TTL", ttl_seconds}}, deadline));
  LeaseInfo info{etcd::Int(resp, "ID"), etcd::Int(resp, "TTL")};
  if (info.id == kNoLease) return Internal("etcd: lease grant returned no ID");
  return info;
}

Result<int64_t> EtcdKvStore::LeaseKeepAlive(LeaseId lease, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(
      json resp, Call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}, deadline));
  // A streaming call: one {"result": {...}} per request.
  auto result = resp.find("result");
  int64_t ttl = result == resp.end() ? 0 : etcd::Int(*result, "TTL");
  if (ttl <= 0) return NotFound("lease " + std::to_string(lease) + " expired or revoked");
  return ttl;
}

Status EtcdKvStore::LeaseRevoke(LeaseId lease, Deadline deadline) {
  return Call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}, deadline).status();
}

Result<std::unique_ptr<Watch>> EtcdKvStore::WatchKey(const std::string& key, bool prefix,
                                                     int64_t start_revision, Deadline deadline) {
  if (options_.endpoints.empty()) return InvalidArgument("etcd: no endpoints configured");
  json create = json::object();
  etcd::SetRange(create, key, prefix);
  if (start_revision > 0) create["start_revision"] = std::to_string(start_revision);
  const std::string url =
      options_.endpoints[preferred_.load() % options_.endpoints.size()] + "/v3/watch";
  auto watch =
      std::make_unique<EtcdWatch>(url, json{{"create_request", create}}.dump(), options_.tls);
  Status st = watch->Start(deadline);
  if (!st.ok()) {
    GEMINI_LOG(DEBUG) << "[etcd] watch on " << url << " failed: " << st.ToString();
    return st;
  }
  return std::unique_ptr<Watch>(std::move(watch));
}

}  // namespace gemini
