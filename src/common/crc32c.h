// CRC32C (Castagnoli), the checksum on every checkpoint chunk, manifest and
// persisted file. Backed by ISA-L (runtime-selected SSE4.2/PCLMUL/AVX-512
// code). Standard CRC32C: Crc32c("123456789") == 0xE3069283.
// All functions are pure and thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gemini {

// CRC32C of [data, data+len), continuing from `crc` (the value a previous call
// returned; 0 to start).
uint32_t Crc32c(const void* data, size_t len, uint32_t crc = 0);

// Copies len bytes from src to dst and returns the CRC32C of them, continuing
// from `crc`. Works in cache-sized pieces: each is checksummed (which pulls it
// into cache) and then written out with non-temporal stores, so every byte is
// read from memory once and written once, as by a large memcpy.
uint32_t CopyWithCrc32c(void* dst, const void* src, size_t len, uint32_t crc = 0);

// Copies len bytes from src to dst and returns the CRC32C of the bytes written
// to dst, continuing from `crc`: for reads out of memory that another process
// may change meanwhile (a slot reused by a newer save), the checksum then
// vouches for exactly what the caller got, never for bytes read a moment
// earlier. Works in cache-sized pieces: each is copied with plain stores (so
// it stays in cache) and then checksummed from dst.
uint32_t CopyOutWithCrc32c(void* dst, const void* src, size_t len, uint32_t crc = 0);

}  // namespace gemini
