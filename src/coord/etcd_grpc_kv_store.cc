#include "coord/etcd_grpc_kv_store.h"

#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/log.h"
#include "coord/etcd_api/rpc.grpc.pb.h"
#include "coord/etcd_codec.h"
#include "coord/watch_queue.h"

namespace gemini {
namespace pb = etcdserverpb;

namespace {

std::chrono::system_clock::time_point ToSystem(Deadline d) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             d - std::chrono::steady_clock::now());
}

Status FromGrpc(const grpc::Status& st, const std::string& target, bool tls) {
  if (st.ok()) return Status::Ok();
  std::string what = "etcd " + target + ": " + st.error_message();
  // A handshake that failed (a server our CA did not sign, a refused client
  // certificate) is a setup error, not an outage: say which flags set it up.
  const std::string& m = st.error_message();
  if (tls && st.error_code() == grpc::StatusCode::UNAVAILABLE &&
      (m.find("andshake") != std::string::npos || m.find("SSL") != std::string::npos ||
       m.find("ssl") != std::string::npos || m.find("ertificate") != std::string::npos))
    return FailedPrecondition(what + " (check --etcd-cacert, --etcd-cert, --etcd-key)");
  // etcd with auth enabled takes the user from the client certificate's CN:
  // that user needs a role granting readwrite on the job's prefix.
  if (st.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
      st.error_code() == grpc::StatusCode::UNAUTHENTICATED)
    return FailedPrecondition(what +
                              " (etcd auth: the user named by the client certificate's CN needs a "
                              "role with readwrite on /gemini/<job>/; see docs/deploy.md)");
  return Status(etcd::CodeFromGrpc(st.error_code()), what);
}

