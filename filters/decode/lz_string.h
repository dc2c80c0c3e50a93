// lz-string 1.5.0 (pieroxy) `compressToBase64` / `decompressFromBase64`, the `compression=lz64` format of
// legacy posthog-js "form" mode. lz-string works on UTF-16 code units; we decode straight to UTF-8. The
// compressor, which only tests and benchmarks need, is tests/unit/filters/lz_string_compressor.h.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

// Decodes lz-string base64 text to UTF-8. UTF-16 surrogate pairs become 4-byte UTF-8; a lone surrogate is
// 400 (capture's String::from_utf16 refuses it too). Output over `max_output` bytes -> 413, checked as it
// grows: the output buffer never exceeds the cap, and the dictionary is spans into the output (8 bytes
// per entry, bounded by the input size), never copies of strings.
// Bad alphabet, empty input, truncated stream or a bad back-reference -> 400.
DecodeResult<std::string> lz_string_decompress_from_base64(std::string_view text, uint64_t max_output);

}  // namespace edgeguard::privacy
