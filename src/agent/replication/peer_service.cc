#include "agent/replication/peer_service.h"

#include <unistd.h>

#include <algorithm>

#include "agent/replication/chunked_replica.h"
#include "agent/replication/peer_protocol.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "common/thread_priority.h"
#include "common/wire.h"
#include "store/chunks.h"

namespace gemini {
namespace {

using std::chrono::milliseconds;
using transport::FrameLimits;
constexpr milliseconds kIdle{5 * 60 * 1000};
constexpr milliseconds kTransfer{10 * 60 * 1000};
constexpr milliseconds kSlotWait{60 * 1000};

Deadline In(milliseconds d) { return std::chrono::steady_clock::now() + d; }

// Receives a kPeerData frame of exactly m.data_bytes into `dst` (capacity
// `cap`), checking each chunk's CRC32C as soon as its bytes are in, while
// they are in cache; a mismatch ends the connection (the rest is on the wire).
Status RecvVerified(transport::Connection& conn, uint8_t* dst, const Manifest& m,
                    const std::vector<uint32_t>& crcs, uint64_t cap, Deadline deadline) {
  const uint64_t bytes = m.data_bytes;
  GEMINI_ASSIGN_OR_RETURN(
      auto hdr, transport::RecvFrameHeader(conn, FrameLimits{{kPeerData, bytes}}, deadline));
  if (hdr.length != bytes || bytes > cap)
    return conn.Fail(InvalidArgument("data frame of " + std::to_string(hdr.length) +
                                     " bytes for a shard of " + std::to_string(bytes)));
  if (m.chunk_size == 0 || crcs.size() != m.NumChunks())
    return conn.Fail(InvalidArgument("shard with no chunk CRCs to check"));
  for (uint64_t c = 0; c < crcs.size(); ++c) {
    const uint64_t off = c * m.chunk_size, n = std::min(m.chunk_size, bytes - off);
    GEMINI_RETURN_IF_ERROR(conn.RecvAll(dst + off, n, deadline));
    if (Crc32c(dst + off, n) != crcs[c])
      return conn.Fail(DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " of rank " +
                                std::to_string(m.rank) + " iteration " +
                                std::to_string(m.iteration) + " from the peer"));
  }
  return Status::Ok();
}

// Receives a shard's bytes into a slot reserved for `writer` and commits it
// once every CRC matches; on any failure the in-progress slot is released.
Status ReceiveShard(transport::Connection& conn, Store* store, uint64_t writer, const Manifest& m,
                    std::vector<uint32_t> crcs, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(SlotGrant grant, store->Begin(writer, m, kSlotWait));
  close(grant.fd);
  Status st = RecvVerified(conn, grant.data, m, crcs, grant.segment_size, deadline);
  if (st.ok()) st = store->Commit(writer, m.job, m.rank, m.iteration, std::move(crcs));
  if (!st.ok()) store->AbortWriter(writer);
  return st;
}

}  // namespace

PeerService::PeerService(Store* store, std::string job, OwnedRank is_owned, int nice,
                         ReportHandler on_report)
    : store_(store),
      job_(std::move(job)),
      is_owned_(std::move(is_owned)),
      nice_(nice),
      on_report_(std::move(on_report)) {}

transport::PeerServerOptions PeerServerOptionsFor(const std::string& job, uint32_t num_hosts) {
  transport::PeerServerOptions o{job};
  o.max_connections = std::max<size_t>(o.max_connections, 2 * size_t{num_hosts} + 16);
  return o;
}

Status SendReplicatedReport(transport::Connection& conn, const ReplicatedReport& report,
                            Deadline deadline) {
  GEMINI_RETURN_IF_ERROR(
      transport::SendFrame(conn, kPeerReplicated, EncodeReplicatedReport(report), deadline));
  GEMINI_ASSIGN_OR_RETURN(
      auto reply, transport::RecvFrame(conn, FrameLimits{{kPeerReplicatedAck, 4096}}, deadline));
  std::string body;
  return DecodeStatusReply(reply.payload, &body);
}

Status PeerService::Serve(transport::Connection& conn) {
  SetThreadNice(nice_);
  for (;;) {
    auto hdr = transport::RecvFrameHeader(conn, PeerRequestLimits(), In(kIdle));
    if (!hdr.ok()) return hdr.status().code() == Code::kUnavailable ? Status::Ok() : hdr.status();
    std::string payload(hdr->length, '\0');
    GEMINI_RETURN_IF_ERROR(
        transport::RecvPayload(conn, *hdr, payload.data(), payload.size(), In(kTransfer)));
    Status st;
    switch (hdr->type) {
      case kPeerReplicateChunked:
      case kPeerReplicateStreamed: {
        st = ReceiveChunkedReplica(conn, store_, next_writer_++, job_, payload, is_owned_,
                                   In(kTransfer), hdr->type == kPeerReplicateStreamed);
        Status sent =
            transport::SendFrame(conn, kPeerReplicateAck, EncodeStatusReply(st), In(kTransfer));
        if (st.ok()) st = sent;
        break;
      }
      case kPeerFetch:
        st = HandleFetch(conn, payload);
        break;
      case kPeerStatus:
        st = transport::SendFrame(conn, kPeerStatusReply,
                                  EncodeStatusReply(Status::Ok(), store_->StatusJson(job_)),
                                  In(kTransfer));
        break;
      case kPeerReplicated: {
        auto report = DecodeReplicatedReport(payload);
        if (!report.ok()) {
          st = report.status();
          break;
        }
        Status answer = on_report_ ? on_report_(*report)
                                   : FailedPrecondition("this agent takes no completion reports");
        st = transport::SendFrame(conn, kPeerReplicatedAck, EncodeStatusReply(answer),
                                  In(kTransfer));
        break;
      }
      default:
        st = InvalidArgument("unexpected request type");
    }
    if (!st.ok()) {
      GEMINI_LOG(WARN) << "[peer] " << conn.peer() << ": " << st.ToString() << "; dropping it";
      return conn.Fail(st);
    }
  }
}

