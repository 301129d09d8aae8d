#include "agent/replication/chunked_replica.h"

#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "agent/replication/peer_protocol.h"
#include "common/crc32c.h"
#include "common/wire.h"
#include "store/protocol.h"
#include "transport/frame.h"

namespace gemini {
namespace {

using transport::FrameLimits;
constexpr std::chrono::milliseconds kSlotWait{60 * 1000};
// A received chunk is handed to the checker in pieces of this many bytes.
constexpr uint64_t kCheckPiece = 512 << 10;

std::string EncodeChunkAck(uint64_t offset, uint64_t length) {
  Writer w;
  w.PutU64(offset);
  w.PutU64(length);
  return w.Take();
}

// The checker: computes the CRC32C of every received manifest chunk in the
// slot, in order, checks it against the header's (none in a streamed
// replica: they come after the data) and acknowledges each. The only sender
// on the connection while the reader receives.
class Checker {
 public:
  Checker(transport::Connection& conn, uint8_t* slot, const Manifest& m,
          const std::vector<uint32_t>& crcs, size_t window, Deadline deadline)
      : conn_(conn),
        slot_(slot),
        data_bytes_(m.data_bytes),
        chunk_size_(m.chunk_size),
        crcs_(crcs),
        busy_(window, false),
        deadline_(deadline) {
    thread_ = std::thread([this] { Run(); });
  }
  ~Checker() { Close(); }

  // Waits until window place b is free (its chunk checked); false if a check failed.
  bool WaitFree(size_t b) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !busy_[b] || !status_.ok(); });
    return status_.ok();
  }
  // Bytes [offset, offset + length) of the chunk [chunk, chunk + chunk_length)
  // in window place b arrived; the chunk is acknowledged after its last piece.
  void Push(size_t b, uint64_t offset, uint64_t length, uint64_t chunk, uint64_t chunk_length) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      busy_[b] = true;
      queue_.push_back({b, offset, length, chunk, chunk_length});
    }
    cv_.notify_all();
  }
  // What was computed, chunk by chunk; read after Close().
  const std::vector<uint32_t>& computed() const { return computed_; }
  // Checks what is queued, stops the thread; the check status.
  Status Close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
    return status_;
  }

 private:
  struct Item {
    size_t b;
    uint64_t offset, length;       // The piece received.
    uint64_t chunk, chunk_length;  // The chunk it belongs to (as sent, as acknowledged).
    bool last() const { return offset + length == chunk + chunk_length; }
  };
  void Run() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      Item it = queue_.front();
      queue_.pop_front();
      lock.unlock();
      Status st = Check(it);
      if (st.ok() && it.last())
        st = transport::SendFrame(conn_, kPeerChunkAck, EncodeChunkAck(it.chunk, it.chunk_length),
                                  deadline_);
      lock.lock();
      if (it.last()) busy_[it.b] = false;
      if (!st.ok() && status_.ok()) status_ = st;
      cv_.notify_all();
    }
  }

  // Chunks arrive in order, so the CRC of the manifest chunk in progress
  // carries over from one received chunk to the next.
  Status Check(const Item& it) {
    for (uint64_t done = 0; done < it.length;) {
      uint64_t pos = it.offset + done;
      uint64_t c = pos / chunk_size_;
      uint64_t end = std::min(data_bytes_, (c + 1) * chunk_size_);
      uint64_t n = std::min(it.length - done, end - pos);
      crc_ = Crc32c(slot_ + pos, n, crc_);
      done += n;
      if (pos + n == end) {
        if (!crcs_.empty() && crc_ != crcs_[c])
          return DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " of a replica");
        computed_.push_back(crc_);
        crc_ = 0;
      }
    }
    return Status::Ok();
  }

  transport::Connection& conn_;
  uint8_t* const slot_;
  const uint64_t data_bytes_, chunk_size_;
  const std::vector<uint32_t>& crcs_;
  uint32_t crc_ = 0;                // Checker thread only.
  std::vector<uint32_t> computed_;  // Checker thread only, until Close().
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<bool> busy_;
  std::deque<Item> queue_;
  bool closing_ = false;
  Status status_;
  const Deadline deadline_;
  std::thread thread_;
};

