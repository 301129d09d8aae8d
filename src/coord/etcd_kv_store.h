// EtcdKvStore: KvStore on a real etcd v3 server (3.4), through etcd's JSON
// gRPC gateway over HTTP (/v3/kv/*, /v3/lease/*, /v3/watch), via libcurl.
//
// Each call is one HTTP POST bounded by its deadline (connection reuse across
// calls). With several endpoints, a call goes to the last one that answered
// and moves on to the next only when no connection could be made (so nothing
// was sent and no write can be applied twice). A watch is one streaming POST
// served by a thread the Watch owns and joins on destruction; if the server
// goes away the watch breaks with kUnavailable and the owner re-watches from
// the last revision it saw.
//
// Error codes: kUnavailable (etcd unreachable or dropped the connection),
// kDeadlineExceeded (no answer in time, e.g. a stopped or partitioned etcd),
// kNotFound (missing key or lease), kInvalidArgument (etcd refused the
// request), kInternal (an answer that is not etcd's JSON).
//
// Thread safety: all KvStore methods are thread-safe. Watches may outlive the
// EtcdKvStore that created them.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "coord/http_client.h"
#include "coord/kv_store.h"

namespace gemini {

struct EtcdOptions {
  // Client URLs of the etcd members ("http://host:port"), tried in order.
  // Default: a local single-member etcd.
  std::vector<std::string> endpoints = {"http://127.0.0.1:2379"};
  // Largest response accepted (a range over many keys); larger ones fail
  // with kResourceExhausted. Default 64 MiB.
  size_t max_response_bytes = 64 << 20;
  // For https:// endpoints: the CA of etcd's server certificate and this
  // client's certificate and key (etcd --client-cert-auth). PEM files.
  TlsFiles tls;
};

// "host:port,https://host:port,..." (what --etcd and --rdzv-endpoint take)
// as endpoints; a member without a scheme is http://.
std::vector<std::string> ParseEndpoints(const std::string& list);

class EtcdKvStore : public KvStore {
 public:
  explicit EtcdKvStore(EtcdOptions options = EtcdOptions());
  ~EtcdKvStore() override;

  Result<int64_t> Put(const std::string& key, const std::string& value, Deadline deadline,
                      LeaseId lease = kNoLease) override;
  Result<KeyValue> Get(const std::string& key, Deadline deadline) override;
  Result<RangeResult> GetPrefix(const std::string& prefix, Deadline deadline) override;
  Result<int64_t> Delete(const std::string& key, Deadline deadline) override;
  Result<int64_t> DeletePrefix(const std::string& prefix, Deadline deadline) override;
  Result<TxnResult> Txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure, Deadline deadline) override;
  Result<LeaseInfo> LeaseGrant(int64_t ttl_seconds, Deadline deadline) override;
  Result<int64_t> LeaseKeepAlive(LeaseId lease, Deadline deadline) override;
  Status LeaseRevoke(LeaseId lease, Deadline deadline) override;
  Result<std::unique_ptr<Watch>> WatchKey(const std::string& key, bool prefix,
                                          int64_t start_revision, Deadline deadline) override;

 private:
  // POSTs a JSON body to `path` on an endpoint; returns the JSON answer, or
  // the error etcd (or the transport) reported.
  Result<nlohmann::json> Call(const std::string& path, const nlohmann::json& request,
                              Deadline deadline);

  const EtcdOptions options_;
  HttpClient http_;
  std::atomic<size_t> preferred_{0};  // index of the endpoint that last answered
};

}  // namespace gemini
