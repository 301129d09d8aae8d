// TcpChannel: the chunked replica protocol (chunked_replica.h) over one
// authenticated TCP connection to a holder's peer service (channel.h).
#pragma once

#include "agent/replication/channel.h"
#include "transport/connection.h"

namespace gemini {

class TcpChannel : public Channel {
 public:
  explicit TcpChannel(std::unique_ptr<transport::Connection> conn) : conn_(std::move(conn)) {}
  Result<std::unique_ptr<PieceStream>> Open(const ShardPin& piece, PieceMaker* maker,
                                            uint64_t max_chunk, uint32_t window,
                                            Deadline deadline) override;
  Status status() const override { return conn_->status(); }

 private:
  std::unique_ptr<transport::Connection> conn_;
};

}  // namespace gemini
