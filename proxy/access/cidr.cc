#include "proxy/access/cidr.h"

#include <arpa/inet.h>

#include <cstring>

namespace edgeguard {

namespace {

// ::ffff:0:0/96, the prefix every IPv4 address carries in our 16-byte form.
constexpr std::array<uint8_t, 12> kV4MappedPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

IpAddress from_v4(const void* four_bytes) {
    IpAddress ip;
    std::memcpy(ip.bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
    std::memcpy(ip.bytes.data() + 12, four_bytes, 4);
    return ip;
}

IpAddress from_v6(const void* sixteen_bytes) {
    IpAddress ip;
    std::memcpy(ip.bytes.data(), sixteen_bytes, 16);
    return ip;
}

// inet_pton needs a NUL-terminated string; addresses are short, so a stack buffer avoids the heap.
bool copy_to_cstr(std::string_view text, char (&buf)[INET6_ADDRSTRLEN + 1]) {
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) return false;
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    return true;
}

bool parse_prefix_len(std::string_view text, unsigned max, unsigned& out) {
    if (text.empty() || text.size() > 3) return false;
    unsigned v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > max) return false;
    out = v;
    return true;
}

}  // namespace

bool IpAddress::is_v4() const {
    return std::memcmp(bytes.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

std::string IpAddress::str() const {
    char buf[INET6_ADDRSTRLEN];
    const char* ok = is_v4() ? inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf)
                             : inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
    return ok ? std::string(buf) : std::string();
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
    char buf[INET6_ADDRSTRLEN + 1];
    if (!copy_to_cstr(text, buf)) return std::nullopt;
    if (text.find(':') == std::string_view::npos) {
        in_addr a4;
        if (inet_pton(AF_INET, buf, &a4) == 1) return from_v4(&a4);
        return std::nullopt;
    }
    in6_addr a6;
    if (inet_pton(AF_INET6, buf, &a6) == 1) return from_v6(&a6);
    return std::nullopt;
}

std::optional<IpAddress> IpAddress::from_sockaddr(const sockaddr* sa) {
    if (sa == nullptr) return std::nullopt;
    if (sa->sa_family == AF_INET) {
        return from_v4(&reinterpret_cast<const sockaddr_in*>(sa)->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        return from_v6(&reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr);
    }
    return std::nullopt;
}

std::optional<Cidr> Cidr::parse(std::string_view text) {
    const size_t slash = text.find('/');
    const std::string_view addr_text = text.substr(0, slash);
    auto ip = IpAddress::parse(addr_text);
    if (!ip) return std::nullopt;
    // "::ffff:1.2.3.4/24" would be ambiguous about which space the length counts in; only plain forms count.
    const bool written_as_v4 = addr_text.find(':') == std::string_view::npos;
    unsigned len = written_as_v4 ? 32 : 128;
    if (slash != std::string_view::npos &&
        !parse_prefix_len(text.substr(slash + 1), written_as_v4 ? 32 : 128, len)) {
        return std::nullopt;
    }
    Cidr c;
    c.prefix_len = static_cast<uint8_t>(written_as_v4 ? len + 96 : len);
    c.network = *ip;
    // Host bits are cleared so "10.1.1.7/24" means the network 10.1.1.0/24, as every router reads it.
    for (unsigned bit = c.prefix_len; bit < 128; ++bit) {
        c.network.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    }
    return c;
}

bool Cidr::contains(const IpAddress& ip) const {
    const unsigned full = prefix_len / 8;
    if (std::memcmp(network.bytes.data(), ip.bytes.data(), full) != 0) return false;
    const unsigned rest = prefix_len % 8;
    if (rest == 0) return true;
    const uint8_t mask = static_cast<uint8_t>(0xff00u >> rest);
    return (network.bytes[full] & mask) == (ip.bytes[full] & mask);
}

std::string Cidr::str() const {
    if (network.is_v4() && prefix_len >= 96) return network.str() + "/" + std::to_string(prefix_len - 96);
    return network.str() + "/" + std::to_string(prefix_len);
}

bool CidrSet::contains(const IpAddress& ip) const {
    for (const Cidr& c : cidrs_) {
        if (c.contains(ip)) return true;
    }
    return false;
}

}  // namespace edgeguard
