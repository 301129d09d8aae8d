// Handshake: mutual challenge-response authentication of a fresh Connection
// with a per-job shared secret (HMAC-SHA256, OpenSSL), and loading that
// secret.
//
// Protocol (fixed-size messages, little-endian):
//   client -> server  hello   [u32 "GMAH"][u32 version][32-byte client nonce Nc]
//   server -> client  hello   [u32 "GMAH"][u32 version][32-byte server nonce Ns]
//                             [32-byte server proof HMAC(secret, "server"|job|Nc|Ns)]
//   client -> server  proof   [32-byte client proof HMAC(secret, "client"|job|Ns|Nc)]
//   server -> client  accept  [u32 "GMOK"]
// Nonces come from RAND_bytes; proofs are compared with CRYPTO_memcmp.
// The client checks the server's proof before it proves anything, and the
// server sends nothing but its nonce and proof before the client's proof
// verified. The two proofs are domain-separated by role, so what the server
// computes over a nonce a stranger chose never serves as a client proof. A
// peer without the secret (or of another job) therefore can neither send a
// frame that is read nor read one: any failure — wrong secret or job on
// either side, bytes that are not a hello, a close or silence until the
// deadline — is kAborted "authentication ... failed: <why>", on both sides,
// and the connection is failed (Connection::Fail).
//
// Limits: this authenticates the peer at connection time only; frames after
// it are neither encrypted nor MACed, so an on-path attacker who can
// rewrite TCP streams is out of scope (that would take TLS).
//
// Stateless functions; JobSecret is an immutable value (safe to share
// read-only between threads) that wipes its bytes when destroyed.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "transport/connection.h"

namespace gemini::transport {

constexpr std::chrono::milliseconds kDefaultHandshakeTimeout{5000};
inline Deadline DefaultHandshakeDeadline() {
  return std::chrono::steady_clock::now() + kDefaultHandshakeTimeout;
}

class JobSecret {
 public:
  static constexpr size_t kMinBytes = 16;
  static constexpr size_t kMaxBytes = 4096;
  static constexpr const char* kEnvVar = "GEMINI_SECRET";

  // kInvalidArgument unless kMinBytes <= size <= kMaxBytes.
  static Result<JobSecret> FromBytes(std::string bytes);
  // The file's contents without trailing whitespace. Refused
  // (kFailedPrecondition) when the file is not a regular file, is owned by
  // someone other than us or root, or grants group/other any access (like
  // ssh with private keys: chmod 600).
  static Result<JobSecret> FromFile(const std::string& path);
  // $GEMINI_SECRET without trailing whitespace; kNotFound when unset.
  static Result<JobSecret> FromEnv();
  // FromFile(path) when path is non-empty, else FromEnv().
  static Result<JobSecret> Load(const std::string& path);

  JobSecret(const JobSecret& other) = default;
  JobSecret(JobSecret&& other) = default;
  JobSecret& operator=(const JobSecret& other) = default;
  JobSecret& operator=(JobSecret&& other) = default;
  ~JobSecret();

  std::string_view bytes() const { return bytes_; }

 private:
  explicit JobSecret(std::string bytes) : bytes_(std::move(bytes)) {}
  std::string bytes_;
};

// Run by the side that connected. OK once the server proved the secret and
// accepted our proof.
Status ClientHandshake(Connection& conn, const JobSecret& secret, std::string_view job,
                       Deadline deadline = DefaultHandshakeDeadline());
// Run by the side that accepted. OK once the client proved the secret.
Status ServerHandshake(Connection& conn, const JobSecret& secret, std::string_view job,
                       Deadline deadline = DefaultHandshakeDeadline());

}  // namespace gemini::transport
