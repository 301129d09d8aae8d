#include "coord/kv_store.h"

#include <utility>

namespace gemini {

Deadline DeadlineAfter(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

int64_t MillisLeft(Deadline deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return left.count() > 0 ? left.count() : 0;
}

Compare Compare::ValueEquals(std::string key, std::string value) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kValue;
  c.value = std::move(value);
  return c;
}

Compare Compare::ModRevisionEquals(std::string key, int64_t mod_revision) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kModRevision;
  c.number = mod_revision;
  return c;
}

Compare Compare::VersionEquals(std::string key, int64_t version) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kVersion;
  c.number = version;
  return c;
}

Compare Compare::Absent(std::string key) {
  Compare c;
  c.key = std::move(key);
  c.target = Target::kCreateRevision;
  c.number = 0;
  return c;
}

TxnOp TxnOp::Put(std::string key, std::string value, LeaseId lease) {
  TxnOp op;
  op.type = Type::kPut;
  op.key = std::move(key);
  op.value = std::move(value);
  op.lease = lease;
  return op;
}

TxnOp TxnOp::Delete(std::string key) {
  TxnOp op;
  op.type = Type::kDelete;
  op.key = std::move(key);
  return op;
}

TxnOp TxnOp::Get(std::string key) {
  TxnOp op;
  op.type = Type::kGet;
  op.key = std::move(key);
  return op;
}

TxnOp TxnOp::GetPrefix(std::string prefix) {
  TxnOp op = Get(std::move(prefix));
  op.prefix = true;
  return op;
}

Result<bool> KvStore::CreateIfAbsent(const std::string& key, const std::string& value,
                                     Deadline deadline, LeaseId lease) {
  GEMINI_ASSIGN_OR_RETURN(
      TxnResult r, Txn({Compare::Absent(key)}, {TxnOp::Put(key, value, lease)}, {}, deadline));
  return r.succeeded;
}

Result<bool> KvStore::CompareAndSwapValue(const std::string& key, const std::string& expected,
                                          const std::string& value, Deadline deadline,
                                          LeaseId lease) {
  GEMINI_ASSIGN_OR_RETURN(TxnResult r, Txn({Compare::ValueEquals(key, expected)},
                                           {TxnOp::Put(key, value, lease)}, {}, deadline));
  return r.succeeded;
}

Result<bool> KvStore::CompareAndSwapRevision(const std::string& key, int64_t expected_mod_revision,
                                             const std::string& value, Deadline deadline,
                                             LeaseId lease) {
  GEMINI_ASSIGN_OR_RETURN(TxnResult r, Txn({Compare::ModRevisionEquals(key, expected_mod_revision)},
                                           {TxnOp::Put(key, value, lease)}, {}, deadline));
  return r.succeeded;
}

std::string PrefixEnd(const std::string& prefix) {
  std::string end = prefix;
  while (!end.empty()) {
    unsigned char last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace gemini
