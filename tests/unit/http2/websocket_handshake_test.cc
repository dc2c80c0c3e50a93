// The handshake edgeguard runs as the upstream's WebSocket client for an RFC 8441 stream: its keys and the
// check of the upstream's Sec-WebSocket-Accept.
#include "proxy/http2/websocket_handshake.h"

#include <gtest/gtest.h>

#include <cctype>
#include <set>
#include <string>

namespace edgeguard {
namespace {

TEST(WebSocketHandshake, AcceptIsCheckedAgainstTheKey) {
    // RFC 6455 §1.3's worked example.
    EXPECT_TRUE(websocket_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    EXPECT_TRUE(websocket_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", " s3pPLMBiTxaQ9kYGzzhZRbK+xOo= "));
    EXPECT_FALSE(websocket_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo"));
    EXPECT_FALSE(websocket_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", "S3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    EXPECT_FALSE(websocket_accept_matches("dGhlIHNhbXBsZSBub25jZQ==", ""));
    EXPECT_FALSE(websocket_accept_matches("AAAAAAAAAAAAAAAAAAAAAA==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
}

TEST(WebSocketHandshake, KeysAreFreshBase64OfSixteenBytes) {
    std::set<std::string> seen;
    for (int i = 0; i < 64; ++i) {
        WebSocketKey key;
        ASSERT_TRUE(new_websocket_key(key));
        const std::string text(key.view());
        ASSERT_EQ(text.size(), 24u);
        EXPECT_EQ(text.substr(22), "==");  // 16 bytes
        for (char c : text.substr(0, 22))
            EXPECT_TRUE(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/') << text;
        seen.insert(text);
    }
    EXPECT_EQ(seen.size(), 64u);
}

}  // namespace
}  // namespace edgeguard
