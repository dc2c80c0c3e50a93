// Latin-1 strings as byte carriers: posthog-js (fflate strFromU8(bytes, true)) turns each byte into the
// code point of the same value, and that string then travels inside JSON as UTF-8.
#pragma once

#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

// UTF-8 text whose code points are all <= U+00FF -> one byte per code point. Anything else -> 400.
DecodeResult<std::string> latin1_to_bytes(std::string_view utf8);
bool latin1_to_bytes_into(std::string_view utf8, std::string& out);

// Each byte -> the code point of the same value, encoded as UTF-8 (bytes >= 0x80 take two).
std::string bytes_to_latin1(std::string_view bytes);

}  // namespace edgeguard::privacy
