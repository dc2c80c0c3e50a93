// gzip (RFC 1952): a capped inflate that never allocates past its cap (libdeflate for a well-formed member,
// zlib streaming for everything else, which also gives every error its status), and a zlib deflate for
// re-encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"
#include "filters/decode/padded_text.h"

namespace edgeguard::privacy {

// The two gzip magic bytes 1f 8b (capture's has_gzip_magic_header).
bool has_gzip_magic(std::string_view bytes);

// Inflates exactly one gzip member. Output beyond `max_output` bytes -> 413 (inflation stops there, so a
// bomb costs at most max_output plus one 64 KiB chunk). Bad header, bad data, CRC/length mismatch,
// truncation, or bytes after the member -> 400.
DecodeResult<std::string> gzip_inflate(std::string_view gz, uint64_t max_output);

// The fast path of gzip_inflate into `out` (text followed by zeroed padding, no zero-fill, no copy): true
// when `gz` is one well-formed member whose output fits under `max_output`. False changes nothing the caller
// relies on (what `out` held is gone): the caller then calls gzip_inflate, whose verdict and error are the
// only ones a client sees.
bool gzip_inflate_padded(std::string_view gz, uint64_t max_output, PaddedText& out);

// A single gzip member (mtime 0, OS unknown), zlib level `level` (1-9).
std::string gzip_deflate(std::string_view bytes, int level = 6);

}  // namespace edgeguard::privacy
