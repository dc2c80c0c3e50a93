#include "proxy/tcp/proxy_protocol.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdio>
#include <cstring>

#include "proxy/access/cidr.h"

namespace edgeguard {

namespace {

constexpr uint8_t kV2Signature[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

uint16_t port_of(const sockaddr* sa) {
    if (sa->sa_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
    return ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port);
}

}  // namespace

size_t write_proxy_header(ProxyProtocol version, const sockaddr* client, const sockaddr* local,
                          uint8_t* out) {
    if (version == ProxyProtocol::Off) return 0;
    const std::optional<IpAddress> src = client != nullptr ? IpAddress::from_sockaddr(client) : std::nullopt;
    const std::optional<IpAddress> dst = local != nullptr ? IpAddress::from_sockaddr(local) : std::nullopt;
    const bool known = src && dst;
    const bool v4 = known && src->is_v4() && dst->is_v4();
    if (version == ProxyProtocol::V1) {
        if (!known) {
            static constexpr char kUnknown[] = "PROXY UNKNOWN\r\n";
            std::memcpy(out, kUnknown, sizeof kUnknown - 1);
            return sizeof kUnknown - 1;
        }
        // IpAddress::str() prints IPv4-mapped addresses in dotted form; TCP6 wants them as IPv6 text.
        char src_text[INET6_ADDRSTRLEN], dst_text[INET6_ADDRSTRLEN];
        if (v4) {
            inet_ntop(AF_INET, src->bytes.data() + 12, src_text, sizeof src_text);
            inet_ntop(AF_INET, dst->bytes.data() + 12, dst_text, sizeof dst_text);
        } else {
            inet_ntop(AF_INET6, src->bytes.data(), src_text, sizeof src_text);
            inet_ntop(AF_INET6, dst->bytes.data(), dst_text, sizeof dst_text);
        }
        const int n =
            std::snprintf(reinterpret_cast<char*>(out), kMaxProxyHeaderBytes, "PROXY %s %s %s %u %u\r\n",
                          v4 ? "TCP4" : "TCP6", src_text, dst_text, port_of(client), port_of(local));
        return n > 0 ? static_cast<size_t>(n) : 0;
    }
    std::memcpy(out, kV2Signature, sizeof kV2Signature);
    size_t at = sizeof kV2Signature;
    if (!known) {
        out[at++] = 0x20;  // version 2, LOCAL
        out[at++] = 0x00;  // AF_UNSPEC
        out[at++] = 0;
        out[at++] = 0;
        return at;
    }
    out[at++] = 0x21;              // version 2, PROXY
    out[at++] = v4 ? 0x11 : 0x21;  // TCP over IPv4 / IPv6
    const uint16_t body = v4 ? 12 : 36;
    out[at++] = static_cast<uint8_t>(body >> 8);
    out[at++] = static_cast<uint8_t>(body & 0xff);
    const size_t addr_len = v4 ? 4 : 16;
    const size_t offset = v4 ? 12 : 0;
    std::memcpy(out + at, src->bytes.data() + offset, addr_len);
    at += addr_len;
    std::memcpy(out + at, dst->bytes.data() + offset, addr_len);
    at += addr_len;
    for (uint16_t port : {port_of(client), port_of(local)}) {
        out[at++] = static_cast<uint8_t>(port >> 8);
        out[at++] = static_cast<uint8_t>(port & 0xff);
    }
    return at;
}

}  // namespace edgeguard
