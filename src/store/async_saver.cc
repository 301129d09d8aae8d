#include "store/async_saver.h"

namespace gemini {

AsyncSaver::AsyncSaver(AgentClient* client) : client_(client) {
  worker_ = std::thread([this] { Run(); });
}

AsyncSaver::~AsyncSaver() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

Status AsyncSaver::Submit(SaveRequest request) {
  Status previous = InFlight() ? Wait() : Status::Ok();  // Reported once, by Wait or here.
  {
    std::lock_guard<std::mutex> lock(mu_);
    pending_ = std::move(request);
    busy_ = true;
  }
  cv_.notify_all();
  return previous;
}

Status AsyncSaver::Wait(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, timeout, [this] { return !busy_; }))
    return DeadlineExceeded("checkpoint copy still running after " +
                            std::to_string(timeout.count()) + " ms");
  return last_;
}

bool AsyncSaver::InFlight() {
  std::lock_guard<std::mutex> lock(mu_);
  return busy_;
}

SaveStats AsyncSaver::LastStats() {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void AsyncSaver::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || pending_.has_value(); });
    if (stop_ && !pending_) return;
    SaveRequest req = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    auto start = std::chrono::steady_clock::now();
    Status st =
        client_->Save(req.job, req.rank, req.world_size, req.iteration, req.tensors, req.options);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    uint64_t bytes = 0;
    for (const auto& t : req.tensors) bytes += t.length;
    lock.lock();
    last_ = st;
    stats_ = SaveStats{req.iteration, secs, bytes};
    busy_ = false;
    cv_.notify_all();
  }
}

}  // namespace gemini
