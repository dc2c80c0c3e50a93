// Responses edgeguard writes itself: short JSON bodies with the status they describe, so a client (or an
// operator reading curl output) sees why a request ended here instead of reaching PostHog.
#pragma once

#include <string>
#include <string_view>

namespace edgeguard {

// Standard reason phrase for a status code ("Bad Gateway"); "Unknown" for codes we never emit or relay.
std::string_view reason_phrase(int status);

// Appends a complete response: status line, Content-Type: application/json, Content-Length, and
// `Connection: close` when `close_connection` (framing of the rest of the request unknown, or shutdown).
// Body: {"error":"<message>","status":N}.
void append_error_response(std::string& out, int status, std::string_view message, bool close_connection);

// Appends a complete response with a caller-built JSON body (privacy rejections use capture's shape).
void append_json_response(std::string& out, int status, std::string_view json_body, bool close_connection,
                          std::string_view extra_headers = {});

// {"status":N,"code":"...","error":"..."}: capture's rejection shape, used for privacy verdicts.
std::string privacy_rejection_body(int status, std::string_view code, std::string_view error);

// Appends `text` as the inside of a JSON string literal (quotes not included).
void append_json_escaped(std::string& out, std::string_view text);

}  // namespace edgeguard
