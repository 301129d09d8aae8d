#include "agent/replication/peer_protocol.h"

#include "common/wire.h"
#include "store/protocol.h"

namespace gemini {

transport::FrameLimits PeerRequestLimits() {
  return transport::FrameLimits{{kPeerReplicateChunked, kMaxControlFrame},
                                {kPeerReplicateStreamed, kMaxControlFrame},
                                {kPeerFetch, 4096},
                                {kPeerStatus, 0},
                                {kPeerReplicated, 20}};
}

std::string EncodeShardHeader(const Manifest& m, const std::vector<uint32_t>& crcs) {
  Writer w;
  w.PutString(m.Encode());
  PutCrcs(w, crcs);
  return w.Take();
}

Status DecodeShardHeader(const std::string& payload, Manifest* m, std::vector<uint32_t>* crcs,
                         bool crcs_follow) {
  Reader r(payload);
  std::string manifest;
  if (!r.GetString(&manifest, kMaxControlFrame) || !GetCrcs(r, crcs) || !r.done())
    return InvalidArgument("malformed shard header");
  GEMINI_ASSIGN_OR_RETURN(*m, Manifest::Decode(manifest));
  if (crcs_follow && !crcs->empty())
    return InvalidArgument("streamed shard header with " + std::to_string(crcs->size()) +
                           " CRCs (they follow the data)");
  if (!crcs_follow && crcs->size() != m->NumChunks())
    return InvalidArgument("shard header has " + std::to_string(crcs->size()) + " CRCs for " +
                           std::to_string(m->NumChunks()) + " chunks");
  return Status::Ok();
}

std::string EncodeReplicatedReport(const ReplicatedReport& r) {
  Writer w;
  w.PutU32(r.host);
  w.PutI64(r.epoch);
  w.PutI64(r.iteration);
  return w.Take();
}

Result<ReplicatedReport> DecodeReplicatedReport(const std::string& payload) {
  Reader r(payload);
  ReplicatedReport rep;
  if (!r.GetU32(&rep.host) || !r.GetI64(&rep.epoch) || !r.GetI64(&rep.iteration) || !r.done())
    return InvalidArgument("malformed completion report");
  if (rep.epoch < 0 || rep.iteration < 0)
    return InvalidArgument("completion report with a negative epoch or iteration");
  return rep;
}

std::string EncodeStatusReply(const Status& st, const std::string& body) {
  return EncodeReply(st, body);
}

Status DecodeStatusReply(const std::string& payload, std::string* body) {
  return DecodeReply(payload, body);
}

}  // namespace gemini
