// The access log's `error` field: a short machine code saying why edgeguard answered a request itself or why
// the upstream exchange failed, so an operator reading one log line knows which check or which failure ended
// the request ("allowlist", "rate_limited", "upstream_refused", "bad_request: missing Host header", ...).
#pragma once

#include <string>
#include <string_view>

namespace edgeguard {

// Appends the code for an error response edgeguard chose (`status` plus the message its JSON body carries).
// Client-side framing problems keep their message after the code ("bad_request: <what>"); upstream failures
// are told apart by cause (refused, reset, timeout, invalid response).
void append_error_reason(std::string& out, int status, std::string_view message);

}  // namespace edgeguard
