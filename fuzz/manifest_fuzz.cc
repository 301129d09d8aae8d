// Fuzz target `manifest`: Manifest::Decode (src/store/manifest.h).
//
// Input: [u8 mode][encoded manifest]. With bit 0 of mode set, this target
// first rewrites the trailing CRC32C to match (so mutations get past the
// checksum to the structural checks behind it). Bad input must be an error
// Result; an accepted manifest must pass Validate(), re-encode to exactly
// the bytes decoded (the format has one encoding per manifest) and decode
// again.
#include <cstdint>
#include <string>

#include "common/crc32c.h"
#include "fuzz_check.h"
#include "store/manifest.h"

using namespace gemini;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  if ((data[0] & 1) && bytes.size() >= 4) {
    uint32_t crc = Crc32c(bytes.data(), bytes.size() - 4);
    bytes.replace(bytes.size() - 4, 4, reinterpret_cast<const char*>(&crc), 4);
  }
  auto m = Manifest::Decode(bytes);
  if (!m.ok()) return 0;
  FUZZ_CHECK(m->Validate().ok(), "Decode accepted a manifest that Validate refuses");
  // Derived values must not trap on anything Decode accepts.
  (void)m->NumChunks();
  for (const auto& e : m->entries) (void)e.TensorBytes();
  std::string again = m->Encode();
  FUZZ_CHECK(again == bytes, "Encode(Decode(bytes)) != bytes");
  auto m2 = Manifest::Decode(again);
  FUZZ_CHECK(m2.ok(), "Decode refused Encode's output");
  FUZZ_CHECK(m2->Encode() == again, "second round trip differs");
  return 0;
}
