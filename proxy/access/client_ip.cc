#include "proxy/access/client_ip.h"

namespace edgeguard {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// "1.2.3.4", "1.2.3.4:80", "2001:db8::1", "[2001:db8::1]", "[2001:db8::1]:80".
std::optional<IpAddress> parse_forwarded_entry(std::string_view entry) {
    if (entry.empty()) return std::nullopt;
    if (entry.front() == '[') {
        const size_t close = entry.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        return IpAddress::parse(entry.substr(1, close - 1));
    }
    const size_t colon = entry.find(':');
    if (colon != std::string_view::npos && entry.find(':', colon + 1) == std::string_view::npos) {
        entry = entry.substr(0, colon);  // exactly one colon: IPv4 with a port
    }
    return IpAddress::parse(entry);
}

}  // namespace

ClientIp resolve_client_ip(const IpAddress& peer, std::string_view xff, const CidrSet& trusted_proxies) {
    ClientIp result{peer, false};
    if (trusted_proxies.empty() || !trusted_proxies.contains(peer)) return result;
    while (!xff.empty()) {
        const size_t comma = xff.rfind(',');
        const std::string_view entry = trim(comma == std::string_view::npos ? xff : xff.substr(comma + 1));
        xff = comma == std::string_view::npos ? std::string_view() : xff.substr(0, comma);
        if (entry.empty()) continue;  // "a, , b" and trailing commas carry no hop
        auto ip = parse_forwarded_entry(entry);
        if (!ip) return result;
        result = ClientIp{*ip, true};
        if (!trusted_proxies.contains(*ip)) return result;
    }
    return result;
}

}  // namespace edgeguard
