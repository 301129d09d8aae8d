#include "persist/fault_env.h"

#include <algorithm>
#include <cerrno>

namespace gemini {
namespace {

constexpr std::chrono::seconds kMaxHold{30};

class FaultWritableFile : public WritableFile {
 public:
  FaultWritableFile(FaultInjectionEnv* env, std::string path, std::unique_ptr<WritableFile> base)
      : env_(env), path_(std::move(path)), base_(std::move(base)) {}

  Status Append(const void* data, size_t n) override {
    GEMINI_RETURN_IF_ERROR(env_->Admit("append " + path_));
    env_->WaitWhileHeld();
    GEMINI_RETURN_IF_ERROR(env_->CheckAlive());  // A crash while held.
    bool no_space = false;
    size_t allowed = env_->TakeSpace(n, &no_space);
    if (env_->short_writes()) allowed = std::min(allowed, n / 2);
    GEMINI_RETURN_IF_ERROR(base_->Append(data, allowed));
    if (no_space) return ErrnoStatus("write " + path_, ENOSPC);
    return Status::Ok();
  }

  Status Sync() override {
    GEMINI_RETURN_IF_ERROR(env_->Admit("sync " + path_));
    if (env_->sync_failure()) return ErrnoStatus("fsync " + path_, EIO);
    return base_->Sync();
  }

  Status Close() override {
    GEMINI_RETURN_IF_ERROR(env_->Admit("close " + path_));
    return base_->Close();
  }

 private:
  FaultInjectionEnv* env_;
  std::string path_;
  std::unique_ptr<WritableFile> base_;
};

}  // namespace

void FaultInjectionEnv::SetSpaceLimit(std::optional<uint64_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  space_left_ = bytes;
}

void FaultInjectionEnv::SetShortWrites(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  short_writes_ = on;
}

void FaultInjectionEnv::SetSyncFailure(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  sync_failure_ = on;
}

void FaultInjectionEnv::CrashAfter(std::optional<uint64_t> ops) {
  std::lock_guard<std::mutex> lock(mu_);
  crash_after_ = ops;
}

bool FaultInjectionEnv::crashed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return crashed_;
}

void FaultInjectionEnv::HoldWrites() {
  std::lock_guard<std::mutex> lock(mu_);
  hold_ = true;
}

void FaultInjectionEnv::ReleaseWrites() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    hold_ = false;
  }
  cv_.notify_all();
}

bool FaultInjectionEnv::WaitUntilHeld(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [this] { return held_ > 0; });
}

std::vector<std::string> FaultInjectionEnv::Log() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

uint64_t FaultInjectionEnv::MutatingOps() const {
  std::lock_guard<std::mutex> lock(mu_);
  return ops_;
}

Status FaultInjectionEnv::Admit(const std::string& op) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!crashed_ && crash_after_ && ops_ >= *crash_after_) crashed_ = true;
  if (crashed_) return Aborted("injected crash before: " + op);
  ++ops_;
  log_.push_back(op);
  return Status::Ok();
}

Status FaultInjectionEnv::CheckAlive() const {
  std::lock_guard<std::mutex> lock(mu_);
  return crashed_ ? Aborted("injected crash: the env is down") : Status::Ok();
}

void FaultInjectionEnv::WaitWhileHeld() {
  std::unique_lock<std::mutex> lock(mu_);
  if (!hold_) return;
  ++held_;
  cv_.notify_all();
  cv_.wait_for(lock, kMaxHold, [this] { return !hold_; });
  --held_;
}

size_t FaultInjectionEnv::TakeSpace(size_t n, bool* no_space) {
  std::lock_guard<std::mutex> lock(mu_);
  *no_space = false;
  if (!space_left_) return n;
  size_t allowed = static_cast<size_t>(std::min<uint64_t>(n, *space_left_));
  *space_left_ -= allowed;
  *no_space = allowed < n;
  return allowed;
}

bool FaultInjectionEnv::short_writes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return short_writes_;
}

bool FaultInjectionEnv::sync_failure() const {
  std::lock_guard<std::mutex> lock(mu_);
  return sync_failure_;
}

Result<std::unique_ptr<WritableFile>> FaultInjectionEnv::NewWritableFile(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(Admit("create " + path));
  GEMINI_ASSIGN_OR_RETURN(auto base, target()->NewWritableFile(path));
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, path, std::move(base)));
}

Result<std::unique_ptr<ReadableFile>> FaultInjectionEnv::NewReadableFile(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(CheckAlive());
  return target()->NewReadableFile(path);
}

Result<bool> FaultInjectionEnv::CreateDir(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(Admit("mkdir " + path));
  return target()->CreateDir(path);
}

Status FaultInjectionEnv::SyncDir(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(Admit("syncdir " + path));
  return target()->SyncDir(path);
}

Status FaultInjectionEnv::RenameFile(const std::string& from, const std::string& to) {
  GEMINI_RETURN_IF_ERROR(Admit("rename " + from + " " + to));
  return target()->RenameFile(from, to);
}

Status FaultInjectionEnv::RemoveFile(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(Admit("unlink " + path));
  return target()->RemoveFile(path);
}

Status FaultInjectionEnv::RemoveDir(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(Admit("rmdir " + path));
  return target()->RemoveDir(path);
}

Result<std::vector<std::string>> FaultInjectionEnv::ListDir(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(CheckAlive());
  return target()->ListDir(path);
}

Result<uint64_t> FaultInjectionEnv::FileSize(const std::string& path) {
  GEMINI_RETURN_IF_ERROR(CheckAlive());
  return target()->FileSize(path);
}

bool FaultInjectionEnv::FileExists(const std::string& path) {
  return CheckAlive().ok() && target()->FileExists(path);
}

}  // namespace gemini
