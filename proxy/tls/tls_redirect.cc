#include "proxy/tls/tls_redirect.h"

#include <algorithm>

namespace edgeguard {
namespace {

bool is_reg_name_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

bool is_ipv6_literal_char(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == ':' || c == '.';
}

bool all_digits(std::string_view s) {
    return !s.empty() && s.size() <= 5 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Splits "host[:port]" / "[v6][:port]" and returns the host part, or nullopt when malformed.
std::optional<std::string_view> host_of(std::string_view authority) {
    if (authority.empty() || authority.size() > 255) return std::nullopt;
    std::string_view host = authority;
    std::string_view rest;
    if (authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos || close < 2) return std::nullopt;
        host = authority.substr(0, close + 1);
        if (!std::all_of(host.begin() + 1, host.end() - 1, is_ipv6_literal_char)) return std::nullopt;
        rest = authority.substr(close + 1);
    } else {
        const size_t colon = authority.find(':');
        if (colon != std::string_view::npos) {
            host = authority.substr(0, colon);
            rest = authority.substr(colon);
        }
        if (host.empty() || !std::all_of(host.begin(), host.end(), is_reg_name_char)) return std::nullopt;
    }
    if (!rest.empty() && (rest.front() != ':' || !all_digits(rest.substr(1)))) return std::nullopt;
    return host;
}

bool is_safe_target(std::string_view target) {
    if (target.empty() || target.front() != '/') return false;
    return std::none_of(target.begin(), target.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
}

}  // namespace

std::optional<std::string> https_redirect_location(std::string_view host_header,
                                                   std::string_view request_target,
                                                   std::string_view redirect_https_to) {
    if (!is_safe_target(request_target)) return std::nullopt;
    std::string location = "https://";
    if (!redirect_https_to.empty() && redirect_https_to.front() == ':') {
        const auto host = host_of(host_header);
        if (!host || !all_digits(redirect_https_to.substr(1))) return std::nullopt;
        location += *host;
        if (redirect_https_to != ":443") location += redirect_https_to;
    } else {
        if (!host_of(redirect_https_to)) return std::nullopt;
        location += redirect_https_to;
    }
    location += request_target;
    return location;
}

std::string https_redirect_response(std::string_view location, bool keep_alive) {
    std::string out = "HTTP/1.1 308 Permanent Redirect\r\nLocation: ";
    out += location;
    out += "\r\nContent-Length: 0\r\n";
    if (!keep_alive) out += "Connection: close\r\n";
    out += "\r\n";
    return out;
}

}  // namespace edgeguard
