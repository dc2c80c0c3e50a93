#include "proxy/pipeline/error_reason.h"

namespace edgeguard {

namespace {

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// Upstream failures are reported as 502/504 with a human message; the code names the cause class.
std::string_view upstream_failure_code(int status, std::string_view message) {
    if (status == 504 || contains(message, "timeout")) return "upstream_timeout";
    if (contains(message, "refused")) return "upstream_refused";
    if (contains(message, "invalid")) return "upstream_invalid_response";
    if (contains(message, "reset") || contains(message, "closed")) return "upstream_reset";
    return "upstream_error";
}

}  // namespace

void append_error_reason(std::string& out, int status, std::string_view message) {
    std::string_view code;
    bool with_message = false;
    switch (status) {
        case 400: code = "bad_request"; with_message = true; break;
        case 403: code = "allowlist"; break;
        case 404: code = "no_route"; break;
        case 405: code = "method_not_allowed"; break;
        case 408: code = "client_timeout"; with_message = true; break;
        case 413: code = "body_too_large"; break;
        case 414: code = "uri_too_long"; break;
        case 417: code = "expectation_failed"; break;
        case 429: code = "rate_limited"; break;
        case 431: code = "headers_too_large"; break;
        case 501: code = "not_implemented"; with_message = true; break;
        case 505: code = "http_version_not_supported"; break;
        case 503: code = "no_upstream"; break;
        case 502:
        case 504: code = upstream_failure_code(status, message); break;
        default: code = "error"; with_message = true; break;
    }
    out += code;
    if (with_message && !message.empty()) {
        out += ": ";
        out += message;
    }
}

}  // namespace edgeguard