Result<std::string> ReadPem(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(std::string("etcd TLS ") + what + " " + path + ": cannot be read");
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

KeyValue FromPb(const pb::KeyValue& kv) {
  return {kv.key(), kv.value(), kv.create_revision(), kv.mod_revision(), kv.version(), kv.lease()};
}

RangeResult FromPb(const pb::RangeResponse& r) {
  RangeResult out;
  out.revision = r.header().revision();
  for (const auto& kv : r.kvs()) out.kvs.push_back(FromPb(kv));
  return out;
}

void SetBounds(const std::string& key, bool prefix, std::string* first, std::string* end) {
  auto [k, e] = etcd::RangeBounds(key, prefix);
  *first = std::move(k);
  *end = std::move(e);
}

pb::Compare ToPb(const Compare& c) {
  pb::Compare out;
  out.set_key(c.key);
  switch (c.op) {
    case Compare::Op::kEqual:
      out.set_result(pb::Compare::EQUAL);
      break;
    case Compare::Op::kNotEqual:
      out.set_result(pb::Compare::NOT_EQUAL);
      break;
    case Compare::Op::kGreater:
      out.set_result(pb::Compare::GREATER);
      break;
    case Compare::Op::kLess:
      out.set_result(pb::Compare::LESS);
      break;
  }
  switch (c.target) {
    case Compare::Target::kValue:
      out.set_target(pb::Compare::VALUE);
      out.set_value(c.value);
      break;
    case Compare::Target::kVersion:
      out.set_target(pb::Compare::VERSION);
      out.set_version(c.number);
      break;
    case Compare::Target::kCreateRevision:
      out.set_target(pb::Compare::CREATE);
      out.set_create_revision(c.number);
      break;
    case Compare::Target::kModRevision:
      out.set_target(pb::Compare::MOD);
      out.set_mod_revision(c.number);
      break;
  }
  return out;
}

pb::RequestOp ToPb(const TxnOp& op) {
  pb::RequestOp out;
  switch (op.type) {
    case TxnOp::Type::kPut: {
      pb::PutRequest* put = out.mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case TxnOp::Type::kDelete: {
      pb::DeleteRangeRequest* del = out.mutable_request_delete_range();
      SetBounds(op.key, op.prefix, del->mutable_key(), del->mutable_range_end());
      break;
    }
    case TxnOp::Type::kGet: {
      pb::RangeRequest* range = out.mutable_request_range();
      SetBounds(op.key, op.prefix, range->mutable_key(), range->mutable_range_end());
      break;
    }
  }
  return out;
}

// One watch stream, read by a thread this object owns.
class GrpcWatch : public Watch {
 public:
  GrpcWatch(std::shared_ptr<grpc::Channel> channel, std::string target)
      : stub_(pb::Watch::NewStub(channel)),
        channel_(std::move(channel)),
        target_(std::move(target)) {}

  ~GrpcWatch() override {
    Cancel();
    if (thread_.joinable()) thread_.join();
  }

  // Starts the stream and waits, until `deadline`, for etcd to confirm the watch.
  Status Start(pb::WatchCreateRequest create, Deadline deadline) {
    thread_ = std::thread([this, create = std::move(create)] { Run(create); });
    Status st = q_.WaitCreated(deadline, "etcd " + target_ + ": watch not confirmed in time");
    if (st.code() == Code::kDeadlineExceeded) ctx_.TryCancel();
    return st;
  }

  Result<std::vector<WatchEvent>> Poll(Deadline deadline) override { return q_.Poll(deadline); }

  void Cancel() override {
    q_.Fail(Aborted("watch cancelled"));
    ctx_.TryCancel();
  }

 private:
  void Run(const pb::WatchCreateRequest& create) {
    // A member cut off from the cluster's leader ends the watch instead of
    // going silent (etcd's "require leader" for watches).
    ctx_.AddMetadata("hasleader", "true");
    auto stream = stub_->Watch(&ctx_);
    pb::WatchRequest req;
    *req.mutable_create_request() = create;
    pb::WatchResponse resp;
    bool broke = false;  // etcd cancelled the watch; the stream is still open
    if (stream->Write(req)) {
      while (stream->Read(&resp)) {
        std::vector<WatchEvent> events;
        for (const auto& e : resp.events()) {
          WatchEvent ev;
          ev.type =
              e.type() == pb::Event::DELETE ? WatchEvent::Type::kDelete : WatchEvent::Type::kPut;
          ev.kv = FromPb(e.kv());
          events.push_back(std::move(ev));
        }
        q_.Push(std::move(events), resp.created());
        if (resp.canceled()) {
          q_.Fail(Aborted("etcd " + target_ + ": watch cancelled by etcd" +
                          (resp.compact_revision() > 0
                               ? " (history compacted at revision " +
                                     std::to_string(resp.compact_revision()) + ")"
                               : ": " + resp.cancel_reason())));
          broke = true;
          break;
        }
      }
    }
    if (broke) ctx_.TryCancel();
    grpc::Status st = stream->Finish();
    q_.Fail(st.ok() ? Unavailable("etcd " + target_ + ": watch stream ended")
                    : Status(st.error_code() == grpc::StatusCode::CANCELLED ? Code::kAborted
                                                                            : Code::kUnavailable,
                             "etcd " + target_ + ": watch stream broke: " + st.error_message()));
  }

  std::unique_ptr<pb::Watch::Stub> stub_;
  std::shared_ptr<grpc::Channel> channel_;
  const std::string target_;
  grpc::ClientContext ctx_;
  std::thread thread_;
  WatchQueue q_;
};

}  // namespace

struct EtcdGrpcKvStore::Member {
  std::string target;  // host:port
  bool tls = false;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::KV::Stub> kv;
  std::unique_ptr<pb::Lease::Stub> lease;
};

EtcdGrpcKvStore::EtcdGrpcKvStore(EtcdOptions options) {
  if (options.endpoints.empty()) {
    init_ = InvalidArgument("etcd: no endpoints configured");
    return;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(static_cast<int>(
      std::min<size_t>(options.max_response_bytes, std::numeric_limits<int>::max())));
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // one connection per store
  // Reconnect soon after a failure. (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS is
  // left alone: it is also how long one connection attempt may take, TLS
  // handshake included, and a loaded machine needs more than 100 ms.)
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  // etcd refuses pings more often than every 5 s, and without a call open.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 3000);
  std::shared_ptr<grpc::ChannelCredentials> creds;
  for (const std::string& url : options.endpoints) {
    bool tls = url.rfind("https://", 0) == 0;
    size_t scheme = url.find("://");
    std::string target = scheme == std::string::npos ? url : url.substr(scheme + 3);
    while (!target.empty() && target.back() == '/') target.pop_back();
    if (tls && creds == nullptr) {
      grpc::SslCredentialsOptions ssl;
      const TlsFiles& f = options.tls;
      auto ca = f.ca_file.empty() ? Result<std::string>(std::string()) : ReadPem(f.ca_file, "CA");
      auto cert = f.cert_file.empty() ? Result<std::string>(std::string())
                                      : ReadPem(f.cert_file, "certificate");
      auto key =
          f.key_file.empty() ? Result<std::string>(std::string()) : ReadPem(f.key_file, "key");
      for (const auto* r : {&ca, &cert, &key})
        if (!r->ok()) {
          init_ = r->status();
          return;
        }
      ssl.pem_root_certs = *ca;
      ssl.pem_cert_chain = *cert;
      ssl.pem_private_key = *key;
      creds = grpc::SslCredentials(ssl);
    }
    auto m = std::make_unique<Member>();
    m->target = target;
    m->tls = tls;
    m->channel =
        grpc::CreateCustomChannel(target, tls ? creds : grpc::InsecureChannelCredentials(), args);
    m->kv = pb::KV::NewStub(m->channel);
    m->lease = pb::Lease::NewStub(m->channel);
    members_.push_back(std::move(m));
  }
}

EtcdGrpcKvStore::~EtcdGrpcKvStore() = default;

template <typename Rpc>
Status EtcdGrpcKvStore::Call(Deadline deadline, const Rpc& rpc) {
  if (!init_.ok()) return init_;
  const size_t n = members_.size();
  const size_t first = preferred_.load() % n;
  Status last;
  for (size_t i = 0; i < n; ++i) {
    const size_t idx = (first + i) % n;
    Member& m = *members_[idx];
    grpc::ClientContext ctx;
    ctx.set_deadline(ToSystem(deadline));
    requests_.fetch_add(1, std::memory_order_relaxed);
    grpc::Status st = rpc(m, ctx);
    if (st.ok()) {
      preferred_.store(idx);
      return Status::Ok();
    }
    last = FromGrpc(st, m.target, m.tls);
    if (last.code() != Code::kUnavailable) return last;
  }
  return last;
}

Result<int64_t> EtcdGrpcKvStore::Put(const std::string& key, const std::string& value,
                                     Deadline deadline, LeaseId lease) {
  pb::PutRequest req;
  req.set_key(key);
  req.set_value(value);
  req.set_lease(lease);
  pb::PutResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(
      deadline, [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Put(&ctx, req, &resp); }));
  return resp.header().revision();
}

Result<RangeResult> EtcdGrpcKvStore::Range(const std::string& key, bool prefix, Deadline deadline) {
  pb::RangeRequest req;
  SetBounds(key, prefix, req.mutable_key(), req.mutable_range_end());
  pb::RangeResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(deadline, [&](Member& m, grpc::ClientContext& ctx) {
    return m.kv->Range(&ctx, req, &resp);
  }));
  return FromPb(resp);
}

