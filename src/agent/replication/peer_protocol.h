// The agent <-> agent protocol, spoken over an authenticated transport
// connection (transport/frame.h framing):
//
//   kPeerReplicateChunked [string shard header][u64 max_chunk][u32 window]
//                then kPeerChunk frames <- kPeerChunkAck each
//                -> kPeerReplicateAck [u32 code][string message]   (chunked_replica.h)
//   kPeerReplicateStreamed  the same, for a piece made while it is sent: the
//                header's CRC list is empty and kPeerChunkCrcs [crcs] follows
//                the last kPeerChunk
//   kPeerFetch       [string job][u32 rank][i64 iteration (-1 newest)]
//                -> kPeerFetchReply [u32 code][string message][string manifest][crcs]
//                   then, if OK, kPeerData (data_bytes raw bytes)
//   kPeerStatus  (empty) -> kPeerStatusReply [string json]
//   kPeerReplicated [u32 host][i64 epoch][i64 iteration]   (to the root; completion.h)
//                -> kPeerReplicatedAck [u32 code][string message]
//
// Control frames are bounded by kMaxControlFrame; a kPeerData frame must be
// exactly the announced manifest's data_bytes and is received straight into
// a shared-memory slot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/manifest.h"
#include "transport/frame.h"

namespace gemini {

enum PeerMsg : uint32_t {
  // 1 was a whole-shard replica (before chunked replicas); never reused.
  kPeerData = 2,
  kPeerReplicateAck = 3,
  kPeerFetch = 4,
  kPeerFetchReply = 5,
  kPeerStatus = 6,
  kPeerStatusReply = 7,
  kPeerReplicateChunked = 8,  // chunked_replica.h
  kPeerChunk = 9,
  kPeerChunkAck = 10,
  kPeerReplicated = 11,  // completion.h
  kPeerReplicatedAck = 12,
  kPeerReplicateStreamed = 13,  // chunked_replica.h
  kPeerChunkCrcs = 14,
};

constexpr uint64_t kMaxControlFrame = 64ull << 20;

// What a server accepts as the first frame of a request.
transport::FrameLimits PeerRequestLimits();

std::string EncodeShardHeader(const Manifest& m, const std::vector<uint32_t>& crcs);
// Decodes and validates (Manifest::Decode) a shard header; the CRC count must
// match the manifest's chunks, or be 0 when `crcs_follow` (a streamed replica).
Status DecodeShardHeader(const std::string& payload, Manifest* m, std::vector<uint32_t>* crcs,
                         bool crcs_follow = false);

// A host's completion report: every shard of its ranks up to `iteration`
// (committed in `epoch`) is on every holder.
struct ReplicatedReport {
  uint32_t host = 0;
  int64_t epoch = 0;
  int64_t iteration = -1;
};
std::string EncodeReplicatedReport(const ReplicatedReport& r);
Result<ReplicatedReport> DecodeReplicatedReport(const std::string& payload);

std::string EncodeStatusReply(const Status& st, const std::string& body = "");
Status DecodeStatusReply(const std::string& payload, std::string* body);

}  // namespace gemini