// Receives every chunk into the slot; `crcs` empty (streamed): fills it
// with what the holder computed.
Status ReceiveChunks(transport::Connection& conn, uint8_t* slot, const Manifest& m,
                     std::vector<uint32_t>* crcs, uint64_t max_chunk, uint32_t window,
                     Deadline deadline) {
  const uint64_t data_bytes = m.data_bytes;
  Checker checker(conn, slot, m, *crcs, window, deadline);
  FrameLimits limits{{kPeerChunk, max_chunk + 8}};
  uint64_t received = 0;
  Status st;
  for (size_t i = 0; received < data_bytes && st.ok(); ++i) {
    size_t b = i % window;
    if (!checker.WaitFree(b)) break;
    auto hdr = transport::RecvFrameHeader(conn, limits, deadline);
    if (!hdr.ok()) {
      st = hdr.status();
      break;
    }
    uint64_t offset = 0;
    st = conn.RecvAll(&offset, sizeof(offset), deadline);
    if (!st.ok()) break;
    uint64_t length = hdr->length - std::min<uint64_t>(hdr->length, 8);
    if (hdr->length <= 8 || offset != received || length > data_bytes - received) {
      st = conn.Fail(InvalidArgument("chunk at " + std::to_string(offset) + " of " +
                                     std::to_string(length) + " bytes; expected one at " +
                                     std::to_string(received) + " within " +
                                     std::to_string(data_bytes) + " bytes"));
      break;
    }
    // In pieces, each checked while it is still in cache, as the next arrives.
    for (uint64_t got = 0; got < length && st.ok();) {
      const uint64_t n = std::min(kCheckPiece, length - got);
      st = conn.RecvAll(slot + offset + got, n, deadline);
      if (st.ok()) checker.Push(b, offset + got, n, offset, length);
      got += n;
    }
    if (!st.ok()) break;
    received += length;
  }
  Status checked = checker.Close();
  if (st.ok() && crcs->empty()) *crcs = checker.computed();
  return st.ok() ? checked : st;
}

// A streamed replica's trailer: the sender's CRC32Cs, each equal to the
// holder's own of the bytes in the slot.
Status CheckTrailer(transport::Connection& conn, const Manifest& m,
                    const std::vector<uint32_t>& computed, Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(
      auto frame,
      transport::RecvFrame(conn, FrameLimits{{kPeerChunkCrcs, 4 + 4 * m.NumChunks()}}, deadline));
  Reader r(frame.payload);
  std::vector<uint32_t> sent;
  if (!GetCrcs(r, &sent) || !r.done() || sent.size() != m.NumChunks())
    return conn.Fail(InvalidArgument("malformed CRC32C trailer of a streamed replica"));
  for (size_t c = 0; c < sent.size(); ++c)
    if (sent[c] != computed.at(c))
      return DataLoss("CRC32C mismatch in chunk " + std::to_string(c) + " of a replica");
  return Status::Ok();
}

}  // namespace

Status CheckChunking(uint64_t max_chunk, uint32_t window) {
  if (max_chunk == 0 || max_chunk > kMaxChunkBytes || window == 0 || window > kMaxWindow ||
      max_chunk * window > kMaxReceiveBuffer)
    return InvalidArgument("a replica in " + std::to_string(window) + " buffers of " +
                           std::to_string(max_chunk) + " bytes; the limits are " +
                           std::to_string(kMaxWindow) + " buffers, " +
                           std::to_string(kMaxChunkBytes) + " bytes each, " +
                           std::to_string(kMaxReceiveBuffer) + " bytes in all");
  return Status::Ok();
}

Status CheckContinues(uint64_t offset, uint64_t length, uint64_t sent, uint64_t total,
                      uint64_t max_chunk) {
  if (offset != sent || length == 0 || length > max_chunk || length > total - sent)
    return InvalidArgument("chunk [" + std::to_string(offset) + ", +" + std::to_string(length) +
                           ") does not continue the piece at " + std::to_string(sent));
  return Status::Ok();
}

Status ReceiveChunkedReplica(transport::Connection& conn, Store* store, uint64_t writer,
                             const std::string& job, const std::string& payload,
                             const OwnedRank& is_owned, Deadline deadline, bool streamed) {
  Reader r(payload);
  std::string header;
  uint64_t max_chunk = 0;
  uint32_t window = 0;
  if (!r.GetString(&header, kMaxControlFrame) || !r.GetU64(&max_chunk) || !r.GetU32(&window) ||
      !r.done())
    return InvalidArgument("malformed chunked replica header");
  GEMINI_RETURN_IF_ERROR(CheckChunking(max_chunk, window));
  Manifest m;
  std::vector<uint32_t> crcs;
  GEMINI_RETURN_IF_ERROR(DecodeShardHeader(header, &m, &crcs, streamed));
  if (!IsGenerationOf(job, m.job)) return InvalidArgument("replica of another job '" + m.job + "'");
  if (is_owned(m.job, m.rank))
    return InvalidArgument("replica of rank " + std::to_string(m.rank) +
                           ", which this machine owns");
  GEMINI_ASSIGN_OR_RETURN(SlotGrant grant, store->Begin(writer, m, kSlotWait));
  close(grant.fd);
  // Every chunk's CRC32C is checked in the slot before it is acknowledged
  // (streamed: computed then, checked against the trailer after the last).
  Status st = ReceiveChunks(conn, grant.data, m, &crcs, max_chunk, window, deadline);
  if (st.ok() && streamed) st = CheckTrailer(conn, m, crcs, deadline);
  if (st.ok()) st = store->Commit(writer, m.job, m.rank, m.iteration, std::move(crcs));
  if (!st.ok()) store->AbortWriter(writer);
  return st;
}

