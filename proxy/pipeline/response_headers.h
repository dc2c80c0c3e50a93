// Fixed response fields configured per listener and per route (HSTS, X-Content-Type-Options, ...), added to
// the serialized head of a response. A field the response already carries (the upstream's, or one edgeguard
// writes itself such as Content-Type) is kept unless the configured one says `override`.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/access/rate_limiter.h"
#include "proxy/config/config.h"

namespace edgeguard {

// Why `name: value` cannot be a configured response field, or empty when it can: the name must be an
// RFC 9110 token and not one edgeguard owns (framing and hop-by-hop fields); the value must be visible
// ASCII, spaces and tabs inside only.
std::string response_header_problem(std::string_view name, std::string_view value);

// Adds the route's fields, then the listener's fields whose names the route does not set, to `head` (a
// complete HTTP/1.1 head ending in the blank line). Either list may be null. Nothing is allocated when both
// are empty.
void apply_response_headers(std::string& head, const std::vector<ResponseHeaderConfig>* listener_fields,
                            const std::vector<ResponseHeaderConfig>* route_fields);

// Adds the client's standing with its rate limit (RateLimit-Limit, -Remaining, -Reset) before the blank line
// of `head`; nothing when `decision` is null or its limit is 0 (no limit on the route).
void append_rate_limit_fields(std::string& head, const RateLimitDecision* decision);

}  // namespace edgeguard
