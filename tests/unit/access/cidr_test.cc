// CIDR parsing and membership for allowlists and trusted proxies, IPv4 and IPv6.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include "proxy/access/cidr.h"

namespace edgeguard {
namespace {

IpAddress ip(std::string_view text) {
    auto a = IpAddress::parse(text);
    EXPECT_TRUE(a) << text;
    return a.value_or(IpAddress{});
}

TEST(IpAddress, ParsesAndPrintsBothFamilies) {
    EXPECT_EQ(ip("10.1.1.7").str(), "10.1.1.7");
    EXPECT_TRUE(ip("10.1.1.7").is_v4());
    EXPECT_EQ(ip("2001:DB8::0:1").str(), "2001:db8::1");
    EXPECT_FALSE(ip("::1").is_v4());
    // An IPv4-mapped IPv6 address is the IPv4 address (dual-stack sockets report peers this way).
    EXPECT_EQ(ip("::ffff:10.1.1.7").bytes, ip("10.1.1.7").bytes);
    EXPECT_EQ(ip("::ffff:10.1.1.7").str(), "10.1.1.7");
}

TEST(IpAddress, RejectsGarbage) {
    for (const char* bad : {"", "10.1.1", "10.1.1.256", "10.1.1.7 ", "1.2.3.4/8", "host", "::1::2", "[::1]",
                            "01234567890123456789012345678901234567890123456789"}) {
        EXPECT_FALSE(IpAddress::parse(bad)) << bad;
    }
}

TEST(IpAddress, FromSockaddr) {
    sockaddr_in v4{};
    v4.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &v4.sin_addr);
    EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v4))->str(), "127.0.0.2");
    sockaddr_in6 v6{};
    v6.sin6_family = AF_INET6;
    inet_pton(AF_INET6, "::1", &v6.sin6_addr);
    EXPECT_EQ(IpAddress::from_sockaddr(reinterpret_cast<sockaddr*>(&v6))->str(), "::1");
    sockaddr other{};
    other.sa_family = AF_UNIX;
    EXPECT_FALSE(IpAddress::from_sockaddr(&other));
    EXPECT_FALSE(IpAddress::from_sockaddr(nullptr));
}

TEST(Cidr, ParsesPrefixesInTheirOwnFamily) {
    auto c = Cidr::parse("10.1.1.0/24");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->prefix_len, 120);
    EXPECT_EQ(c->str(), "10.1.1.0/24");
    EXPECT_EQ(Cidr::parse("::1")->prefix_len, 128);
    EXPECT_EQ(Cidr::parse("::1")->str(), "::1/128");
    EXPECT_EQ(Cidr::parse("127.0.0.1")->str(), "127.0.0.1/32");
    EXPECT_EQ(Cidr::parse("0.0.0.0/0")->str(), "0.0.0.0/0");
    EXPECT_EQ(Cidr::parse("2001:db8::/32")->str(), "2001:db8::/32");
    // Host bits are cleared.
    EXPECT_EQ(Cidr::parse("10.1.1.77/24")->str(), "10.1.1.0/24");
    EXPECT_EQ(Cidr::parse("10.1.1.77/23")->str(), "10.1.0.0/23");
}

TEST(Cidr, RejectsBadPrefixes) {
    for (const char* bad : {"10.1.1.0/33", "::/129", "10.1.1.0/", "10.1.1.0/-1", "10.1.1.0/2a",
                            "10.1.1.0/0024", "/24", "10.1.1.0/24/8", "nonsense/8"}) {
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
    }
}

TEST(Cidr, Contains) {
    const Cidr net = *Cidr::parse("10.1.1.0/24");
    EXPECT_TRUE(net.contains(ip("10.1.1.0")));
    EXPECT_TRUE(net.contains(ip("10.1.1.255")));
    EXPECT_FALSE(net.contains(ip("10.1.2.0")));
    EXPECT_FALSE(net.contains(ip("10.1.0.255")));
    EXPECT_TRUE(net.contains(ip("::ffff:10.1.1.9")));
    EXPECT_FALSE(net.contains(ip("::1")));

    const Cidr odd = *Cidr::parse("192.168.4.0/22");  // prefix not on a byte boundary
    EXPECT_TRUE(odd.contains(ip("192.168.7.255")));
    EXPECT_FALSE(odd.contains(ip("192.168.8.0")));
    EXPECT_FALSE(odd.contains(ip("192.168.3.255")));

    const Cidr v6 = *Cidr::parse("2001:db8:abcc::/47");  // abcc and abcd share their first 15 bits
    EXPECT_TRUE(v6.contains(ip("2001:db8:abcc::1")));
    EXPECT_TRUE(v6.contains(ip("2001:db8:abcd:ffff::1")));
    EXPECT_FALSE(v6.contains(ip("2001:db8:abce::1")));
    EXPECT_FALSE(v6.contains(ip("2001:db8:abcb:ffff::1")));
    EXPECT_FALSE(v6.contains(ip("10.1.1.1")));

    EXPECT_TRUE(Cidr::parse("0.0.0.0/0")->contains(ip("203.0.113.9")));
    EXPECT_FALSE(Cidr::parse("0.0.0.0/0")->contains(ip("2001:db8::1")));
}

TEST(CidrSet, DefaultAllowlist) {
    CidrSet allow;
    for (const char* c : {"10.1.1.0/24", "127.0.0.0/8", "::1"}) allow.add(*Cidr::parse(c));
    EXPECT_TRUE(allow.contains(ip("10.1.1.42")));
    EXPECT_TRUE(allow.contains(ip("127.0.0.2")));
    EXPECT_TRUE(allow.contains(ip("::1")));
    EXPECT_FALSE(allow.contains(ip("::2")));
    EXPECT_FALSE(allow.contains(ip("192.0.2.1")));
    EXPECT_FALSE(CidrSet{}.contains(ip("10.1.1.1")));
    EXPECT_TRUE(CidrSet{}.empty());
}

}  // namespace
}  // namespace edgeguard
