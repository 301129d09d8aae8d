// ShmSegment: one anonymous shared-memory file (memfd) holding one slot's bytes.
//
// The agent creates segments (memfd_create, close-on-exec), sizes them and
// reserves their pages with posix_fallocate so that running out of memory is
// an error at creation (ResourceExhausted), never a SIGBUS in the middle of a
// copy. A memfd has no path: its memory is freed when the last fd and mapping
// go away, so an agent that dies leaves nothing behind (no /dev/shm names to
// clean up). Trainers get the fd over the agent's Unix socket. The agent
// keeps its own read-write mapping of every segment (data()), used to send
// replicas and receive them. That mapping is not populated up front: the
// pages are reserved already, and setting up the entries of a large slot at
// once (seconds per GiB on some virtual machines) holds the process's memory
// map lock all along, stalling every thread of the agent (heartbeats
// included) and leaving a replica's socket unread until the sender gave up.
// Entries are made as the bytes are first touched. A segment owns its fd and its mapping; it is not
// copyable, and not thread-safe (the store guards it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace gemini {

class Mapping {
 public:
  // Maps `size` bytes of fd. Writable or read-only. `populate` sets up every
  // page table entry now rather than on first touch, in 64 MiB steps that
  // let the process's other threads map and fault memory in between.
  static Result<std::unique_ptr<Mapping>> Map(int fd, size_t size, bool writable,
                                              bool populate = true);
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
  // Creates a memfd named `name` (diagnostics only: /proc/<pid>/fd shows
  // "memfd:<name>") of `size` bytes, rounded up to a page, every page reserved.
  static Result<std::unique_ptr<ShmSegment>> Create(const std::string& name, size_t size);
  ~ShmSegment();  // Closes the fd; the memory goes with its last holder.
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
