#include "agent/replication/replicator.h"

#include <algorithm>

#include "agent/replication/chunked_replica.h"
#include "common/log.h"
#include "common/thread_priority.h"
#include "gemini/placement.h"

namespace gemini {

Replicator::Replicator(Store* store, JobCoordinator* coord, ChannelDialer dial,
                       Interleaver* interleaver, ReplicatorOptions options)
    : store_(store),
      coord_(coord),
      dial_(std::move(dial)),
      interleaver_(interleaver),
      options_(std::move(options)) {
  JobConfig c;
  c.num_hosts = options_.num_hosts;
  c.redundancy = options_.redundancy;
  auto layout = JobLayout::Make(options_.job, c, {});
  if (layout.ok()) layout_ = *layout;
  worker_ = std::thread([this] { Run(); });
}

void Replicator::SetLayout(LayoutPtr layout) {
  std::lock_guard<std::mutex> lock(mu_);
  layout_ = std::move(layout);
}

LayoutPtr Replicator::layout() const {
  std::lock_guard<std::mutex> lock(mu_);
  return layout_;
}

Replicator::~Replicator() { Stop(); }

void Replicator::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void Replicator::OnCommit(uint32_t rank, int64_t iteration) {
  LayoutPtr l = layout();
  uint64_t bytes = 0;
  if (auto pin = store_->Pin(l ? l->store_job() : options_.job, rank, iteration); pin.ok())
    bytes = (*pin)->manifest.data_bytes;
  auto peers = PeerHolders(l.get());
  int copies = peers.ok() ? static_cast<int>(peers->size()) : 0;
  std::vector<SendStep> steps =
      interleaver_->PlanSend(rank, iteration, BytesPerHolder(bytes, l.get()), copies);
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back({rank, iteration, coord_->epoch(), l, std::move(steps)});
  }
  cv_.notify_all();
}

void Replicator::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return stop_ || (queue_.empty() && !busy_); });
}

ReplicatorStats Replicator::stats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<std::vector<uint32_t>> Replicator::PeerHolders() const {
  LayoutPtr l = layout();
  return PeerHolders(l.get());
}

Result<std::vector<uint32_t>> Replicator::PeerHolders(const JobLayout* layout) const {
  if (layout == nullptr)
    return InvalidArgument("no placement for " + std::to_string(options_.num_hosts) +
                           " hosts and " + options_.redundancy.ToString());
  if (!layout->Has(options_.self_host))
    return InvalidArgument("host id " + std::to_string(options_.self_host) +
                           " is not a member of " + layout->store_job());
  std::vector<uint32_t> peers;
  for (uint32_t h : layout->Holders(options_.self_host))
    if (h != options_.self_host) peers.push_back(h);
  return peers;
}

uint64_t Replicator::BytesPerHolder(uint64_t shard_bytes) const {
  LayoutPtr l = layout();
  return BytesPerHolder(shard_bytes, l.get());
}

uint64_t Replicator::BytesPerHolder(uint64_t shard_bytes, const JobLayout* layout) const {
  if (!options_.redundancy.erasure()) return shard_bytes;
  auto peers = PeerHolders(layout);
  auto code = peers.ok() ? FragmentScheme(options_.redundancy, peers->size() + 1)
                         : Result<Redundancy>(peers.status());
  return code.ok() ? (shard_bytes + code->data - 1) / code->data : shard_bytes;
}

Result<Replicator::PieceFor> Replicator::PiecesFor(const ShardPin& pin, const JobLayout& layout,
                                                   std::unique_ptr<EncodedShard>* encoded) {
  if (!options_.redundancy.erasure())
    return PieceFor([&pin](size_t, bool) -> Result<Piece> { return Piece{&pin, nullptr}; });
  const std::vector<uint32_t> group = layout.Holders(options_.self_host);
  if (group.empty())
    return InvalidArgument("host id " + std::to_string(options_.self_host) +
                           " not in the placement");
  GEMINI_ASSIGN_OR_RETURN(Redundancy code, FragmentScheme(options_.redundancy, group.size()));
  GEMINI_ASSIGN_OR_RETURN(*encoded, EncodedShard::Make(pin, code, &fragments_));
  // The holder at position j of the group keeps fragment j (the owner's own
  // fragment is its whole shard).
  std::vector<int> position;
  for (size_t j = 0; j < group.size(); ++j)
    if (group[j] != options_.self_host) position.push_back(static_cast<int>(j));
  EncodedShard* shard = encoded->get();
  return PieceFor([shard, position](size_t i, bool streamed) -> Result<Piece> {
    if (streamed) {
      GEMINI_ASSIGN_OR_RETURN(auto s, shard->Stream(position.at(i)));
      return Piece{s.pin, s.maker};
    }
    GEMINI_ASSIGN_OR_RETURN(const ShardPin* whole, shard->Fragment(position.at(i)));
    return Piece{whole, nullptr};
  });
}

