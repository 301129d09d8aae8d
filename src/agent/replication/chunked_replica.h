// Chunked replicas: a shard sent to a holder in chunks of at most R/p bytes,
// with at most p chunks unacknowledged (docs/design.md, interleaving, "Execute").
//
//   kPeerReplicateChunked [string shard header][u64 max_chunk][u32 window]
//   kPeerChunk            [u64 offset][bytes]       (repeated, in order)
//                     <-  kPeerChunkAck [u64 offset][u64 length]  (per chunk)
//                     <-  kPeerReplicateAck [u32 code][string message] (at the end)
//
// The holder receives each chunk straight into the replica slot (no bounce
// buffer: memory beyond the slot stays constant however many peers send):
// one thread receives while another checks the CRC32Cs in place, 512 KiB
// behind, while those bytes are still in cache (checking a whole chunk after
// it arrived read it back from memory: 25% longer transfers), and
// acknowledges each chunk once all of it is checked; at most `window` (p)
// chunks are ahead of the checker. So the sender never has more than
// R = p * max_chunk bytes in flight, unacknowledged. Chunks must arrive in order, each continuing
// where the last ended; once every byte is there, every CRC32C is checked and only then is the
// replica committed. Any broken rule (an out-of-order, empty or oversized chunk, an unknown frame)
// aborts the slot and fails the connection; nothing committed changes.
//
// Streamed (kPeerReplicateStreamed): for a piece made while it is sent (a
// parity fragment, encoded stripe by stripe as its chunks go), the header
// carries no CRC32Cs; the holder computes them as chunks arrive and, after
// the last chunk, compares them with the sender's (kPeerChunkCrcs [crcs]),
// computed over the bytes as they were made. Nothing is committed unless
// every one matches. Acknowledgements then mean "received and checksummed".
//
// The sender (ChunkedSender) decides when each chunk goes: the interleaving
// executor sends chunks as idle spans open; naive mode sends them back to
// back. Each burst, from a chunk sent into an empty window until every chunk
// is acknowledged again, is a (bytes, seconds) sample of the link for the
// partition's f(s) = alpha + s/B: a span's chunks form one burst, and so does
// a chunk followed by Drain().
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "schedule/link_fit.h"
#include "store/store.h"
#include "transport/connection.h"

namespace gemini {

// Limits a holder enforces on what a sender asks for.
constexpr uint64_t kMaxChunkBytes = 256ull << 20;
constexpr uint32_t kMaxWindow = 64;
constexpr uint64_t kMaxReceiveBuffer = 1ull << 30;  // R

// The holder's limits on a replica's chunking (max_chunk = R/p, window = p).
Status CheckChunking(uint64_t max_chunk, uint32_t window);
// Whether chunk [offset, offset + length) continues a piece of `total` bytes
// of which `sent` went already, within max_chunk.
Status CheckContinues(uint64_t offset, uint64_t length, uint64_t sent, uint64_t total,
                      uint64_t max_chunk);

// Whether a trainer on this machine owns `rank` of store job `job` (then no
// peer may write that shard).
using OwnedRank = std::function<bool(const std::string& job, uint32_t rank)>;

// A piece whose bytes and CRC32Cs are made while it is sent (streamed).
class PieceMaker {
 public:
  virtual ~PieceMaker() = default;
  // Makes bytes [0, end) of the piece and their chunks' CRC32Cs.
  virtual Status MakeUpTo(uint64_t end) = 0;
  // Every chunk's CRC32C; valid once MakeUpTo(data_bytes) returned OK.
  virtual std::vector<uint32_t> Crcs() const = 0;
};

// Holder side: `payload` is the kPeerReplicateChunked frame's (or, when
// `streamed`, the kPeerReplicateStreamed frame's). Receives the
// chunks into a slot reserved for `writer`, verifies and commits. Replicas of
// `job` and its generations (store/generations.h) are taken. The caller
// sends the final kPeerReplicateAck with the returned status.
Status ReceiveChunkedReplica(transport::Connection& conn, Store* store, uint64_t writer,
                             const std::string& job, const std::string& payload,
                             const OwnedRank& is_owned, Deadline deadline, bool streamed = false);

class ChunkedSender {
 public:
  // Sends the header; max_chunk = R/p, window = p. With a `maker`, the
  // replica is streamed: shard.data's bytes are made (maker->MakeUpTo) just
  // before they are sent, and shard.crcs is not used.
  static Result<std::unique_ptr<ChunkedSender>> Start(transport::Connection& conn,
                                                      const ShardPin& shard, uint64_t max_chunk,
                                                      uint32_t window, Deadline deadline,
                                                      PieceMaker* maker = nullptr);
  // Sends bytes [offset, offset + length) of the shard; `offset` must be
  // where the last chunk ended and length at most max_chunk. Blocks while
  // `window` chunks are unacknowledged.
  Status Send(uint64_t offset, uint64_t length, Deadline deadline);
  // Waits until every chunk sent is acknowledged.
  Status Drain(Deadline deadline);
  // After the last chunk: waits for the holder's verdict (verified and committed).
  Status Finish(Deadline deadline);
  uint64_t sent() const { return sent_; }
  uint64_t max_chunk() const { return max_chunk_; }
  // Bursts: bytes sent from an empty window until it was empty again.
  const std::vector<schedule::TransferSample>& samples() const { return samples_; }

 private:
  ChunkedSender(transport::Connection& conn, const ShardPin& shard, uint64_t max_chunk,
                uint32_t window, PieceMaker* maker)
      : conn_(conn), shard_(shard), max_chunk_(max_chunk), window_(window), maker_(maker) {}
  Status ReadAck(Deadline deadline);

  struct InFlight {
    uint64_t offset, length;
  };
  std::chrono::steady_clock::time_point burst_start_;
  uint64_t burst_bytes_ = 0;
  transport::Connection& conn_;
  const ShardPin& shard_;
  const uint64_t max_chunk_;
  const uint32_t window_;
  PieceMaker* const maker_;  // Streamed; null otherwise.
  uint64_t sent_ = 0;
  std::deque<InFlight> in_flight_;
  std::vector<schedule::TransferSample> samples_;
  bool finished_ = false;
};

}  // namespace gemini
