// Channels: how the replicator moves a piece (a shard, or one fragment of
// it) to one holder, below the replicator and above the wire, in the spirit
// of TensorPipe's transport/channel split. The replicator decides what goes
// where and when (placement, interleaved spans, retries, completion); a
// channel only carries bytes and returns the holder's verdict.
//
//   TcpChannel   the chunked replica protocol (chunked_replica.h) over an
//                authenticated TCP connection (transport/)
//   FakeChannel  tests: straight into the holder's Store, same rules
//   (next: an NCCL channel, GPU to GPU, for the GPU data path; RDMA)
//
// A piece goes as a PieceStream: Send chunks in order (each at most
// max_chunk bytes, at most `window` unacknowledged), Drain when a span ends,
// Finish for the verdict (every CRC32C checked, the piece committed on the
// holder). A streamed piece (a PieceMaker) is made chunk by chunk just
// before its bytes go. channel_test.cc runs one suite over every channel.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "agent/cluster/job_coordinator.h"
#include "agent/replication/chunked_replica.h"
#include "schedule/link_fit.h"
#include "store/store.h"

namespace gemini {

class PieceStream {
 public:
  virtual ~PieceStream() = default;
  // Bytes [offset, offset + length) of the piece; `offset` continues the last chunk.
  virtual Status Send(uint64_t offset, uint64_t length, Deadline deadline) = 0;
  // Waits until every chunk sent is acknowledged.
  virtual Status Drain(Deadline deadline) = 0;
  // After the last chunk: the holder's verdict (verified and committed).
  virtual Status Finish(Deadline deadline) = 0;
  // Bursts (bytes sent from an empty window until it was empty again): the
  // link samples of the interleaver's f(s) = alpha + s/B.
  virtual const std::vector<schedule::TransferSample>& samples() const = 0;
};

class Channel {
 public:
  virtual ~Channel() = default;
  // Starts `piece` toward the holder; with a `maker`, streamed. `piece` and
  // `maker` outlive the stream; one stream at a time per channel.
  virtual Result<std::unique_ptr<PieceStream>> Open(const ShardPin& piece, PieceMaker* maker,
                                                    uint64_t max_chunk, uint32_t window,
                                                    Deadline deadline) = 0;
  // OK while usable; after an error the replicator dials a new channel.
  virtual Status status() const = 0;
};

// Makes a channel to a holder (the agent's: TCP and the job's handshake).
using ChannelDialer = std::function<Result<std::unique_ptr<Channel>>(const HostInfo&)>;

// Sends the whole piece back to back and returns the holder's verdict.
Status SendWhole(Channel& channel, const ShardPin& piece, uint64_t max_chunk, uint32_t window,
                 Deadline deadline);

}  // namespace gemini
