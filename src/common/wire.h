// Wire encoding helpers: little-endian fixed-width integers and
// length-prefixed strings, with a Reader that bounds-checks every field.
//
// Writer appends to a std::string. Reader never reads past its input: every
// Get* returns false once the input is exhausted or a length field is larger
// than what remains (or than the caller's cap), and the Reader stays failed.
// Callers turn a failed Reader into an InvalidArgument status. Neither class
// is thread-safe; they are short-lived values.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace gemini {

class Writer {
 public:
  void PutU8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void PutU32(uint32_t v) { PutRaw(&v, 4); }
  void PutU64(uint64_t v) { PutRaw(&v, 8); }
  void PutI64(int64_t v) { PutRaw(&v, 8); }
  void PutString(std::string_view s) {
    PutU32(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  void PutRaw(const void* p, size_t n) { out_.append(static_cast<const char*>(p), n); }
  std::string& str() { return out_; }
  std::string Take() { return std::move(out_); }

 private:
  std::string out_;  // Host order; every supported host is little-endian.
};

class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool GetU8(uint8_t* v) { return GetRaw(v, 1); }
  bool GetU32(uint32_t* v) { return GetRaw(v, 4); }
  bool GetU64(uint64_t* v) { return GetRaw(v, 8); }
  bool GetI64(int64_t* v) { return GetRaw(v, 8); }
  // A length-prefixed string of at most max_len bytes.
  bool GetString(std::string* s, uint32_t max_len = 1 << 20) {
    uint32_t n = 0;
    if (!GetU32(&n) || n > max_len || n > in_.size() - pos_) return Fail();
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  bool GetRaw(void* p, size_t n) {
    if (failed_ || n > in_.size() - pos_) return Fail();
    if (n > 0) std::memcpy(p, in_.data() + pos_, n);  // p may be null when n is 0.
    pos_ += n;
    return true;
  }
  size_t remaining() const { return failed_ ? 0 : in_.size() - pos_; }
  bool failed() const { return failed_; }
  // True when every byte was consumed and nothing failed.
  bool done() const { return !failed_ && pos_ == in_.size(); }

 private:
  bool Fail() {
    failed_ = true;
    return false;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace gemini
