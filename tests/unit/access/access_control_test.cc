// Listener and route allow/deny decisions, and when the decision can be made at accept time.
#include <gtest/gtest.h>

#include "proxy/access/access_control.h"

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

ListenerConfig hobby_listener() {
    ListenerConfig l;
    l.allow = cidrs({"10.1.1.0/24", "127.0.0.0/8", "::1"});
    return l;
}

TEST(AccessControl, DefaultAllowlist) {
    const ListenerConfig l = hobby_listener();
    EXPECT_TRUE(accept_allows(l, ip("10.1.1.77")));
    EXPECT_TRUE(accept_allows(l, ip("127.0.0.1")));
    EXPECT_TRUE(accept_allows(l, ip("::1")));
    EXPECT_FALSE(accept_allows(l, ip("10.1.2.1")));
    EXPECT_FALSE(accept_allows(l, ip("203.0.113.1")));
    EXPECT_FALSE(accept_allows(l, ip("::2")));
}

TEST(AccessControl, LoopbackNarrowedToOneAddress) {
    // The integration test's setup: only 127.0.0.1/32 allowed, a client bound to 127.0.0.2 is refused.
    ListenerConfig l;
    l.allow = cidrs({"127.0.0.1/32"});
    EXPECT_TRUE(accept_allows(l, ip("127.0.0.1")));
    EXPECT_FALSE(accept_allows(l, ip("127.0.0.2")));
}

TEST(AccessControl, DenyWinsAndEmptyAllowMeansEveryone) {
    ListenerConfig l;
    EXPECT_TRUE(accept_allows(l, ip("198.51.100.1")));
    l.deny = cidrs({"198.51.100.0/24"});
    EXPECT_FALSE(accept_allows(l, ip("198.51.100.1")));
    l.allow = cidrs({"198.51.100.0/23"});
    EXPECT_FALSE(accept_allows(l, ip("198.51.100.1")));
    EXPECT_TRUE(accept_allows(l, ip("198.51.101.1")));
}

TEST(AccessControl, RouteAllowReplacesListenerAllowDeniesAddUp) {
    const ListenerConfig l = hobby_listener();
    RouteConfig webhooks;
    webhooks.allow = cidrs({"0.0.0.0/0", "::/0"});
    webhooks.deny = cidrs({"192.0.2.0/24"});
    EXPECT_TRUE(request_allows(l, &webhooks, ip("203.0.113.1")));
    EXPECT_FALSE(request_allows(l, &webhooks, ip("192.0.2.5")));
    RouteConfig inherit;
    EXPECT_TRUE(request_allows(l, &inherit, ip("10.1.1.3")));
    EXPECT_FALSE(request_allows(l, &inherit, ip("203.0.113.1")));
    RouteConfig narrow;
    narrow.allow = cidrs({"127.0.0.1"});
    EXPECT_FALSE(request_allows(l, &narrow, ip("10.1.1.3")));
    EXPECT_TRUE(request_allows(l, nullptr, ip("10.1.1.3")));
    EXPECT_FALSE(request_allows(l, nullptr, ip("203.0.113.1")));
    ListenerConfig denying = hobby_listener();
    denying.deny = cidrs({"203.0.113.0/24"});
    EXPECT_FALSE(request_allows(denying, &webhooks, ip("203.0.113.1")));
}

TEST(AccessControl, AcceptTimeOnlyWithoutTrustedProxiesOrRouteAllowLists) {
    Config c;
    c.listeners.push_back(hobby_listener());
    c.routes.emplace_back();
    EXPECT_TRUE(decides_at_accept(c, c.listeners[0]));
    c.trusted_proxies = cidrs({"10.0.0.0/8"});
    EXPECT_FALSE(decides_at_accept(c, c.listeners[0]));
    c.trusted_proxies = CidrSet{};
    c.routes[0].allow = cidrs({"0.0.0.0/0"});
    EXPECT_FALSE(decides_at_accept(c, c.listeners[0]));
}

}  // namespace
}  // namespace edgeguard