Result<KeyValue> EtcdGrpcKvStore::Get(const std::string& key, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(RangeResult r, Range(key, false, deadline));
  if (r.kvs.empty()) return NotFound("key not found: " + key);
  return std::move(r.kvs.front());
}

Result<RangeResult> EtcdGrpcKvStore::GetPrefix(const std::string& prefix, Deadline deadline) {
  return Range(prefix, true, deadline);
}

Result<int64_t> EtcdGrpcKvStore::DeleteRange(const std::string& key, bool prefix,
                                             Deadline deadline) {
  pb::DeleteRangeRequest req;
  SetBounds(key, prefix, req.mutable_key(), req.mutable_range_end());
  pb::DeleteRangeResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(deadline, [&](Member& m, grpc::ClientContext& ctx) {
    return m.kv->DeleteRange(&ctx, req, &resp);
  }));
  return resp.deleted();
}

Result<int64_t> EtcdGrpcKvStore::Delete(const std::string& key, Deadline deadline) {
  return DeleteRange(key, false, deadline);
}

Result<int64_t> EtcdGrpcKvStore::DeletePrefix(const std::string& prefix, Deadline deadline) {
  return DeleteRange(prefix, true, deadline);
}

Result<TxnResult> EtcdGrpcKvStore::Txn(const std::vector<Compare>& compares,
                                       const std::vector<TxnOp>& success,
                                       const std::vector<TxnOp>& failure, Deadline deadline) {
  pb::TxnRequest req;
  for (const auto& c : compares) *req.add_compare() = ToPb(c);
  for (const auto& op : success) *req.add_success() = ToPb(op);
  for (const auto& op : failure) *req.add_failure() = ToPb(op);
  pb::TxnResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(
      deadline, [&](Member& m, grpc::ClientContext& ctx) { return m.kv->Txn(&ctx, req, &resp); }));
  TxnResult r;
  r.succeeded = resp.succeeded();
  r.revision = resp.header().revision();
  for (const auto& one : resp.responses()) {
    if (!one.has_response_range()) continue;
    RangeResult got = FromPb(one.response_range());
    if (got.revision == 0) got.revision = r.revision;
    r.gets.push_back(std::move(got));
  }
  return r;
}

