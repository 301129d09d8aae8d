// FakeChannel: a channel for tests that writes pieces straight into the
// holder's Store, under the protocol's rules (chunks in order within
// max_chunk, every CRC32C checked before the commit, nothing committed
// otherwise); no job or owned-rank checks (the peer service's).
#pragma once

#include <atomic>

#include "agent/replication/channel.h"

namespace gemini {

class FakeChannel : public Channel {
 public:
  explicit FakeChannel(Store* holder, uint64_t writer = 1) : holder_(holder), writer_(writer) {}
  Result<std::unique_ptr<PieceStream>> Open(const ShardPin& piece, PieceMaker* maker,
                                            uint64_t max_chunk, uint32_t window,
                                            Deadline deadline) override;
  Status status() const override;
  // The next byte sent arrives flipped (a bad link or a bad holder memory).
  void CorruptNext() { corrupt_ = true; }
  // Breaks the channel: every later call fails, as a dropped connection.
  void Break() { broken_ = true; }

 private:
  class Stream;
  Store* const holder_;
  const uint64_t writer_;
  std::atomic<bool> corrupt_{false}, broken_{false};
};

}  // namespace gemini
