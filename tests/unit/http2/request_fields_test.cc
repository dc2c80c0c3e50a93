// Http2RequestFields: an HTTP/2 request's decoded fields turned into the head the exchange reads, with the
// checks the HTTP/1.1 codec makes (RFC 9113 §8.3.1 for :authority and Host).
#include "proxy/http2/request_fields.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <utility>

namespace edgeguard {
namespace {

using Fields = std::initializer_list<std::pair<std::string_view, std::string_view>>;

Http2RequestFields::Refusal run(Http2RequestFields& f, Fields fields, bool has_body = false,
                                Http2RequestFields::Limits limits = {}) {
    f.reset(limits);
    for (const auto& [n, v] : fields) f.add(n, v);
    return f.finish(has_body);
}

TEST(Http2RequestFields, AuthorityBecomesHostAndPathIsNormalized) {
    Http2RequestFields f;
    auto r = run(f, {{":method", "POST"}, {":scheme", "https"}, {":authority", "ph.example.com"},
                     {":path", "/x/../%65?ip=1"}, {"content-type", "application/json"}, {"content-length", "12"}},
                 true);
    ASSERT_EQ(r.status, 0) << r.message;
    const RequestHead& h = f.head();
    EXPECT_EQ(h.method, HTTP_POST);
    EXPECT_EQ(h.normalized_path, "/e");
    EXPECT_EQ(h.query, "ip=1");
    EXPECT_EQ(h.target, "/x/../%65?ip=1");
    EXPECT_EQ(h.content_length, 12u);
    EXPECT_TRUE(h.has_body);
    EXPECT_FALSE(h.chunked);
    ASSERT_NE(h.headers, nullptr);
    EXPECT_EQ(h.headers->name(0), "host");
    EXPECT_EQ(h.headers->find(HeaderList::kHost), "ph.example.com");
    EXPECT_EQ(h.headers->count(HeaderList::kHost), 1u);
    EXPECT_EQ(h.headers->find("content-type"), "application/json");
}

TEST(Http2RequestFields, BodyWithoutContentLengthIsLengthUnknown) {
    Http2RequestFields f;
    ASSERT_EQ(run(f, {{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/batch"}}, true).status, 0);
    EXPECT_TRUE(f.head().has_body);
    EXPECT_TRUE(f.head().chunked);
    EXPECT_EQ(f.head().content_length, 0u);
}

TEST(Http2RequestFields, HostOnlyIsAcceptedHostDifferentFromAuthorityIsNot) {
    Http2RequestFields f;
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}, {"host", "a.test"}}).status, 0);
    EXPECT_EQ(f.authority(), "a.test");
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"},
                      {"host", "A.TEST"}}).status, 0);
    EXPECT_EQ(f.head().headers->count(HeaderList::kHost), 1u);
    auto r = run(f, {{":method", "GET"}, {":scheme", "http"}, {":authority", "a.test"}, {":path", "/"},
                     {"host", "evil.test"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.message, "Host differs from :authority");
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "http"}, {":path", "/"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "http"}, {":authority", "a b"}, {":path", "/"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "http"}, {":authority", "user@a"}, {":path", "/"}}).status, 400);
}

TEST(Http2RequestFields, CookieCrumbsAreJoinedIntoOneField) {
    Http2RequestFields f;
    ASSERT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}, {"cookie", "a=1"},
                      {"accept", "*/*"}, {"cookie", "b=2"}}).status, 0);
    EXPECT_EQ(f.head().headers->count("cookie"), 1u);
    EXPECT_EQ(f.head().headers->find("cookie"), "a=1; b=2");
}

TEST(Http2RequestFields, RefusesWhatHttp11Refuses) {
    Http2RequestFields f;
    EXPECT_EQ(run(f, {{":method", "CONNECT"}, {":authority", "a:443"}}).status, 405);
    EXPECT_EQ(run(f, {{":method", "TRACE"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}}).status, 405);
    EXPECT_EQ(run(f, {{":method", "BREW"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "OPTIONS"}, {":scheme", "https"}, {":authority", "a"}, {":path", "*"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/a\\b"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/%zz"}}).status, 400);
    EXPECT_EQ(run(f, {{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                      {"content-length", "1"}, {"content-length", "1"}}, true).status, 400);
    EXPECT_EQ(run(f, {{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                      {"content-length", "99999999999999999999"}}, true).status, 400);
    EXPECT_EQ(run(f, {{":method", "POST"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                      {"content-length", "-1"}}, true).status, 400);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                      {":protocol", "websocket"}}).status, 400);
}

