// posthog-js replay "partial compression" (cv: "2024-10", WIRE.md §2.9): FullSnapshot `data` and Mutation /
// StyleSheetRule `texts`, `attributes`, `adds`, `removes` are replaced by
// strFromU8(gzipSync(strToU8(JSON.stringify(x))), true), i.e. gzip bytes carried as a latin-1 string.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

// Field contents after JSON unescaping (what simdjson's get_string() returns) -> the inner JSON text.
// Not latin-1 or not gzip -> 400; inflated size over max_output -> 413; inflated bytes not UTF-8 -> 400.
DecodeResult<std::string> decode_latin1_gzip(std::string_view unescaped,
                                             uint64_t max_output = 100 * 1024 * 1024);

// The inverse: gzip `json` and carry the bytes as a latin-1 string (UTF-8 encoded, not JSON-escaped).
std::string encode_latin1_gzip(std::string_view json);

// Same, as a complete JSON string literal (with quotes) escaped the way JSON.stringify escapes it, ready
// to splice into the rewritten event in place of the original field.
std::string encode_latin1_gzip_json_literal(std::string_view json);

}  // namespace edgeguard::privacy
