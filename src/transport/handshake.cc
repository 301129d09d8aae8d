#include "transport/handshake.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "common/wire.h"

namespace gemini::transport {
namespace {

constexpr uint32_t kHelloMagic = 0x48414D47;   // "GMAH"
constexpr uint32_t kAcceptMagic = 0x4B4F4D47;  // "GMOK"
constexpr uint32_t kVersion = 1;
constexpr size_t kNonceBytes = 32;
constexpr size_t kProofBytes = 32;  // SHA-256.
constexpr size_t kClientHelloBytes = 8 + kNonceBytes;
constexpr size_t kServerHelloBytes = 8 + kNonceBytes + kProofBytes;

using Nonce = std::array<uint8_t, kNonceBytes>;
using Proof = std::array<uint8_t, kProofBytes>;

std::string TrimTrailingSpace(std::string s) {
  while (!s.empty() && std::string_view(" \t\r\n").find(s.back()) != std::string_view::npos)
    s.pop_back();
  return s;
}

Result<Nonce> RandomNonce() {
  Nonce n;
  if (RAND_bytes(n.data(), static_cast<int>(n.size())) != 1)
    return Internal("RAND_bytes failed: no randomness for a handshake nonce");
  return n;
}

// HMAC-SHA256(secret, "gemini-transport-auth-v1" | role | job | first | second),
// every variable-length field length-prefixed.
Result<Proof> ComputeProof(const JobSecret& secret, std::string_view role, std::string_view job,
                           const Nonce& first, const Nonce& second) {
  Writer w;
  w.PutString("gemini-transport-auth-v1");
  w.PutString(role);
  w.PutString(job);
  w.PutRaw(first.data(), first.size());
  w.PutRaw(second.data(), second.size());
  Proof out;
  unsigned int len = 0;
  const std::string& msg = w.str();
  if (HMAC(EVP_sha256(), secret.bytes().data(), static_cast<int>(secret.bytes().size()),
           reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out.data(),
           &len) == nullptr ||
      len != out.size())
    return Internal("HMAC-SHA256 failed");
  return out;
}

bool SameProof(const Proof& a, const Proof& b) {
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// kAborted "authentication with <peer> failed: <why>[: <cause>]".
Status AuthFailed(const Connection& conn, const std::string& why, const Status& cause = {}) {
  std::string tail = cause.ok() ? "" : ": " + cause.message();
  return Aborted("authentication with " + conn.peer() + " failed: " + why + tail);
}

// Receives a fixed-size message; a failure becomes AuthFailed(why).
Status RecvMessage(Connection& conn, void* buf, size_t n, Deadline deadline,
                   const std::string& why) {
  Status s = conn.RecvAll(buf, n, deadline);
  return s.ok() ? s : AuthFailed(conn, why, s);
}

Status SendMessage(Connection& conn, const std::string& bytes, Deadline deadline,
                   const std::string& why) {
  Status s = conn.SendAll(bytes.data(), bytes.size(), deadline);
  return s.ok() ? s : AuthFailed(conn, why, s);
}

// [magic][version][nonce], followed by the proof when there is one.
std::string Hello(const Nonce& nonce, const Proof* proof) {
  Writer w;
  w.PutU32(kHelloMagic);
  w.PutU32(kVersion);
  w.PutRaw(nonce.data(), nonce.size());
  if (proof != nullptr) w.PutRaw(proof->data(), proof->size());
  return w.Take();
}

// Parses a hello of either side; proof is null for the client's.
bool ParseHello(std::string_view bytes, Nonce* nonce, Proof* proof) {
  Reader r(bytes);
  uint32_t magic = 0, version = 0;
  return r.GetU32(&magic) && r.GetU32(&version) && magic == kHelloMagic && version == kVersion &&
         r.GetRaw(nonce->data(), nonce->size()) &&
         (proof == nullptr || r.GetRaw(proof->data(), proof->size())) && r.done();
}

// Checks `proof` against the one `role` must have computed.
Status Verify(const Connection& conn, const JobSecret& secret, std::string_view role,
              std::string_view job, const Nonce& first, const Nonce& second, const Proof& proof) {
  GEMINI_ASSIGN_OR_RETURN(Proof expected, ComputeProof(secret, role, job, first, second));
  if (SameProof(expected, proof)) return Status::Ok();
  return AuthFailed(conn,
                    "the " + std::string(role) +
                        "'s proof does not match ours (the two sides differ in secret or job)");
}

Status RunClient(Connection& conn, const JobSecret& secret, std::string_view job,
                 Deadline deadline) {
  GEMINI_ASSIGN_OR_RETURN(Nonce client_nonce, RandomNonce());
  GEMINI_RETURN_IF_ERROR(
      SendMessage(conn, Hello(client_nonce, nullptr), deadline, "sending the hello"));
  std::string reply(kServerHelloBytes, '\0');
  GEMINI_RETURN_IF_ERROR(
      RecvMessage(conn, reply.data(), reply.size(), deadline, "no hello from the server"));
  Nonce server_nonce;
  Proof server_proof;
  if (!ParseHello(reply, &server_nonce, &server_proof))
    return AuthFailed(conn, "the server is not a gemini peer of this version");
  GEMINI_RETURN_IF_ERROR(
      Verify(conn, secret, "server", job, client_nonce, server_nonce, server_proof));
  GEMINI_ASSIGN_OR_RETURN(Proof proof,
                          ComputeProof(secret, "client", job, server_nonce, client_nonce));
  std::string proof_bytes(proof.begin(), proof.end());
  GEMINI_RETURN_IF_ERROR(SendMessage(conn, proof_bytes, deadline, "sending our proof"));
  uint32_t accept = 0;
  GEMINI_RETURN_IF_ERROR(
      RecvMessage(conn, &accept, sizeof(accept), deadline, "the server did not accept our proof"));
  if (accept != kAcceptMagic) return AuthFailed(conn, "bad accept message from the server");
  return Status::Ok();
}

Status RunServer(Connection& conn, const JobSecret& secret, std::string_view job,
                 Deadline deadline) {
  std::string hello(kClientHelloBytes, '\0');
  GEMINI_RETURN_IF_ERROR(
      RecvMessage(conn, hello.data(), hello.size(), deadline, "no hello from the client"));
  Nonce client_nonce;
  if (!ParseHello(hello, &client_nonce, nullptr))
    return AuthFailed(conn, "the client is not a gemini peer of this version");
  GEMINI_ASSIGN_OR_RETURN(Nonce server_nonce, RandomNonce());
  GEMINI_ASSIGN_OR_RETURN(Proof proof,
                          ComputeProof(secret, "server", job, client_nonce, server_nonce));
  GEMINI_RETURN_IF_ERROR(
      SendMessage(conn, Hello(server_nonce, &proof), deadline, "sending the hello"));
  Proof client_proof;
  GEMINI_RETURN_IF_ERROR(RecvMessage(conn, client_proof.data(), client_proof.size(), deadline,
                                     "the client did not prove itself"));
  GEMINI_RETURN_IF_ERROR(
      Verify(conn, secret, "client", job, server_nonce, client_nonce, client_proof));
  std::string accept(reinterpret_cast<const char*>(&kAcceptMagic), sizeof(kAcceptMagic));
  return SendMessage(conn, accept, deadline, "sending the accept");
}

}  // namespace

JobSecret::~JobSecret() { OPENSSL_cleanse(bytes_.data(), bytes_.size()); }

Result<JobSecret> JobSecret::FromBytes(std::string bytes) {
  if (bytes.size() < kMinBytes || bytes.size() > kMaxBytes) {
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return InvalidArgument("a job secret must have " + std::to_string(kMinBytes) + " to " +
                           std::to_string(kMaxBytes) +
                           " bytes (e.g. `head -c 32 /dev/urandom | base64`)");
  }
  return JobSecret(std::move(bytes));
}

Result<JobSecret> JobSecret::FromFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening the secret file " + path, errno);
  struct stat st {};
  Status s;
  if (fstat(fd, &st) != 0)
    s = ErrnoStatus("stat " + path, errno);
  else if (!S_ISREG(st.st_mode))
    s = FailedPrecondition("secret file " + path + " is not a regular file");
  else if (st.st_uid != geteuid() && st.st_uid != 0)
    s = FailedPrecondition("secret file " + path + " is owned by another user");
  else if ((st.st_mode & 077) != 0)
    s = FailedPrecondition("secret file " + path + " is accessible by group or others; chmod 600 " +
                           path);
  else if (st.st_size > static_cast<off_t>(kMaxBytes + 64))
    s = InvalidArgument("secret file " + path + " is too large");
  std::string bytes(s.ok() ? static_cast<size_t>(st.st_size) : 0, '\0');
  if (s.ok() && read(fd, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size()))
    s = ErrnoStatus("reading " + path, errno);
  close(fd);
  if (!s.ok()) return s;
  return FromBytes(TrimTrailingSpace(std::move(bytes)));
}

Result<JobSecret> JobSecret::FromEnv() {
  const char* v = std::getenv(kEnvVar);
  if (v == nullptr) return NotFound(std::string("no job secret: ") + kEnvVar + " is not set");
  return FromBytes(TrimTrailingSpace(v));
}

Result<JobSecret> JobSecret::Load(const std::string& path) {
  return path.empty() ? FromEnv() : FromFile(path);
}

Status ClientHandshake(Connection& conn, const JobSecret& secret, std::string_view job,
                       Deadline deadline) {
  Status s = RunClient(conn, secret, job, deadline);
  if (!s.ok()) conn.Fail(s);
  return s;
}

Status ServerHandshake(Connection& conn, const JobSecret& secret, std::string_view job,
                       Deadline deadline) {
  Status s = RunServer(conn, secret, job, deadline);
  if (!s.ok()) conn.Fail(s);
  return s;
}

}  // namespace gemini::transport