Result<LeaseInfo> EtcdGrpcKvStore::LeaseGrant(int64_t ttl_seconds, Deadline deadline) {
  if (ttl_seconds <= 0) return InvalidArgument("lease TTL must be positive");
  pb::LeaseGrantRequest req;
  req.set_ttl(ttl_seconds);
  pb::LeaseGrantResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(deadline, [&](Member& m, grpc::ClientContext& ctx) {
    return m.lease->LeaseGrant(&ctx, req, &resp);
  }));
  if (!resp.error().empty()) return Internal("etcd: lease grant: " + resp.error());
  if (resp.id() == kNoLease) return Internal("etcd: lease grant returned no ID");
  return LeaseInfo{resp.id(), resp.ttl()};
}

Result<int64_t> EtcdGrpcKvStore::LeaseKeepAlive(LeaseId lease, Deadline deadline) {
  pb::LeaseKeepAliveRequest req;
  req.set_id(lease);
  pb::LeaseKeepAliveResponse resp;
  GEMINI_RETURN_IF_ERROR(Call(deadline, [&](Member& m, grpc::ClientContext& ctx) {
    auto stream = m.lease->LeaseKeepAlive(&ctx);
    if (!stream->Write(req) || !stream->Read(&resp)) {
      grpc::Status st = stream->Finish();
      return st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "keepalive stream closed") : st;
    }
    stream->WritesDone();
    return stream->Finish();
  }));
  if (resp.ttl() <= 0) return NotFound("lease " + std::to_string(lease) + " expired or revoked");
  return resp.ttl();
}

Status EtcdGrpcKvStore::LeaseRevoke(LeaseId lease, Deadline deadline) {
  pb::LeaseRevokeRequest req;
  req.set_id(lease);
  pb::LeaseRevokeResponse resp;
  return Call(deadline, [&](Member& m, grpc::ClientContext& ctx) {
    return m.lease->LeaseRevoke(&ctx, req, &resp);
  });
}

Result<std::unique_ptr<Watch>> EtcdGrpcKvStore::WatchKey(const std::string& key, bool prefix,
                                                         int64_t start_revision,
                                                         Deadline deadline) {
  if (!init_.ok()) return init_;
  pb::WatchCreateRequest create;
  SetBounds(key, prefix, create.mutable_key(), create.mutable_range_end());
  create.set_start_revision(start_revision);
  const size_t n = members_.size();
  const size_t first = preferred_.load() % n;
  Status last;
  for (size_t i = 0; i < n; ++i) {
    const Member& m = *members_[(first + i) % n];
    requests_.fetch_add(1, std::memory_order_relaxed);
    auto watch = std::make_unique<GrpcWatch>(m.channel, m.target);
    last = watch->Start(create, deadline);
    if (last.ok()) return std::unique_ptr<Watch>(std::move(watch));
    if (last.code() != Code::kUnavailable) break;
  }
  GEMINI_LOG(DEBUG) << "[etcd] watch on " << key << " failed: " << last.ToString();
  return last;
}

std::shared_ptr<KvStore> NewEtcdKvStore(const EtcdOptions& options) {
  const char* api = std::getenv("GEMINI_ETCD_API");
  if (api != nullptr && std::string(api) == "gateway")
    return std::make_shared<EtcdKvStore>(options);
  return std::make_shared<EtcdGrpcKvStore>(options);
}

}  // namespace gemini
