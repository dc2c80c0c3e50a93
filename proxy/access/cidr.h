// CIDR sets for allowlists, deny lists and trusted proxies: IPv4 and IPv6, lookups without allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard {

// An address in one 16-byte form: IPv4 is stored as IPv4-mapped IPv6 (::ffff:a.b.c.d).
struct IpAddress {
    std::array<uint8_t, 16> bytes{};
    bool is_v4() const;
    std::string str() const;  // canonical text ("10.1.1.7", "2001:db8::1")
    static std::optional<IpAddress> parse(std::string_view text);
    static std::optional<IpAddress> from_sockaddr(const sockaddr* sa);
};

struct Cidr {
    IpAddress network;
    uint8_t prefix_len = 128;  // in the mapped 128-bit space (an IPv4 /24 is stored as /120)
    static std::optional<Cidr> parse(std::string_view text);  // "10.1.1.0/24", "::1", "127.0.0.1"
    bool contains(const IpAddress& ip) const;
    std::string str() const;
};

class CidrSet {
public:
    void add(const Cidr& c) { cidrs_.push_back(c); }
    bool empty() const { return cidrs_.empty(); }
    bool contains(const IpAddress& ip) const;
    const std::vector<Cidr>& cidrs() const { return cidrs_; }

private:
    std::vector<Cidr> cidrs_;
};

}  // namespace edgeguard
