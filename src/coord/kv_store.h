// KvStore: the coordination key-value store, with etcd v3 semantics.
//
// Agents use it for membership (keys under a lease), root election
// (create-if-absent), the recovery plan, and the newest complete iteration
// (compare-and-swap). Two implementations share this interface and one
// conformance suite (kv_store_test.cc): EtcdKvStore (etcd's JSON gateway) and
// FakeKvStore (in memory, for unit tests). PrefixKvStore confines a job to its
// own key prefix.
//
// Semantics are etcd's: the store has one revision counter, bumped by every
// write that changes something (one bump per transaction); each key carries
// create_revision, mod_revision, version (number of puts since creation) and
// its lease. A lease expires ttl seconds after its last keepalive, and then
// every key attached to it is deleted (watchers see the deletes).
//
// Every call takes a Deadline and returns by then: kDeadlineExceeded when the
// server did not answer in time, kUnavailable when it cannot be reached. No
// call blocks forever and none throws.
//
// Thread safety: every KvStore method may be called concurrently from any
// thread. A Watch is polled by one thread at a time; Cancel() may be called
// from any thread. Keys and values are arbitrary bytes.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace gemini {

using Deadline = std::chrono::steady_clock::time_point;
// now + d.
Deadline DeadlineAfter(std::chrono::milliseconds d);
// Milliseconds left until `deadline`, never negative.
int64_t MillisLeft(Deadline deadline);

using LeaseId = int64_t;
constexpr LeaseId kNoLease = 0;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  LeaseId lease = kNoLease;
};

// Keys matching a read, sorted by key, and the store revision it saw.
struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t revision = 0;
};

struct LeaseInfo {
  LeaseId id = kNoLease;
  int64_t ttl_seconds = 0;  // as granted; etcd may raise a small request
};

// One condition of a transaction, on a single key. A missing key has
// version, create_revision and mod_revision 0, and fails every kValue
// comparison (etcd's rule).
struct Compare {
  enum class Target { kValue, kVersion, kCreateRevision, kModRevision };
  enum class Op { kEqual, kNotEqual, kGreater, kLess };
  std::string key;
  Target target = Target::kValue;
  Op op = Op::kEqual;
  std::string value;   // for kValue (bytewise order)
  int64_t number = 0;  // for the other targets

  static Compare ValueEquals(std::string key, std::string value);
  static Compare ModRevisionEquals(std::string key, int64_t mod_revision);
  static Compare VersionEquals(std::string key, int64_t version);
  // The key does not exist (create_revision == 0).
  static Compare Absent(std::string key);
};

// One operation of a transaction branch. A key may be written at most once
// per transaction (kInvalidArgument otherwise).
struct TxnOp {
  enum class Type { kPut, kDelete, kGet };
  Type type = Type::kGet;
  std::string key;
  std::string value;         // kPut
  LeaseId lease = kNoLease;  // kPut
  bool prefix = false;       // kDelete / kGet: every key starting with `key`

  static TxnOp Put(std::string key, std::string value, LeaseId lease = kNoLease);
  static TxnOp Delete(std::string key);
  static TxnOp Get(std::string key);
  static TxnOp GetPrefix(std::string prefix);
};

struct TxnResult {
  bool succeeded = false;  // the compares held and `success` ran
  int64_t revision = 0;    // store revision after the transaction
  // One entry per kGet op of the branch that ran, in order.
  std::vector<RangeResult> gets;
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  // For kPut the new key-value; for kDelete only key and mod_revision (the
  // revision of the delete) are set.
  KeyValue kv;
};

// A stream of changes under a key or prefix, in revision order. Destroying it
// cancels it (and joins any thread it owns).
class Watch {
 public:
  virtual ~Watch() = default;
  // Waits until at least one event is queued or the deadline passes; returns
  // the queued events (empty when the deadline passed first). Once the watch
  // has broken (server gone: kUnavailable; history compacted: kAborted;
  // Cancel(): kAborted), returns the events still queued, then the error on
  // every later call. To resume, watch again from the last revision seen + 1.
  virtual Result<std::vector<WatchEvent>> Poll(Deadline deadline) = 0;
  // Makes a blocked or later Poll return kAborted promptly. Thread-safe.
  virtual void Cancel() = 0;
};

class KvStore {
 public:
  virtual ~KvStore() = default;

  // Sets key to value (attached to `lease` unless kNoLease; kNotFound if the
  // lease does not exist). Returns the new store revision.
  virtual Result<int64_t> Put(const std::string& key, const std::string& value, Deadline deadline,
                              LeaseId lease = kNoLease) = 0;
  // kNotFound if the key does not exist.
  virtual Result<KeyValue> Get(const std::string& key, Deadline deadline) = 0;
  // Every key starting with `prefix` ("" = every key), sorted by key.
  virtual Result<RangeResult> GetPrefix(const std::string& prefix, Deadline deadline) = 0;
  // Returns how many keys were deleted (0 or 1).
  virtual Result<int64_t> Delete(const std::string& key, Deadline deadline) = 0;
  virtual Result<int64_t> DeletePrefix(const std::string& prefix, Deadline deadline) = 0;
  // If every compare holds, runs `success`, else `failure`; atomically.
  virtual Result<TxnResult> Txn(const std::vector<Compare>& compares,
                                const std::vector<TxnOp>& success,
                                const std::vector<TxnOp>& failure, Deadline deadline) = 0;

  // ttl_seconds must be positive.
  virtual Result<LeaseInfo> LeaseGrant(int64_t ttl_seconds, Deadline deadline) = 0;
  // Restarts the lease's countdown; returns its TTL. kNotFound once the lease
  // expired or was revoked (its keys are gone).
  virtual Result<int64_t> LeaseKeepAlive(LeaseId lease, Deadline deadline) = 0;
  // Deletes the lease and every key attached to it. kNotFound if unknown.
  virtual Status LeaseRevoke(LeaseId lease, Deadline deadline) = 0;

  // Watches `key` (or every key starting with it, if `prefix`), from
  // `start_revision` (0 = changes after now; older revisions replay history).
  // Returns once the watch is registered: every change committed after this
  // call returns is delivered.
  virtual Result<std::unique_ptr<Watch>> WatchKey(const std::string& key, bool prefix,
                                                  int64_t start_revision, Deadline deadline) = 0;

  // Conveniences built on the calls above.
  Result<std::unique_ptr<Watch>> WatchPrefix(const std::string& prefix, int64_t start_revision,
                                             Deadline deadline) {
    return WatchKey(prefix, /*prefix=*/true, start_revision, deadline);
  }
  // Creates key = value unless it exists. Returns true if this call created it.
  Result<bool> CreateIfAbsent(const std::string& key, const std::string& value, Deadline deadline,
                              LeaseId lease = kNoLease);
  // Sets key = value only if its current value is `expected` (the key must
  // exist). Returns true if swapped.
  Result<bool> CompareAndSwapValue(const std::string& key, const std::string& expected,
                                   const std::string& value, Deadline deadline,
                                   LeaseId lease = kNoLease);
  // Sets key = value only if its mod_revision is `expected_mod_revision`
  // (0 = only if absent). Returns true if swapped.
  Result<bool> CompareAndSwapRevision(const std::string& key, int64_t expected_mod_revision,
                                      const std::string& value, Deadline deadline,
                                      LeaseId lease = kNoLease);
};

// The smallest key greater than every key starting with `prefix` (etcd's
// range_end); "" when there is none (prefix empty or all 0xff).
std::string PrefixEnd(const std::string& prefix);

}  // namespace gemini