Status PeerService::HandleFetch(transport::Connection& conn, const std::string& payload) {
  Reader r(payload);
  std::string job;
  uint32_t rank = 0;
  int64_t iteration = 0;
  if (!r.GetString(&job, 256) || !r.GetU32(&rank) || !r.GetI64(&iteration) || !r.done())
    return InvalidArgument("malformed fetch request");
  // A peer authenticated with this job's secret reads this job's shards only,
  // even when the agent's store holds other jobs too.
  auto pin = IsGenerationOf(job_, job)
                 ? store_->Pin(job, rank, iteration)
                 : Result<std::unique_ptr<ShardPin>>(
                       NotFound("this peer service serves job '" + job_ + "', not '" + job + "'"));
  if (!pin.ok())  // A clean "not here": the connection stays usable.
    return transport::SendFrame(conn, kPeerFetchReply, EncodeStatusReply(pin.status()),
                                In(kTransfer));
  const ShardPin& p = **pin;
  GEMINI_RETURN_IF_ERROR(transport::SendFrame(
      conn, kPeerFetchReply, EncodeStatusReply(Status::Ok(), EncodeShardHeader(p.manifest, p.crcs)),
      In(kTransfer)));
  return transport::SendFrame(conn, kPeerData, p.data, p.manifest.data_bytes, In(kTransfer));
}

namespace {

// Sends a fetch request and reads the reply's shard header (the data follows).
Status RequestShard(transport::Connection& conn, const std::string& job, uint32_t rank,
                    int64_t iteration, Deadline deadline, Manifest* m,
                    std::vector<uint32_t>* crcs) {
  Writer w;
  w.PutString(job);
  w.PutU32(rank);
  w.PutI64(iteration);
  GEMINI_RETURN_IF_ERROR(transport::SendFrame(conn, kPeerFetch, w.Take(), deadline));
  GEMINI_ASSIGN_OR_RETURN(
      auto reply,
      transport::RecvFrame(conn, FrameLimits{{kPeerFetchReply, kMaxControlFrame}}, deadline));
  std::string body;
  GEMINI_RETURN_IF_ERROR(DecodeStatusReply(reply.payload, &body));
  GEMINI_RETURN_IF_ERROR(DecodeShardHeader(body, m, crcs));
  if (m->job != job || m->rank != rank || (iteration >= 0 && m->iteration != iteration))
    return conn.Fail(InvalidArgument("peer answered a fetch with another shard"));
  return Status::Ok();
}

}  // namespace

Result<int64_t> FetchInto(transport::Connection& conn, Store* store, uint64_t writer,
                          const std::string& job, uint32_t rank, int64_t iteration,
                          milliseconds timeout) {
  Deadline deadline = In(timeout);
  Manifest m;
  std::vector<uint32_t> crcs;
  GEMINI_RETURN_IF_ERROR(RequestShard(conn, job, rank, iteration, deadline, &m, &crcs));
  if (m.is_fragment())  // Its data frame is still on the wire: this connection is done.
    return conn.Fail(FailedPrecondition("the peer holds only fragment " +
                                        std::to_string(m.fragment.index) + " of rank " +
                                        std::to_string(rank) + ", not the whole shard"));
  GEMINI_RETURN_IF_ERROR(ReceiveShard(conn, store, writer, m, std::move(crcs), deadline));
  return m.iteration;
}

Result<FetchedPiece> FetchPiece(transport::Connection& conn, const std::string& job, uint32_t rank,
                                int64_t iteration, uint64_t max_bytes, milliseconds timeout) {
  Deadline deadline = In(timeout);
  FetchedPiece p;
  GEMINI_RETURN_IF_ERROR(RequestShard(conn, job, rank, iteration, deadline, &p.manifest, &p.crcs));
  if (p.manifest.data_bytes > max_bytes)
    return conn.Fail(ResourceExhausted("the peer offers " + std::to_string(p.manifest.data_bytes) +
                                       " bytes of rank " + std::to_string(rank) + "; at most " +
                                       std::to_string(max_bytes) + " fit"));
  p.data.resize(p.manifest.data_bytes);
  GEMINI_RETURN_IF_ERROR(
      RecvVerified(conn, p.data.data(), p.manifest, p.crcs, p.data.size(), deadline));
  return p;
}

}  // namespace gemini