void Replicator::Run() {
  SetThreadNice(interleaver_->replication_nice());
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    Task t = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    Status st = Replicate(t);
    if (!st.ok())
      GEMINI_LOG(ERROR) << "[replicator] rank " << t.rank << " iteration " << t.iteration << ": "
                        << st.ToString();
    lock.lock();
    busy_ = false;
    if (!st.ok()) ++stats_.failures;
    stats_.last_error = st.ok() ? "" : st.ToString();
    cv_.notify_all();
  }
  lock.unlock();
  channels_.clear();
}

Status Replicator::Replicate(const Task& t) {
  auto start = Clock::now();
  auto end = start + options_.task_timeout;
  if (!t.layout) return InvalidArgument("no layout for the job");
  auto pin = store_->Pin(t.layout->store_job(), t.rank, t.iteration);
  auto peers = PeerHolders(t.layout.get());
  Status sent = !pin.ok() ? pin.status() : !peers.ok() ? peers.status() : Status::Ok();
  std::unique_ptr<EncodedShard> encoded;
  std::vector<const ShardPin*> pieces;
  if (sent.ok() && interleaver_->mode() != InterleaveMode::kNone) {
    auto piece_for = PiecesFor(**pin, *t.layout, &encoded);
    sent = piece_for.ok() ? SendScheduled(t, *piece_for, *peers, end, &pieces) : piece_for.status();
  }
  interleaver_->MarkReplicated(t.rank, t.iteration, sent,
                               std::chrono::duration<double>(Clock::now() - start).count());
  if (!sent.ok() && coord_->epoch() != t.epoch) {
    GEMINI_LOG(WARN) << "[replicator] rank " << t.rank << " iteration " << t.iteration
                     << " of epoch " << t.epoch << " abandoned (the job is in epoch "
                     << coord_->epoch() << " now): " << sent.ToString();
    return Status::Ok();
  }
  GEMINI_RETURN_IF_ERROR(sent);
  if (interleaver_->mode() != InterleaveMode::kNone) {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.shards_sent += pieces.size();
    for (const ShardPin* p : pieces)
      if (p) stats_.bytes_sent += p->manifest.data_bytes;
  }
  const auto sent_at = Clock::now();
  uint32_t world_size = (*pin)->manifest.world_size;
  pieces.clear();
  encoded.reset();
  pin->reset();
  // Record it; etcd may be briefly unreachable: keep trying until the deadline.
  for (int attempt = 0;; ++attempt) {
    // A replica of an old timeline (recovery moved the job on while it was
    // in flight) never counts toward the new one's completion.
    if (coord_->epoch() != t.epoch) {
      GEMINI_LOG(WARN) << "[replicator] rank " << t.rank << " iteration " << t.iteration
                       << " was committed in epoch " << t.epoch << "; the job is in epoch "
                       << coord_->epoch() << " now: not counted";
      return Status::Ok();
    }
    if (options_.on_replicated) {  // Launch mode: the root learns it over the peer protocol.
      options_.on_replicated(t.rank, t.epoch, t.iteration);
      return Status::Ok();
    }
    Status st = coord_->ReportReplicated(t.rank, t.iteration, t.epoch);
    Result<int64_t> complete = st.ok() ? coord_->TryAdvanceComplete(world_size) : st;
    if (complete.ok()) {
      GEMINI_LOG(DEBUG) << "[replicator] rank " << t.rank << " iteration " << t.iteration
                        << ": sent in " << std::chrono::duration<double>(sent_at - start).count()
                        << " s, recorded in "
                        << std::chrono::duration<double>(Clock::now() - sent_at).count() << " s";
      std::lock_guard<std::mutex> lock(mu_);
      stats_.last_complete = std::max(stats_.last_complete, *complete);
      return Status::Ok();
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_ || std::chrono::steady_clock::now() > end) return complete.status();
    }
    if (attempt == 0)
      GEMINI_LOG(WARN) << "[replicator] recording rank " << t.rank << " iteration " << t.iteration
                       << ": " << complete.status().ToString() << "; retrying";
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

Result<Channel*> Replicator::ChannelTo(uint32_t host) {
  // A new epoch may have replaced a holder with another machine under the
  // same host id (and fenced the old one): dial afresh what etcd lists now.
  if (int64_t epoch = coord_->epoch(); epoch != channels_epoch_) {
    channels_.clear();
    channels_epoch_ = epoch;
  }
  auto& channel = channels_[host];
  if (channel && channel->status().ok()) return channel.get();
  channel.reset();
  GEMINI_ASSIGN_OR_RETURN(auto hosts, coord_->Hosts());
  if (hosts.count(host) == 0)
    return Unavailable("host " + std::to_string(host) + " is not registered");
  GEMINI_ASSIGN_OR_RETURN(channel, dial_(hosts[host]));
  return channel.get();
}

Status Replicator::SendScheduled(const Task& t, const PieceFor& piece_for,
                                 const std::vector<uint32_t>& peers, Clock::time_point end,
                                 std::vector<const ShardPin*>* sent) {
  const size_t n = peers.size();
  std::vector<const ShardPin*>& pins = *sent;
  pins.assign(n, nullptr);
  std::vector<std::unique_ptr<PieceStream>> senders(n);
  std::vector<Channel*> channels(n, nullptr);
  std::vector<Status> result(n);
  for (size_t i = 0; i < n; ++i) {  // Channels first: channels_ is not shared with threads.
    auto channel = ChannelTo(peers[i]);
    if (channel.ok())
      channels[i] = *channel;
    else
      result[i] = channel.status();
  }
  // Sends peer i's header; a fragment is made as its chunks go (streamed).
  auto start = [&](size_t i) -> Status {
    GEMINI_ASSIGN_OR_RETURN(Piece piece, piece_for(i, true));
    pins[i] = piece.pin;
    auto sender = channels[i]->Open(*pins[i], piece.maker, interleaver_->max_chunk(),
                                    interleaver_->window(), end);
    if (!sender.ok()) return sender.status();
    senders[i] = std::move(*sender);
    return Status::Ok();
  };
  auto send = [&](size_t i, const SendStep& step) {
    Status st = senders[i]->Send(step.chunk.offset, step.chunk.length, end);
    if (st.ok() && step.drain_after) st = senders[i]->Drain(end);
    return st;
  };
  const bool gated = std::any_of(t.steps.begin(), t.steps.end(),
                                 [](const SendStep& s) { return s.gate_iteration >= 0; });
  if (gated || n < 2) {
    // In plan order: the chunks of every copy share the idle spans.
    for (size_t i = 0; i < n; ++i)
      if (result[i].ok()) result[i] = start(i);
    for (const SendStep& step : t.steps) {
      size_t i = static_cast<size_t>(step.chunk.copy);
      if (i >= n || !result[i].ok()) continue;
      if (step.gate_iteration >= 0)
        interleaver_->AwaitSpan(step.gate_iteration, step.gate_position,
                                Clock::now() + interleaver_->SpanTimeout());
      result[i] = send(i, step);
    }
  } else {
    // Sent at once: one thread per holder sends its piece, making each
    // stripe of a fragment just before it goes, so encoding overlaps sending
    // and every link (and core) is busy.
    std::vector<std::thread> threads;
    for (size_t i = 0; i < n; ++i) {
      if (!result[i].ok()) continue;
      threads.emplace_back([&, i] {
        SetThreadNice(interleaver_->replication_nice());
        result[i] = start(i);
        for (const SendStep& step : t.steps)
          if (result[i].ok() && static_cast<size_t>(step.chunk.copy) == i)
            result[i] = send(i, step);
      });
    }
    for (std::thread& th : threads) th.join();
  }
  for (size_t i = 0; i < n; ++i) {
    if (result[i].ok()) result[i] = senders[i]->Finish(end);
    if (result[i].ok()) {
      interleaver_->RecordSamples(senders[i]->samples());
      continue;
    }
    GEMINI_LOG(WARN) << "[replicator] rank " << t.rank << " iteration " << t.iteration
                     << " to host " << peers[i] << ": " << result[i].ToString() << "; retrying";
    channels_[peers[i]].reset();
  }
  for (size_t i = 0; i < n; ++i) {  // Retried whole: every byte and CRC made first.
    if (result[i].ok()) continue;
    GEMINI_ASSIGN_OR_RETURN(Piece whole, piece_for(i, false));
    pins[i] = whole.pin;
    GEMINI_RETURN_IF_ERROR(SendTo(peers[i], *pins[i], t.epoch, end));
  }
  return Status::Ok();
}

// Sends every chunk at once, on a fresh connection per attempt.
Status Replicator::SendTo(uint32_t host, const ShardPin& pin, int64_t epoch,
                          Clock::time_point end) {
  Status last = Unavailable("no attempt");
  for (int attempt = 0; Clock::now() < end; ++attempt) {
    if (attempt > 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(std::min(attempt, 10) * 50));
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return Aborted("replicator stopping");
    }
    // The job moved to a new epoch: this replica can never count (and its
    // holder may have left the job). Stop retrying; the next tasks wait.
    if (coord_->epoch() != epoch)
      return Aborted("the job moved on to epoch " + std::to_string(coord_->epoch()));
    auto channel = ChannelTo(host);
    if (!channel.ok()) {
      last = channel.status();
      continue;
    }
    last = SendWhole(**channel, pin, interleaver_->max_chunk(), interleaver_->window(), end);
    if (last.ok()) return last;
    channels_[host].reset();  // A refused or broken exchange: start over on a fresh channel.
  }
  return Status(last.code(), "replica of rank " + std::to_string(pin.manifest.rank) + " to host " +
                                 std::to_string(host) + ": " + last.message());
}

}  // namespace gemini
