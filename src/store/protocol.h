// The trainer <-> agent control protocol (Unix socket; data goes through
// shared memory, never through the socket).
//
// Requests and replies are frames (common/unix_socket.h). Every reply is
// kReply with payload [u32 code][string message][body]; a non-OK code means
// the body is empty. Begin and Open replies carry the slot's fd.
//
//   kBegin   [string manifest][u32 wait_ms]           -> [u32 slot][string seg][u64 size] + fd
//   kCommit  [string job][u32 rank][i64 iter][u32 n][n x u32 crc] -> (empty)
//   kOpen    [string job][u32 rank][i64 iter (-1: newest)]
//            -> [string manifest][u32 n][n x u32 crc][u32 slot][string seg][u64 size] + fd
//   kQuery   [string job]                             -> [i64 complete iteration]
//   kStatus  (empty)                                  -> [string json]
//   kDrop    [string job]                             -> (empty)
//   kFetch   [string job][u32 rank][i64 iter][i64 from host (-1: any holder)]
//            -> [i64 iteration]: the agent fetched the shard from a peer holder
//               into its own memory (multi-machine agents only)
//   kEvent   [string job][u32 rank][i64 iter][u32 kind][u64 op + 1][u64 t: double bits]
//            -> no reply: a timeline report (agent/interleave/interleaver.h), sent as it happens
//   kWaitDue [string job][u32 rank][i64 iter][u32 before_step][u32 timeout_ms]
//            -> (empty) once the rank's checkpoints due by then are replicated
//   kSchedule [string job]                            -> [string json]
//   kCadence [string job][u32 rank][u32 every_k][string reason]
//            -> (empty); how often the rank checkpoints and why (shown by status)
//
// Decoders bound every count and length by the frame they came in.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/wire.h"

namespace gemini {

enum MsgType : uint32_t {
  kBegin = 1,
  kCommit = 2,
  kOpen = 3,
  kQuery = 4,
  kStatus = 5,
  kDrop = 6,
  kFetch = 7,
  kEvent = 8,
  kWaitDue = 9,
  kSchedule = 10,
  kCadence = 11,
  kReply = 100,
};

std::string EncodeReply(const Status& status, const std::string& body = "");
// Splits a reply into its status and body.
Status DecodeReply(const std::string& payload, std::string* body);

void PutCrcs(Writer& w, const std::vector<uint32_t>& crcs);
bool GetCrcs(Reader& r, std::vector<uint32_t>* crcs);

}  // namespace gemini
