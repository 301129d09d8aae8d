// ShmSegment: one POSIX shared-memory object holding one slot's bytes.
//
// The agent creates segments (shm_open O_CREAT|O_EXCL, mode 0600), sizes them
// and reserves their pages with posix_fallocate so that a full /dev/shm is an
// error at creation (ResourceExhausted), never a SIGBUS in the middle of a
// copy. The agent unlinks the name when the segment is destroyed; holders of
// the file descriptor (trainers it was passed to) keep the memory mapped until
// they unmap. The agent keeps its own read-write mapping of every segment
// (data()), used to send replicas and receive them. A segment owns its fd and
// its mapping; it is not copyable, and not thread-safe (the store guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace gemini {

class Mapping {
 public:
  // Maps `size` bytes of fd. Writable or read-only.
  static Result<std::unique_ptr<Mapping>> Map(int fd, size_t size, bool writable);
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  Mapping(uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t* data_;
  size_t size_;
};

class ShmSegment {
 public:
  // Creates /dev/shm/<name> of `size` bytes (rounded up to a page) with every
  // page reserved. `name` starts with '/'.
  static Result<std::unique_ptr<ShmSegment>> Create(const std::string& name, size_t size);
  ~ShmSegment();  // Unlinks the name and closes the fd.
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;

  const std::string& name() const { return name_; }
  int fd() const { return fd_; }
  size_t size() const { return size_; }
  uint8_t* data() const { return mapping_->data(); }

 private:
  ShmSegment(std::string name, int fd, size_t size, std::unique_ptr<Mapping> mapping)
      : name_(std::move(name)), fd_(fd), size_(size), mapping_(std::move(mapping)) {}
  std::string name_;
  int fd_;
  size_t size_;
  std::unique_ptr<Mapping> mapping_;
};

// Page-rounded size.
size_t PageAlign(size_t n);

}  // namespace gemini
