// CRC32C computed in pieces and combined: the arithmetic of the GPU checksum
// kernel (src/gpu/chunk_crc_kernel.cu), kept here so the CPU build tests it.
//
// Let g(s, A) be the CRC register after feeding bytes A to state s (reflected
// CRC32C, no pre/post inversion); then Crc32c(A) = ~g(~0, A). g is linear in
// (s, A) jointly, so for a concatenation
//     g(s, A || B) = g(0, B) ^ Z_|B|(g(s, A)),
// where Z_L(s) = g(s, L zero bytes) is a 32x32 matrix over GF(2). Pieces can
// therefore be checksummed independently (g(0, piece), in parallel) and
// folded in order with Z, which is applied as the product of the matrices
// Z_{2^k} for the set bits k of the length. Everything is host- and
// device-callable; Tables::Fill() runs on the host.
#pragma once

#include <cstdint>

#if defined(__CUDACC__)
#define GEMINI_HD __host__ __device__
#else
#define GEMINI_HD
#endif

namespace gemini::crc32c_pieces {

constexpr uint32_t kPolyReflected = 0x82F63B78u;
constexpr int kShiftLevels = 40;  // Z_{2^k} for k < 40: pieces up to 1 TiB.

struct Tables {
  uint32_t slice[4][256];            // slicing-by-4 tables; slice[0] is bytewise
  uint32_t shift[kShiftLevels][32];  // shift[k][b] = Z_{2^k}(1 << b)

  void Fill() {
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ ((c & 1) ? kPolyReflected : 0);
      slice[0][i] = c;
    }
    for (int t = 1; t < 4; ++t)
      for (uint32_t i = 0; i < 256; ++i)
        slice[t][i] = (slice[t - 1][i] >> 8) ^ slice[0][slice[t - 1][i] & 0xff];
    for (int b = 0; b < 32; ++b) {  // Z_1: one zero byte.
      uint32_t s = 1u << b;
      shift[0][b] = slice[0][s & 0xff] ^ (s >> 8);
    }
    for (int k = 1; k < kShiftLevels; ++k)  // Z_{2^k} = Z_{2^(k-1)} applied twice.
      for (int b = 0; b < 32; ++b) shift[k][b] = Apply(shift[k - 1], shift[k - 1][b]);
  }

  GEMINI_HD static uint32_t Apply(const uint32_t* m, uint32_t s) {
    uint32_t r = 0;
    for (int b = 0; b < 32; ++b)
      if ((s >> b) & 1) r ^= m[b];
    return r;
  }
};

// Z_n(s): the state after n zero bytes.
GEMINI_HD inline uint32_t Shift(const uint32_t (*shift)[32], uint32_t s, uint64_t n) {
  for (int k = 0; n != 0 && k < kShiftLevels; ++k, n >>= 1)
    if (n & 1) s = Tables::Apply(shift[k], s);
  return s;
}

// g(s, p[0..n)) bytewise.
GEMINI_HD inline uint32_t Feed(const uint32_t (*slice)[256], uint32_t s, const uint8_t* p,
                               uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) s = slice[0][(s ^ p[i]) & 0xff] ^ (s >> 8);
  return s;
}

// g(s, one little-endian 32-bit word), slicing-by-4.
GEMINI_HD inline uint32_t FeedWord(const uint32_t (*slice)[256], uint32_t s, uint32_t w) {
  s ^= w;
  return slice[3][s & 0xff] ^ slice[2][(s >> 8) & 0xff] ^ slice[1][(s >> 16) & 0xff] ^
         slice[0][s >> 24];
}

// Folds piece states in order: given g(0, piece_i) and len_i, Crc32c of the
// concatenation.
struct Folder {
  uint32_t state = 0xffffffffu;
  GEMINI_HD void Add(const uint32_t (*shift)[32], uint32_t piece_raw, uint64_t piece_len) {
    state = piece_raw ^ Shift(shift, state, piece_len);
  }
  GEMINI_HD uint32_t Crc() const { return ~state; }
};

}  // namespace gemini::crc32c_pieces
