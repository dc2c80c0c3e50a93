// The text an action writes in place of a value or a matched span. Pure functions: no JSON here, the
// walker escapes and splices the result.
#pragma once

#include <string>
#include <string_view>

#include "filters/rules_model.h"

namespace edgeguard::privacy {

// "[redacted:<what>]": names the detector (or the rule for key rules), never the value.
std::string redact_placeholder(std::string_view what);
// Every code point but the last `keep_last` becomes '*'; separators are masked too so the shape leaks less.
std::string mask_text(std::string_view text, int keep_last);
// IPv4 /v4_prefix or IPv6 /v6_prefix with host bits zeroed, canonical text. Empty when `text` is not an IP.
std::string truncate_ip(std::string_view text, const IpTruncation& truncation);
// True for a token HmacKey::token produced with key id `id`: hashing it again would break idempotence.
bool looks_like_hash_token(std::string_view text, std::string_view id);
// Appends `text` JSON-escaped (no surrounding quotes).
void append_json_escaped(std::string& out, std::string_view text);
// Valid JSON number grammar (RFC 8259), on the raw token.
bool is_json_number(std::string_view token);
// The value as a latin-1 byte string (code points <= 0xFF become one byte); false when a code point is
// larger or the UTF-8 is malformed. Used for posthog-js's gzip-in-a-string replay fields.
bool utf8_to_latin1(std::string_view utf8, std::string& bytes);
// Inverse of utf8_to_latin1.
void latin1_to_utf8(std::string_view bytes, std::string& utf8);

}  // namespace edgeguard::privacy
