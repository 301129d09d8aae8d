#include "store/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>

namespace gemini {

size_t PageAlign(size_t n) {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (n > SIZE_MAX - page) return SIZE_MAX / page * page;  // Saturates; no allocation fits it.
  return (n + page - 1) / page * page;
}

namespace {

// Sets up the page table entries of [p, p + size) in steps, so that the
// process's memory map lock is let go between them: one MAP_POPULATE of a
// large mapping holds it throughout (seconds per GiB on some virtual
// machines), and every other thread that maps memory or faults waits.
// False where the kernel has no MADV_POPULATE_* (before Linux 5.14).
bool PopulateInSteps(uint8_t* p, size_t size, bool writable) {
  constexpr size_t kStep = 64 << 20;
  for (size_t off = 0; off < size; off += kStep)
    if (madvise(p + off, std::min(kStep, size - off),
                writable ? MADV_POPULATE_WRITE : MADV_POPULATE_READ) != 0)
      return false;
  return true;
}

}  // namespace

Result<std::unique_ptr<Mapping>> Mapping::Map(int fd, size_t size, bool writable, bool populate) {
  if (size == 0) return std::unique_ptr<Mapping>(new Mapping(nullptr, 0));
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p != MAP_FAILED && populate && !PopulateInSteps(static_cast<uint8_t*>(p), size, writable)) {
    munmap(p, size);  // An older kernel: all at once.
    p = mmap(nullptr, size, prot, MAP_SHARED | MAP_POPULATE, fd, 0);
  }
  if (p == MAP_FAILED) return ErrnoStatus("mmap of " + std::to_string(size) + " bytes", errno);
  return std::unique_ptr<Mapping>(new Mapping(static_cast<uint8_t*>(p), size));
}

Mapping::~Mapping() {
  if (data_ != nullptr) munmap(data_, size_);
}

Result<std::unique_ptr<ShmSegment>> ShmSegment::Create(const std::string& name, size_t size) {
  size = PageAlign(size == 0 ? 1 : size);
  if (size > static_cast<size_t>(INT64_MAX)) return InvalidArgument("segment size overflows");
  int fd = memfd_create(name.c_str(), MFD_CLOEXEC);
  if (fd < 0) return ErrnoStatus("memfd_create " + name, errno);
  int err = 0;
  if (ftruncate(fd, static_cast<off_t>(size)) != 0) err = errno;
  if (err == 0) err = posix_fallocate(fd, 0, static_cast<off_t>(size));
  if (err != 0) {
    close(fd);
    return ErrnoStatus("reserving " + std::to_string(size) + " bytes of shared memory for " + name,
                       err);
  }
  auto mapping = Mapping::Map(fd, size, /*writable=*/true, /*populate=*/false);
  if (!mapping.ok()) {
    close(fd);
    return mapping.status();
  }
  return std::unique_ptr<ShmSegment>(new ShmSegment(name, fd, size, std::move(*mapping)));
}

ShmSegment::~ShmSegment() { close(fd_); }

}  // namespace gemini
