#include "agent/replication/fake_channel.h"

#include <unistd.h>

#include <chrono>
#include <cstring>

#include "store/chunks.h"

namespace gemini {

class FakeChannel::Stream : public PieceStream {
 public:
  Stream(FakeChannel* channel, const ShardPin& piece, PieceMaker* maker, uint64_t max_chunk,
         uint8_t* slot)
      : channel_(channel), piece_(piece), maker_(maker), max_chunk_(max_chunk), slot_(slot) {}
  ~Stream() override {
    if (!finished_) channel_->holder_->AbortWriter(channel_->writer_);
  }

  Status Send(uint64_t offset, uint64_t length, Deadline) override {
    GEMINI_RETURN_IF_ERROR(channel_->status());
    if (finished_) return FailedPrecondition("piece already finished");
    GEMINI_RETURN_IF_ERROR(
        CheckContinues(offset, length, sent_, piece_.manifest.data_bytes, max_chunk_));
    if (maker_) GEMINI_RETURN_IF_ERROR(maker_->MakeUpTo(offset + length));
    const auto start = std::chrono::steady_clock::now();
    std::memcpy(slot_ + offset, piece_.data + offset, length);
    if (channel_->corrupt_.exchange(false)) slot_[offset] ^= 1;
    sent_ += length;
    samples_.push_back(
        {length, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()});
    return Status::Ok();
  }
  Status Drain(Deadline) override { return channel_->status(); }
  Status Finish(Deadline) override {
    GEMINI_RETURN_IF_ERROR(channel_->status());
    const Manifest& m = piece_.manifest;
    if (sent_ != m.data_bytes)
      return FailedPrecondition("piece finished after " + std::to_string(sent_) + " of " +
                                std::to_string(m.data_bytes) + " bytes");
    finished_ = true;
    std::vector<uint32_t> crcs = maker_ ? maker_->Crcs() : piece_.crcs;
    Status st = VerifyChunks(slot_, m.data_bytes, m.chunk_size, crcs);
    if (st.ok())
      st = channel_->holder_->Commit(channel_->writer_, m.job, m.rank, m.iteration, crcs);
    if (!st.ok()) channel_->holder_->AbortWriter(channel_->writer_);
    return st;
  }
  const std::vector<schedule::TransferSample>& samples() const override { return samples_; }

 private:
  FakeChannel* const channel_;
  const ShardPin& piece_;
  PieceMaker* const maker_;
  const uint64_t max_chunk_;
  uint8_t* const slot_;
  uint64_t sent_ = 0;
  bool finished_ = false;
  std::vector<schedule::TransferSample> samples_;
};

Status FakeChannel::status() const {
  return broken_ ? Unavailable("fake channel broken") : Status::Ok();
}

Result<std::unique_ptr<PieceStream>> FakeChannel::Open(const ShardPin& piece, PieceMaker* maker,
                                                       uint64_t max_chunk, uint32_t window,
                                                       Deadline) {
  GEMINI_RETURN_IF_ERROR(status());
  GEMINI_RETURN_IF_ERROR(CheckChunking(max_chunk, window));
  GEMINI_ASSIGN_OR_RETURN(SlotGrant grant,
                          holder_->Begin(writer_, piece.manifest, std::chrono::seconds(1)));
  close(grant.fd);
  return std::unique_ptr<PieceStream>(new Stream(this, piece, maker, max_chunk, grant.data));
}

}  // namespace gemini