TEST(Http2RequestFields, ExtendedConnectBecomesAWebSocketUpgradeWithOurOwnKey) {
    Http2RequestFields f;
    auto r = run(f,
                 {{":method", "CONNECT"},
                  {":protocol", "websocket"},
                  {":scheme", "https"},
                  {":authority", "ph.example.com"},
                  {":path", "/ws?x=1"},
                  {"sec-websocket-version", "13"},
                  {"sec-websocket-key", "Y2xpZW50LWNob3Nlbi1rZXk="},
                  {"sec-websocket-protocol", "chat"},
                  {"sec-websocket-extensions", "permessage-deflate"},
                  {"origin", "https://ph.example.com"}},
                 true);  // the stream stays open for tunnel bytes: still no request body
    ASSERT_EQ(r.status, 0) << r.message;
    const RequestHead& h = f.head();
    EXPECT_TRUE(f.websocket());
    EXPECT_EQ(h.method, HTTP_GET);
    EXPECT_EQ(h.upgrade_protocol, "websocket");
    EXPECT_FALSE(h.has_body);
    EXPECT_FALSE(h.chunked);
    EXPECT_EQ(h.normalized_path, "/ws");
    EXPECT_EQ(h.query, "x=1");
    EXPECT_EQ(h.headers->find(HeaderList::kUpgrade), "websocket");
    EXPECT_EQ(h.headers->count("sec-websocket-key"), 1u);
    EXPECT_EQ(h.headers->find("sec-websocket-key"), f.websocket_key());
    EXPECT_NE(f.websocket_key(), "Y2xpZW50LWNob3Nlbi1rZXk=") << "the upstream handshake's key is edgeguard's";
    EXPECT_EQ(f.websocket_key().size(), 24u);
    EXPECT_EQ(h.headers->count("sec-websocket-version"), 1u);
    EXPECT_EQ(h.headers->find("sec-websocket-version"), "13");
    EXPECT_EQ(h.headers->find("sec-websocket-protocol"), "chat");
    EXPECT_EQ(h.headers->find("sec-websocket-extensions"), "permessage-deflate");
    EXPECT_EQ(h.headers->find("origin"), "https://ph.example.com");

    const std::string first(f.websocket_key());
    ASSERT_EQ(run(f, {{":method", "CONNECT"},
                      {":protocol", "websocket"},
                      {":scheme", "https"},
                      {":authority", "a"},
                      {":path", "/ws"}})
                  .status,
              0);
    EXPECT_NE(f.websocket_key(), first) << "a fresh key per stream";

    ASSERT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}}).status,
              0);
    EXPECT_FALSE(f.websocket());
    EXPECT_TRUE(f.head().upgrade_protocol.empty());
}

TEST(Http2RequestFields, RefusesConnectThatIsNoWebSocket) {
    Http2RequestFields f;
    EXPECT_EQ(run(f, {{":method", "CONNECT"},
                      {":protocol", "connect-udp"},
                      {":scheme", "https"},
                      {":authority", "a"},
                      {":path", "/"}})
                  .status,
              501);
    EXPECT_EQ(run(f,
                  {{":method", "CONNECT"},
                   {":protocol", "websocket"},
                   {":scheme", "https"},
                   {":authority", "a"},
                   {":path", "/"},
                   {"content-length", "3"}},
                  true)
                  .status,
              400);
    EXPECT_EQ(run(f, {{":method", "CONNECT"},
                      {":protocol", "websocket"},
                      {":scheme", "https"},
                      {":authority", "a"},
                      {":path", "*"}})
                  .status,
              400);
    EXPECT_EQ(run(f, {{":method", "POST"},
                      {":protocol", "websocket"},
                      {":scheme", "https"},
                      {":authority", "a"},
                      {":path", "/"}})
                  .status,
              400);
}

TEST(Http2RequestFields, SizeLimitsAnswer431And414) {
    Http2RequestFields f;
    Http2RequestFields::Limits small;
    small.max_list_bytes = 200;
    small.max_fields = 3;
    small.max_uri_bytes = 16;
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"},
                      {"x-big", std::string_view("0123456789012345678901234567890123456789012345678901234567890123456789"
                                                 "0123456789012345678901234567890123456789")}},
                  false, small).status, 431);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/"}, {"a", "1"},
                      {"b", "2"}, {"c", "3"}, {"d", "4"}}, false, small).status, 431);
    EXPECT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/0123456789abcdefg"}},
                  false, small).status, 414);
}

TEST(Http2RequestFields, ResetKeepsNothingOfTheLastRequest) {
    Http2RequestFields f;
    ASSERT_EQ(run(f, {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}, {":path", "/one"}, {"cookie", "x=1"}}).status, 0);
    ASSERT_EQ(run(f, {{":method", "HEAD"}, {":scheme", "https"}, {":authority", "b"}, {":path", "/two"}}).status, 0);
    EXPECT_EQ(f.head().method, HTTP_HEAD);
    EXPECT_EQ(f.head().normalized_path, "/two");
    EXPECT_EQ(f.head().headers->count("cookie"), 0u);
    EXPECT_EQ(f.head().headers->find(HeaderList::kHost), "b");
}

TEST(Http2Method, ReadsLlhttpsRegistry) {
    llhttp_method_t m;
    ASSERT_TRUE(http2_method("PATCH", m));
    EXPECT_EQ(m, HTTP_PATCH);
    EXPECT_FALSE(http2_method("get", m));
    EXPECT_FALSE(http2_method("", m));
}

}  // namespace
}  // namespace edgeguard
