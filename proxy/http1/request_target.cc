#include "proxy/http1/request_target.h"

#include <arpa/inet.h>

#include <array>
#include <cstdint>
#include <string>

namespace edgeguard {

namespace {

constexpr bool is_hex(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

constexpr bool is_alnum(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

// RFC 3986 pchar plus "/" and "?", less "%" (checked with its two digits).
constexpr std::array<bool, 256> make_target_table() {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) {
        const auto u = static_cast<unsigned char>(c);
        t[c] = is_alnum(u);
    }
    for (char c : std::string_view("-._~!$&'()*+,;=:@/?")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> kTargetByte = make_target_table();

// RFC 3986 unreserved: what a reg-name may hold besides percent-encodings. A table: every request's Host
// goes through it byte by byte.
constexpr std::array<bool, 256> make_reg_name_table() {
    std::array<bool, 256> t{};
    for (int c = 0; c < 256; ++c) t[c] = is_alnum(static_cast<unsigned char>(c));
    for (char c : std::string_view("-._~")) t[static_cast<unsigned char>(c)] = true;
    return t;
}
constexpr std::array<bool, 256> kRegNameByte = make_reg_name_table();

bool is_reg_name_byte(unsigned char c) { return kRegNameByte[c]; }

// reg-name (and IPv4address, which is a reg-name by shape): unreserved characters and percent-encodings.
bool is_valid_reg_name(std::string_view host) {
    for (size_t i = 0; i < host.size(); ++i) {
        const auto c = static_cast<unsigned char>(host[i]);
        if (kRegNameByte[c]) continue;
        if (c == '%') {
            if (i + 2 >= host.size() || !is_hex(host[i + 1]) || !is_hex(host[i + 2])) return false;
            i += 2;
        } else if (!is_reg_name_byte(c)) {
            return false;
        }
    }
    return true;
}

// "[" ( IPv6address / IPvFuture ) "]" without the brackets. Zone identifiers are not part of RFC 3986.
bool is_valid_ip_literal(std::string_view inside) {
    if (inside.empty()) return false;
    if (inside.front() == 'v' || inside.front() == 'V') {
        size_t i = 1;
        while (i < inside.size() && is_hex(inside[i])) ++i;
        if (i == 1 || i >= inside.size() || inside[i] != '.' || i + 1 == inside.size()) return false;
        for (++i; i < inside.size(); ++i) {
            const auto c = static_cast<unsigned char>(inside[i]);
            if (!is_reg_name_byte(c) && std::string_view("!$&'()*+,;=:").find(c) == std::string_view::npos)
                return false;
        }
        return true;
    }
    if (inside.size() > 45) return false;  // INET6_ADDRSTRLEN - 1
    char text[46];
    inside.copy(text, inside.size());
    text[inside.size()] = '\0';
    in6_addr addr;
    return inet_pton(AF_INET6, text, &addr) == 1;
}

bool is_valid_port(std::string_view port) {
    if (port.size() > 5) return false;
    uint32_t value = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<uint32_t>(c - '0');
    }
    return value <= 65535;
}

}  // namespace

bool is_valid_target_bytes(std::string_view target) {
    for (size_t i = 0; i < target.size(); ++i) {
        const auto c = static_cast<unsigned char>(target[i]);
        if (kTargetByte[c]) continue;
        if (c != '%' || i + 2 >= target.size() || !is_hex(target[i + 1]) || !is_hex(target[i + 2])) return false;
        i += 2;
    }
    return true;
}

bool is_valid_authority(std::string_view authority) {
    std::string_view host = authority;
    std::string_view port;
    bool has_port = false;
    if (!authority.empty() && authority.front() == '[') {
        const size_t close = authority.find(']');
        if (close == std::string_view::npos) return false;
        if (!is_valid_ip_literal(authority.substr(1, close - 1))) return false;
        const std::string_view rest = authority.substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return false;
            port = rest.substr(1);
            has_port = true;
        }
        return !has_port || is_valid_port(port);
    }
    const size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        has_port = true;
    }
    if (has_port && (host.empty() || !is_valid_port(port))) return false;
    return is_valid_reg_name(host);
}

}  // namespace edgeguard
