// Real client IP behind trusted proxies (Caddy strict mode): right-most untrusted X-Forwarded-For hop.
#include <gtest/gtest.h>

#include "proxy/access/client_ip.h"

namespace edgeguard {
namespace {

IpAddress ip(std::string_view s) {
    return *IpAddress::parse(s);
}

CidrSet cidrs(std::initializer_list<const char*> list) {
    CidrSet set;
    for (const char* c : list) set.add(*Cidr::parse(c));
    return set;
}

TEST(ClientIp, NoTrustedProxiesMeansThePeer) {
    auto r = resolve_client_ip(ip("10.1.1.5"), "203.0.113.7", CidrSet{});
    EXPECT_EQ(r.ip.str(), "10.1.1.5");
    EXPECT_FALSE(r.from_forwarded);
}

TEST(ClientIp, SpoofedHeaderFromUntrustedPeerIsIgnored) {
    const CidrSet trusted = cidrs({"10.0.0.0/8"});
    auto r = resolve_client_ip(ip("192.0.2.9"), "127.0.0.1, 10.1.1.1", trusted);
    EXPECT_EQ(r.ip.str(), "192.0.2.9");
    EXPECT_FALSE(r.from_forwarded);
}

TEST(ClientIp, RightMostUntrustedHopWins) {
    const CidrSet trusted = cidrs({"10.0.0.0/8", "2001:db8:ff::/48"});
    // The client claims to be 1.1.1.1; the load balancer (10.0.0.2) appended the real address.
    auto r = resolve_client_ip(ip("10.0.0.1"), "1.1.1.1, 198.51.100.4, 10.0.0.2", trusted);
    EXPECT_EQ(r.ip.str(), "198.51.100.4");
    EXPECT_TRUE(r.from_forwarded);
    r = resolve_client_ip(ip("2001:db8:ff::1"), "2001:db8::7", trusted);
    EXPECT_EQ(r.ip.str(), "2001:db8::7");
}

TEST(ClientIp, PortsAndBracketsAreAccepted) {
    const CidrSet trusted = cidrs({"10.0.0.0/8"});
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), "198.51.100.4:5123", trusted).ip.str(), "198.51.100.4");
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), "[2001:db8::1]:443", trusted).ip.str(), "2001:db8::1");
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), "[2001:db8::1]", trusted).ip.str(), "2001:db8::1");
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), " 198.51.100.4 ,,", trusted).ip.str(), "198.51.100.4");
}

TEST(ClientIp, GarbageStopsTheWalkAtTheLastVouchedHop) {
    const CidrSet trusted = cidrs({"10.0.0.0/8"});
    auto r = resolve_client_ip(ip("10.0.0.1"), "198.51.100.4, unknown, 10.0.0.3", trusted);
    EXPECT_EQ(r.ip.str(), "10.0.0.3");
    r = resolve_client_ip(ip("10.0.0.1"), "evil", trusted);
    EXPECT_EQ(r.ip.str(), "10.0.0.1");
    EXPECT_FALSE(r.from_forwarded);
}

TEST(ClientIp, AllTrustedMeansLeftMost) {
    const CidrSet trusted = cidrs({"10.0.0.0/8"});
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), "10.9.9.9, 10.0.0.2", trusted).ip.str(), "10.9.9.9");
    EXPECT_EQ(resolve_client_ip(ip("10.0.0.1"), "", trusted).ip.str(), "10.0.0.1");
}

}  // namespace
}  // namespace edgeguard
