#include "agent/replication/tcp_channel.h"

namespace gemini {
namespace {

class TcpStream : public PieceStream {
 public:
  explicit TcpStream(std::unique_ptr<ChunkedSender> sender) : sender_(std::move(sender)) {}
  Status Send(uint64_t offset, uint64_t length, Deadline deadline) override {
    return sender_->Send(offset, length, deadline);
  }
  Status Drain(Deadline deadline) override { return sender_->Drain(deadline); }
  Status Finish(Deadline deadline) override { return sender_->Finish(deadline); }
  const std::vector<schedule::TransferSample>& samples() const override {
    return sender_->samples();
  }

 private:
  std::unique_ptr<ChunkedSender> sender_;
};

}  // namespace

Result<std::unique_ptr<PieceStream>> TcpChannel::Open(const ShardPin& piece, PieceMaker* maker,
                                                      uint64_t max_chunk, uint32_t window,
                                                      Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(auto sender,
                          ChunkedSender::Start(*conn_, piece, max_chunk, window, deadline, maker));
  return std::unique_ptr<PieceStream>(new TcpStream(std::move(sender)));
}

}  // namespace gemini
