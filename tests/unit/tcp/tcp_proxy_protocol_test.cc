#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>

#include "proxy/tcp/proxy_protocol.h"

namespace edgeguard {
namespace {

sockaddr_in v4(const char* ip, uint16_t port) {
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    return sa;
}

sockaddr_in6 v6(const char* ip, uint16_t port) {
    sockaddr_in6 sa{};
    sa.sin6_family = AF_INET6;
    sa.sin6_port = htons(port);
    inet_pton(AF_INET6, ip, &sa.sin6_addr);
    return sa;
}

std::string header(ProxyProtocol version, const sockaddr* client, const sockaddr* local) {
    uint8_t out[kMaxProxyHeaderBytes];
    const size_t n = write_proxy_header(version, client, local, out);
    return std::string(reinterpret_cast<const char*>(out), n);
}

TEST(ProxyProtocol, OffWritesNothing) {
    const auto c = v4("10.1.1.7", 5000), l = v4("10.1.1.1", 7233);
    EXPECT_EQ(header(ProxyProtocol::Off, reinterpret_cast<const sockaddr*>(&c),
                     reinterpret_cast<const sockaddr*>(&l)),
              "");
}

TEST(ProxyProtocol, V1Ipv4) {
    const auto c = v4("10.1.1.7", 51234), l = v4("10.1.1.1", 7233);
    EXPECT_EQ(header(ProxyProtocol::V1, reinterpret_cast<const sockaddr*>(&c),
                     reinterpret_cast<const sockaddr*>(&l)),
              "PROXY TCP4 10.1.1.7 10.1.1.1 51234 7233\r\n");
}

TEST(ProxyProtocol, V1MappedIpv4IsTcp4) {
    const auto c = v6("::ffff:10.1.1.7", 1), l = v6("::ffff:10.1.1.1", 2);
    EXPECT_EQ(header(ProxyProtocol::V1, reinterpret_cast<const sockaddr*>(&c),
                     reinterpret_cast<const sockaddr*>(&l)),
              "PROXY TCP4 10.1.1.7 10.1.1.1 1 2\r\n");
}

TEST(ProxyProtocol, V1Ipv6AtItsLongest) {
    const auto c = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
    const auto l = v6("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
    const std::string h = header(ProxyProtocol::V1, reinterpret_cast<const sockaddr*>(&c),
                                 reinterpret_cast<const sockaddr*>(&l));
    EXPECT_EQ(h,
              "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe "
              "65535 65535\r\n");
    EXPECT_LE(h.size(), 107u);  // the spec's maximum
}

TEST(ProxyProtocol, V1UnknownPeer) {
    EXPECT_EQ(header(ProxyProtocol::V1, nullptr, nullptr), "PROXY UNKNOWN\r\n");
}

TEST(ProxyProtocol, V2Ipv4) {
    const auto c = v4("10.1.1.7", 0x1234), l = v4("10.1.1.1", 7233);
    const std::string expected = std::string("\r\n\r\n\0\r\nQUIT\n", 12) + "\x21\x11" +
                                 std::string("\0\x0c", 2) + "\x0a\x01\x01\x07" + "\x0a\x01\x01\x01" +
                                 "\x12\x34" + "\x1c\x41";
    EXPECT_EQ(header(ProxyProtocol::V2, reinterpret_cast<const sockaddr*>(&c),
                     reinterpret_cast<const sockaddr*>(&l)),
              expected);
}

TEST(ProxyProtocol, V2Ipv6) {
    const auto c = v6("2001:db8::7", 443), l = v6("2001:db8::1", 19000);
    const std::string h = header(ProxyProtocol::V2, reinterpret_cast<const sockaddr*>(&c),
                                 reinterpret_cast<const sockaddr*>(&l));
    ASSERT_EQ(h.size(), 16u + 36u);
    EXPECT_EQ(h.substr(12, 4), std::string("\x21\x21\x00\x24", 4));
    EXPECT_EQ(h.substr(16, 16), std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x07", 16));
    EXPECT_EQ(h.substr(32, 16), std::string("\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x01", 16));
    EXPECT_EQ(h.substr(48, 4), std::string("\x01\xbb\x4a\x38", 4));
}

TEST(ProxyProtocol, V2UnknownPeerIsLocal) {
    EXPECT_EQ(header(ProxyProtocol::V2, nullptr, nullptr),
              std::string("\r\n\r\n\0\r\nQUIT\n", 12) + std::string("\x20\x00\x00\x00", 4));
}

}  // namespace
}  // namespace edgeguard
