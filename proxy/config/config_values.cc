#include "proxy/config/config_values.h"

#include <cmath>
#include <limits>

#include "proxy/access/cidr.h"

namespace edgeguard {

namespace {

// Splits "12.5ms" into mantissa 125, 1 fractional digit and unit "ms". Exact integer arithmetic, so "0.3s"
// is 300 ms and not 300.00000000000006. Only decimal digits with at most one '.', no sign, no exponent.
struct Number {
    uint64_t mantissa = 0;
    uint32_t frac_digits = 0;
    std::string_view unit;
};

std::optional<Number> split_number(std::string_view text) {
    Number n;
    size_t i = 0;
    bool digits = false;
    bool dot = false;
    for (; i < text.size(); ++i) {
        const char c = text[i];
        if (c >= '0' && c <= '9') {
            digits = true;
            if (n.mantissa > (std::numeric_limits<uint64_t>::max() - 9) / 10) return std::nullopt;
            n.mantissa = n.mantissa * 10 + static_cast<uint64_t>(c - '0');
            if (dot) ++n.frac_digits;
        } else if (c == '.' && !dot) {
            dot = true;
        } else {
            break;
        }
    }
    if (!digits) return std::nullopt;
    n.unit = text.substr(i);
    while (!n.unit.empty() && n.unit.front() == ' ') n.unit.remove_prefix(1);
    return n;
}

// mantissa * multiplier / 10^frac_digits when that is a whole number that fits; nullopt otherwise.
std::optional<uint64_t> scale_exact(const Number& n, uint64_t multiplier) {
    unsigned __int128 v = static_cast<unsigned __int128>(n.mantissa) * multiplier;
    for (uint32_t d = 0; d < n.frac_digits; ++d) {
        if (v % 10 != 0) return std::nullopt;
        v /= 10;
    }
    if (v > static_cast<unsigned __int128>(std::numeric_limits<int64_t>::max())) return std::nullopt;
    return static_cast<uint64_t>(v);
}

double to_double(const Number& n) {
    return static_cast<double>(n.mantissa) / std::pow(10.0, n.frac_digits);
}

bool valid_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253 || host.front() == '-' || host.front() == '.') return false;
    for (char c : host) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '-' || c == '_' || c == '.';
        if (!ok) return false;
    }
    return true;
}

}  // namespace

std::optional<Millis> parse_duration(std::string_view text) {
    auto n = split_number(text);
    if (!n) return std::nullopt;
    uint64_t ms_per_unit = 0;
    if (n->unit == "ms") {
        ms_per_unit = 1;
    } else if (n->unit == "s") {
        ms_per_unit = 1000;
    } else if (n->unit == "m") {
        ms_per_unit = 60'000;
    } else if (n->unit == "h") {
        ms_per_unit = 3'600'000;
    } else {
        return std::nullopt;
    }
    // A fraction of a millisecond cannot be honoured by our timers; refuse it rather than round silently.
    auto ms = scale_exact(*n, ms_per_unit);
    if (!ms) return std::nullopt;
    return Millis(static_cast<int64_t>(*ms));
}

std::optional<uint64_t> parse_size(std::string_view text) {
    auto n = split_number(text);
    if (!n) return std::nullopt;
    uint64_t mult = 0;
    if (n->unit.empty() || n->unit == "B") {
        mult = 1;
    } else if (n->unit == "KB") {
        mult = 1000;
    } else if (n->unit == "MB") {
        mult = 1000 * 1000;
    } else if (n->unit == "GB") {
        mult = 1000 * 1000 * 1000;
    } else if (n->unit == "KiB") {
        mult = 1024;
    } else if (n->unit == "MiB") {
        mult = 1024 * 1024;
    } else if (n->unit == "GiB") {
        mult = 1024 * 1024 * 1024;
    } else {
        return std::nullopt;
    }
    return scale_exact(*n, mult);
}

std::optional<double> parse_rate(std::string_view text) {
    auto n = split_number(text);
    if (!n || n->mantissa == 0) return std::nullopt;
    const double per = to_double(*n);
    if (n->unit.empty() || n->unit == "/s") return per;
    if (n->unit == "/m") return per / 60;
    if (n->unit == "/h") return per / 3600;
    return std::nullopt;
}

std::optional<HostPort> parse_host_port(std::string_view text) {
    std::string_view host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return std::nullopt;
        host = text.substr(1, close - 1);
        auto ip = IpAddress::parse(host);
        if (!ip || host.find(':') == std::string_view::npos) return std::nullopt;
        port_text = text.substr(close + 2);
    } else {
        const size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return std::nullopt;
        host = text.substr(0, colon);
        // An unbracketed IPv6 literal is ambiguous ("::1:80"); demand brackets.
        if (host.find(':') != std::string_view::npos || !valid_host_name(host)) return std::nullopt;
        port_text = text.substr(colon + 1);
    }
    if (port_text.empty() || port_text.size() > 5) return std::nullopt;
    uint32_t port = 0;
    for (char c : port_text) {
        if (c < '0' || c > '9') return std::nullopt;
        port = port * 10 + static_cast<uint32_t>(c - '0');
    }
    if (port == 0 || port > 65535) return std::nullopt;
    return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

bool valid_redirect_target(std::string_view text) {
    if (text.empty()) return false;
    // append, not "h" + string: GCC 12 at -O3 reports a false -Wrestrict overlap in operator+(const char*, string&&).
    if (text.front() == ':') return parse_host_port(std::string("h").append(text)).has_value();
    if (text.front() == '[') {
        if (text.back() == ']') {
            auto ip = IpAddress::parse(text.substr(1, text.size() - 2));
            return ip.has_value() && text.find(':') != std::string_view::npos;
        }
        return parse_host_port(text).has_value();
    }
    if (text.find(':') != std::string_view::npos) return parse_host_port(text).has_value();
    return valid_host_name(text);
}

}  // namespace edgeguard
