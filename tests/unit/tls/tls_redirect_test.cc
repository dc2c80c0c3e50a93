#include "proxy/tls/tls_redirect.h"

#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

TEST(HttpsRedirectTest, PortFormKeepsTheHostAndDropsTheDefaultPort) {
    EXPECT_EQ(https_redirect_location("example.com", "/e/?ip=1", ":443"), "https://example.com/e/?ip=1");
    EXPECT_EQ(https_redirect_location("example.com:8080", "/", ":443"), "https://example.com/");
    EXPECT_EQ(https_redirect_location("example.com:8080", "/x", ":8443"), "https://example.com:8443/x");
    EXPECT_EQ(https_redirect_location("[::1]:8080", "/x", ":8443"), "https://[::1]:8443/x");
    EXPECT_EQ(https_redirect_location("127.0.0.1", "/x", ":8443"), "https://127.0.0.1:8443/x");
}

TEST(HttpsRedirectTest, AuthorityFormReplacesTheHost) {
    EXPECT_EQ(https_redirect_location("anything", "/decide/", "ph.example.com"),
              "https://ph.example.com/decide/");
    EXPECT_EQ(https_redirect_location("anything", "/", "ph.example.com:8443"),
              "https://ph.example.com:8443/");
}

TEST(HttpsRedirectTest, RefusesHostsAndTargetsThatCouldInjectHeaders) {
    EXPECT_FALSE(https_redirect_location("", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("evil.com\r\nSet-Cookie: x=1", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("evil.com/path", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("user@evil.com", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("a.com:80x", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("[::1", "/", ":443"));
    EXPECT_FALSE(https_redirect_location("a.com", "/x\r\nLocation: y", ":443"));
    EXPECT_FALSE(https_redirect_location("a.com", "http://other/", ":443")) << "absolute-form is not echoed";
    EXPECT_EQ(https_redirect_location("a.com", "//evil.com/", ":443"), "https://a.com//evil.com/")
        << "a path that looks like an authority stays a path behind our own host";
    EXPECT_FALSE(https_redirect_location("a.com", "/", ":44x3"));
}

TEST(HttpsRedirectTest, ResponseIs308WithAnEmptyBody) {
    EXPECT_EQ(
        https_redirect_response("https://example.com/x", true),
        "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://example.com/x\r\nContent-Length: 0\r\n\r\n");
    EXPECT_EQ(https_redirect_response("https://example.com/x", false),
              "HTTP/1.1 308 Permanent Redirect\r\nLocation: https://example.com/x\r\nContent-Length: 0\r\n"
              "Connection: close\r\n\r\n");
}

}  // namespace
}  // namespace edgeguard
