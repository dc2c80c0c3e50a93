// application/x-www-form-urlencoded, read the way capture's serde_urlencoded reads it: `&`-separated
// pairs, `+` is a space, `%XX` decoded, malformed escapes kept literally, keys compared after decoding.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

// Percent-decodes `in`; `plus_is_space` for form/query encoding. A `%` not followed by two hex digits is
// kept as is (as form_urlencoded does).
std::string percent_decode(std::string_view in, bool plus_is_space = true);

// The still-encoded value of `key` in a form or query string; nullopt when absent. A key present more than
// once is an error: serde_urlencoded refuses duplicate fields, and inspecting one copy while the service
// reads another would be a bypass.
DecodeResult<std::optional<std::string_view>> find_form_value(std::string_view form, std::string_view key);

// Capture's "looks like a form" test (WIRE.md §2.2): `data=`, `_=`, `ip=` or `compression=` at the start
// or right after a `&`, within the first 128 bytes.
bool looks_like_form(std::string_view payload);

// URL decoding turns base64's `+` into spaces; capture turns them back when the text is otherwise pure
// base64 alphabet. Returns true when it repaired something.
bool repair_base64_spaces(std::string& value);

// `query` with every pair whose decoded key is one of `keys` removed, other pairs byte-identical and in
// order. Used when a rewritten payload is forwarded as plain JSON (drop `data`, `compression`).
std::string query_without_keys(std::string_view query, std::initializer_list<std::string_view> keys);

}  // namespace edgeguard::privacy
