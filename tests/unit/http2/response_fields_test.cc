// http2_response_fields: an HTTP/1.1-formatted response head as HTTP/2 fields.
#include "proxy/http2/response_fields.h"

#include <gtest/gtest.h>

namespace edgeguard {
namespace {

std::string name(const nghttp2_nv& nv) { return {reinterpret_cast<const char*>(nv.name), nv.namelen}; }
std::string value(const nghttp2_nv& nv) { return {reinterpret_cast<const char*>(nv.value), nv.valuelen}; }

TEST(Http2ResponseFields, StatusFirstNamesLowercasedConnectionFieldsDropped) {
    const std::string head =
        "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\nConnection: close\r\nKeep-Alive: timeout=5\r\n"
        "Transfer-Encoding: chunked\r\nUpgrade: websocket\r\nProxy-Connection: x\r\nStrict-Transport-Security: "
        "max-age=1\r\nContent-Length: 10\r\n\r\n";
    std::string storage;
    std::vector<nghttp2_nv> nv;
    ASSERT_TRUE(http2_response_fields(head, storage, nv));
    ASSERT_EQ(nv.size(), 4u);
    EXPECT_EQ(name(nv[0]), ":status");
    EXPECT_EQ(value(nv[0]), "404");
    EXPECT_EQ(name(nv[1]), "content-type");
    EXPECT_EQ(value(nv[1]), "application/json");
    EXPECT_EQ(name(nv[2]), "strict-transport-security");
    EXPECT_EQ(value(nv[2]), "max-age=1");
    EXPECT_EQ(name(nv[3]), "content-length");
    EXPECT_EQ(value(nv[3]), "10");
}

TEST(Http2ResponseFields, RefusesWhatIsNoHead) {
    std::string storage;
    std::vector<nghttp2_nv> nv;
    EXPECT_FALSE(http2_response_fields("HTTP/1.1 200 OK\r\nA: b\r\n", storage, nv));  // no blank line
    EXPECT_FALSE(http2_response_fields("HTTP/1.1 2x0 OK\r\n\r\n", storage, nv));
    EXPECT_FALSE(http2_response_fields("HTTP/1.1 200 OK\r\nnocolon\r\n\r\n", storage, nv));
    EXPECT_FALSE(http2_response_fields("", storage, nv));
    EXPECT_TRUE(http2_response_fields("HTTP/1.1 204 No Content\r\n\r\n", storage, nv));
    EXPECT_EQ(nv.size(), 1u);
}

}  // namespace
}  // namespace edgeguard
