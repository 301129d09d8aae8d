#include "store/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace gemini {

size_t PageAlign(size_t n) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (n + page - 1) / page * page;
}

Result<std::unique_ptr<Mapping>> Mapping::Map(int fd, size_t size, bool writable) {
  if (size == 0) return std::unique_ptr<Mapping>(new Mapping(nullptr, 0));
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(nullptr, size, prot, MAP_SHARED | MAP_POPULATE, fd, 0);
  if (p == MAP_FAILED) return ErrnoStatus("mmap of " + std::to_string(size) + " bytes", errno);
  return std::unique_ptr<Mapping>(new Mapping(static_cast<uint8_t*>(p), size));
}

Mapping::~Mapping() {
  if (data_ != nullptr) munmap(data_, size_);
}

Result<std::unique_ptr<ShmSegment>> ShmSegment::Create(const std::string& name, size_t size) {
  size = PageAlign(size == 0 ? 1 : size);
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return ErrnoStatus("shm_open " + name, errno);
  // shm_open's mode is filtered by the umask; make 0600 explicit.
  int err = 0;
  if (fchmod(fd, 0600) != 0 || ftruncate(fd, static_cast<off_t>(size)) != 0) err = errno;
  if (err == 0) err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err != 0) {
    close(fd);
    shm_unlink(name.c_str());
    return ErrnoStatus("reserving " + std::to_string(size) + " bytes of shared memory for " + name,
                       err);
  }
  auto mapping = Mapping::Map(fd, size, /*writable=*/true);
  if (!mapping.ok()) {
    close(fd);
    shm_unlink(name.c_str());
    return mapping.status();
  }
  return std::unique_ptr<ShmSegment>(new ShmSegment(name, fd, size, std::move(*mapping)));
}

ShmSegment::~ShmSegment() {
  shm_unlink(name_.c_str());
  close(fd_);
}

}  // namespace gemini
