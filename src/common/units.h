// Byte sizes for humans: ParseBytes("8GiB") == 8 << 30; FormatBytes(1536) == "1.5 KiB".
// Accepts B, K/KB/KiB, M/MB/MiB, G/GB/GiB, T/TB/TiB (all binary), case-insensitive.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"

namespace gemini {

Result<uint64_t> ParseBytes(const std::string& text);
std::string FormatBytes(uint64_t bytes);

}  // namespace gemini