Result<std::unique_ptr<ChunkedSender>> ChunkedSender::Start(transport::Connection& conn,
                                                            const ShardPin& shard,
                                                            uint64_t max_chunk, uint32_t window,
                                                            Deadline deadline, PieceMaker* maker) {
  GEMINI_RETURN_IF_ERROR(CheckChunking(max_chunk, window));
  Writer w;
  w.PutString(EncodeShardHeader(shard.manifest, maker ? std::vector<uint32_t>{} : shard.crcs));
  w.PutU64(max_chunk);
  w.PutU32(window);
  GEMINI_RETURN_IF_ERROR(transport::SendFrame(
      conn, maker ? kPeerReplicateStreamed : kPeerReplicateChunked, w.Take(), deadline));
  return std::unique_ptr<ChunkedSender>(new ChunkedSender(conn, shard, max_chunk, window, maker));
}

Status ChunkedSender::Send(uint64_t offset, uint64_t length, Deadline deadline) {
  if (finished_) return FailedPrecondition("replica already finished");
  GEMINI_RETURN_IF_ERROR(
      CheckContinues(offset, length, sent_, shard_.manifest.data_bytes, max_chunk_));
  if (maker_) GEMINI_RETURN_IF_ERROR(maker_->MakeUpTo(offset + length));
  while (in_flight_.size() >= window_) GEMINI_RETURN_IF_ERROR(ReadAck(deadline));
  if (in_flight_.empty()) {
    burst_start_ = std::chrono::steady_clock::now();
    burst_bytes_ = 0;
  }
  transport::ConstBuffer parts[2] = {{&offset, sizeof(offset)}, {shard_.data + offset, length}};
  GEMINI_RETURN_IF_ERROR(transport::SendFrameParts(conn_, kPeerChunk, parts, deadline));
  in_flight_.push_back({offset, length});
  burst_bytes_ += length;
  sent_ += length;
  return Status::Ok();
}

Status ChunkedSender::Drain(Deadline deadline) {
  while (!in_flight_.empty()) GEMINI_RETURN_IF_ERROR(ReadAck(deadline));
  return Status::Ok();
}

Status ChunkedSender::Finish(Deadline deadline) {
  if (sent_ != shard_.manifest.data_bytes)
    return FailedPrecondition("replica finished after " + std::to_string(sent_) + " of " +
                              std::to_string(shard_.manifest.data_bytes) + " bytes");
  if (maker_ && !finished_) {
    Writer w;
    PutCrcs(w, maker_->Crcs());
    GEMINI_RETURN_IF_ERROR(transport::SendFrame(conn_, kPeerChunkCrcs, w.Take(), deadline));
  }
  GEMINI_RETURN_IF_ERROR(Drain(deadline));
  GEMINI_ASSIGN_OR_RETURN(
      auto ack, transport::RecvFrame(conn_, FrameLimits{{kPeerReplicateAck, 1 << 20}}, deadline));
  finished_ = true;
  std::string body;
  return DecodeStatusReply(ack.payload, &body);
}

Status ChunkedSender::ReadAck(Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(
      auto frame,
      transport::RecvFrame(conn_, FrameLimits{{kPeerChunkAck, 16}, {kPeerReplicateAck, 1 << 20}},
                           deadline));
  if (frame.type == kPeerReplicateAck) {  // The holder gave up early.
    std::string body;
    Status st = DecodeStatusReply(frame.payload, &body);
    return conn_.Fail(st.ok() ? Internal("holder finished before the last chunk") : st);
  }
  Reader r(frame.payload);
  uint64_t offset = 0, length = 0;
  if (!r.GetU64(&offset) || !r.GetU64(&length) || !r.done() || in_flight_.empty() ||
      in_flight_.front().offset != offset || in_flight_.front().length != length)
    return conn_.Fail(InvalidArgument("acknowledgement of a chunk not in flight"));
  in_flight_.pop_front();
  if (in_flight_.empty())
    samples_.push_back(
        {burst_bytes_,
         std::chrono::duration<double>(std::chrono::steady_clock::now() - burst_start_).count()});
  return Status::Ok();
}

}  // namespace gemini
