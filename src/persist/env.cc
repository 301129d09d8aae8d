#include "persist/env.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>

namespace gemini {
namespace {

constexpr mode_t kFileMode = 0600;
constexpr mode_t kDirMode = 0700;
constexpr int kTempAttempts = 8;

Status PathError(const std::string& what, const std::string& path, int err) {
  return ErrnoStatus(what + " " + path, err);
}

// This machine's host name, made safe for a file name (see TempPathFor).
std::string HostTag() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0 || buf[0] == '\0') return "unknown-host";
  std::string tag;
  for (const char* c = buf; *c != '\0' && tag.size() < 64; ++c) {
    bool keep = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '.' || *c == '_' || *c == '-';
    tag += keep ? *c : '_';
  }
  return tag;
}

// 64 random bits from the kernel; should getrandom fail, a process-wide
// counter mixed with the clock and the address of a local (still distinct
// within the process; O_EXCL catches what it cannot rule out across hosts).
uint64_t RandomBits() {
  uint64_t v = 0;
  if (::getrandom(&v, sizeof(v), 0) == static_cast<ssize_t>(sizeof(v))) return v;
  static std::atomic<uint64_t> counter{0};
  uint64_t t = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  return (t * 0x9E3779B97F4A7C15ull) ^ (counter++ << 1) ^ reinterpret_cast<uintptr_t>(&v);
}

class PosixWritableFile : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(const void* data, size_t n) override {
    const auto* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return PathError("write", path_, errno);
      if (w == 0) return PathError("write", path_, EIO);
      p += w;
      n -= static_cast<size_t>(w);
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fsync(fd_) != 0) return PathError("fsync", path_, errno);
    return Status::Ok();
  }

  Status Close() override {
    int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return PathError("close", path_, errno);
    return Status::Ok();
  }

 private:
  std::string path_;
  int fd_;
};

class PosixReadableFile : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Result<size_t> ReadAt(uint64_t offset, void* dst, size_t n) override {
    size_t done = 0;
    while (done < n) {
      ssize_t r =
          ::pread(fd_, static_cast<char*>(dst) + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return PathError("read", path_, errno);
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Result<uint64_t> Size() override {
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return PathError("stat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  std::string path_;
  int fd_;
};

class PosixEnv : public PersistEnv {
 public:
  Result<std::unique_ptr<WritableFile>> NewWritableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, kFileMode);
    if (fd < 0 && errno == EEXIST)
      return Aborted("create " + path + ": the name is taken (another writer created it)");
    if (fd < 0) return PathError("create", path, errno);
    auto file = std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd));
    // The umask may have cleared bits of kFileMode; set exactly that.
    if (::fchmod(fd, kFileMode) != 0) {
      int err = errno;
      ::unlink(path.c_str());  // Ours: O_EXCL created it.
      return PathError("chmod", path, err);
    }
    return file;
  }

  Result<std::unique_ptr<ReadableFile>> NewReadableFile(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return PathError("open", path, errno);
    return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
  }

  Result<bool> CreateDir(const std::string& path) override {
    if (::mkdir(path.c_str(), kDirMode) == 0) {
      // The umask may have cleared bits of kDirMode; set exactly that.
      if (::chmod(path.c_str(), kDirMode) != 0) return PathError("chmod", path, errno);
      return true;
    }
    int err = errno;
    struct stat st {};
    if (err == EEXIST && ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return false;
    return PathError("mkdir", path, err);
  }

  Status SyncDir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return PathError("open directory", path, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    // Some network and FUSE filesystems cannot fsync a directory; their
    // renames are synchronous, so there is nothing more to do.
    if (rc != 0 && err != EINVAL && err != ENOTSUP) return PathError("fsync directory", path, err);
    return Status::Ok();
  }

  Status RenameFile(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return PathError("rename " + from + " ->", to, errno);
    return Status::Ok();
  }

  Status RemoveFile(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return PathError("unlink", path, errno);
    return Status::Ok();
  }

  Status RemoveDir(const std::string& path) override {
    if (::rmdir(path.c_str()) != 0) return PathError("rmdir", path, errno);
    return Status::Ok();
  }

  Result<std::vector<std::string>> ListDir(const std::string& path) override {
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) return PathError("opendir", path, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(dir)) {
      std::string name = e->d_name;
      if (name != "." && name != "..") names.push_back(std::move(name));
    }
    ::closedir(dir);
    return names;
  }

  Result<uint64_t> FileSize(const std::string& path) override {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return PathError("stat", path, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  bool FileExists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
};

}  // namespace

PersistEnv* PersistEnv::Posix() {
  static PersistEnv* env = new PosixEnv();  // Never destroyed: usable during exit.
  return env;
}

std::string TempPathFor(const std::string& path) {
  static const std::string host = HostTag();
  char suffix[40];
  std::snprintf(suffix, sizeof(suffix), "-%d-%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(RandomBits()));
  return path + ".tmp-" + host + suffix;
}

Result<TempFile> NewTempFileFor(PersistEnv* env, const std::string& path) {
  Status last;
  for (int i = 0; i < kTempAttempts; ++i) {
    std::string tmp = TempPathFor(path);
    auto file = env->NewWritableFile(tmp);
    if (file.ok()) return TempFile{std::move(tmp), std::move(file).value()};
    last = file.status();
    // Only a name someone else holds is worth another draw.
    if (last.code() != Code::kAborted || !env->FileExists(tmp)) return last;
  }
  return last;
}

std::string DirName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

Status WriteFileAtomically(PersistEnv* env, const std::string& path, const std::string& contents) {
  GEMINI_ASSIGN_OR_RETURN(TempFile temp, NewTempFileFor(env, path));
  const std::string& tmp = temp.path;
  auto write = [&]() -> Status {
    auto file = std::move(temp.file);
    GEMINI_RETURN_IF_ERROR(file->Append(contents.data(), contents.size()));
    GEMINI_RETURN_IF_ERROR(file->Sync());
    GEMINI_RETURN_IF_ERROR(file->Close());
    return env->RenameFile(tmp, path);
  };
  Status st = write();
  if (!st.ok()) {
    env->RemoveFile(tmp);  // Best effort; a leftover temp is never read.
    return st;
  }
  return env->SyncDir(DirName(path));
}

Result<std::string> ReadSmallFile(PersistEnv* env, const std::string& path, uint64_t max_bytes) {
  GEMINI_ASSIGN_OR_RETURN(auto file, env->NewReadableFile(path));
  GEMINI_ASSIGN_OR_RETURN(uint64_t size, file->Size());
  if (size > max_bytes)
    return InvalidArgument(path + ": " + std::to_string(size) + " bytes, more than the " +
                           std::to_string(max_bytes) + " expected");
  std::string out(size, '\0');
  GEMINI_ASSIGN_OR_RETURN(size_t got, file->ReadAt(0, out.data(), out.size()));
  out.resize(got);
  return out;
}

}  // namespace gemini
