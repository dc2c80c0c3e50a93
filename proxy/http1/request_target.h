// What may stand in a request target and in an authority (Host, an absolute-form target's host, and later
// HTTP/2's :authority), by RFC 3986's grammar. A lenient backend reads bytes the grammar forbids in its own
// way (`\` as a path separator, raw UTF-8 under another decoding), so such requests are refused with 400,
// never repaired: routing and the upstream must see one and the same path (RFC 9112 §3.2).
#pragma once

#include <string_view>

namespace edgeguard {

// Every byte is one RFC 3986 allows in a path or query (unreserved, sub-delims, ":", "@", "/", "?") or starts a
// complete percent-encoding "%HH". Bytes >= 0x80, controls, space, `\ " < > ^ ` { | }` and "#" are refused.
bool is_valid_target_bytes(std::string_view target);

// host [ ":" port ] with host a bracketed IPv6 literal (or IPvFuture), an IPv4 address or a reg-name of
// letters, digits, "-", ".", "_", "~" and percent-encodings; port at most 65535. No userinfo, no second port,
// no list. An empty value is valid (RFC 9112 §3.2: an empty Host for a target without authority).
bool is_valid_authority(std::string_view authority);

}  // namespace edgeguard
