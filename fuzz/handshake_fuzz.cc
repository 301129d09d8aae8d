// Fuzz target `handshake`: the authenticated handshake (src/transport/handshake.h).
//
// Input: [u8 mode][peer bytes...]. Bit 0 picks the side under test: the
// server parsing a client's hello and proof, or the client parsing the
// server's hello and accept. The peer bytes are everything the other side
// "sent". With bit 1 set, this target also plays a peer that knows the
// secret: it answers the nonce the code under test sent with a correct proof
// (computed here with OpenSSL, as handshake.cc does), so the fuzzer gets past
// the proof check to the messages after it. Any failure must be kAborted with
// the connection failed; success is only possible with a correct proof.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <string>

#include "common/wire.h"
#include "fuzz_check.h"
#include "memory_connection.h"
#include "transport/handshake.h"

using namespace gemini;

namespace {

constexpr size_t kNonce = 32;
constexpr uint32_t kHelloMagic = 0x48414D47;  // "GMAH"
const char kJob[] = "fuzz-job";

const transport::JobSecret& Secret() {
  static const auto* secret =
      new transport::JobSecret(transport::JobSecret::FromBytes("fuzz-secret-0123456789").value());
  return *secret;
}

// HMAC-SHA256(secret, "gemini-transport-auth-v1" | role | job | first | second).
std::string Proof(std::string_view role, std::string_view first, std::string_view second) {
  Writer w;
  w.PutString("gemini-transport-auth-v1");
  w.PutString(role);
  w.PutString(kJob);
  w.PutRaw(first.data(), first.size());
  w.PutRaw(second.data(), second.size());
  unsigned char out[32];
  unsigned int len = 0;
  auto key = Secret().bytes();
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(w.str().data()), w.str().size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const bool server = data[0] & 1;
  const bool honest = data[0] & 2;
  std::string_view peer_bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  fuzz::MemoryConnection::Hook hook;
  if (honest && server) {
    // Before the server reads the client's proof (its 2nd read): insert a
    // correct one over the nonces of the hello it got and the one it sent.
    hook = [](int recv, const std::string& sent, std::string& in, size_t pos) {
      if (recv != 1 || sent.size() < 8 + kNonce || pos < 8 + kNonce) return;
      std::string_view ns(sent.data() + 8, kNonce), nc(in.data() + 8, kNonce);
      in.insert(pos, Proof("client", ns, nc));
    };
  } else if (honest) {
    // Before the client reads the server's hello (its 1st read): insert a
    // hello with a nonce from the input and a correct proof over both nonces.
    hook = [](int recv, const std::string& sent, std::string& in, size_t pos) {
      if (recv != 0 || sent.size() < 8 + kNonce) return;
      std::string ns = in.substr(pos, kNonce);
      ns.resize(kNonce, 'n');
      Writer w;
      w.PutU32(kHelloMagic);
      w.PutU32(1);
      w.PutRaw(ns.data(), ns.size());
      std::string proof = Proof("server", std::string_view(sent.data() + 8, kNonce), ns);
      w.PutRaw(proof.data(), proof.size());
      in.replace(pos, std::min(in.size() - pos, kNonce), w.str());
    };
  }
  fuzz::MemoryConnection conn(peer_bytes, hook);
  auto deadline = std::chrono::steady_clock::now();
  Status st = server ? transport::ServerHandshake(conn, Secret(), kJob, deadline)
                     : transport::ClientHandshake(conn, Secret(), kJob, deadline);
  if (st.ok()) {
    FUZZ_CHECK(honest, "a handshake succeeded without a correct proof");
  } else {
    FUZZ_CHECK(st.code() == Code::kAborted, st.ToString().c_str());
    FUZZ_CHECK(!conn.status().ok(), "a failed handshake left the connection usable");
  }
  return 0;
}
