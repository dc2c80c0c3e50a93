// The HTTP/1.1 WebSocket handshake (RFC 6455 §4) that an HTTP/2 extended CONNECT (RFC 8441) becomes toward
// the upstream: edgeguard, not the client, is the upstream's WebSocket client, so it chooses the key and
// checks the upstream's Sec-WebSocket-Accept against it before any tunnel byte moves.
#pragma once

#include <string_view>

namespace edgeguard {

// A Sec-WebSocket-Key: 16 random bytes, base64 (24 characters).
struct WebSocketKey {
    char text[25] = {};
    std::string_view view() const { return {text, 24}; }
};

// A fresh key from OpenSSL's generator; false when it has no randomness to give.
bool new_websocket_key(WebSocketKey& out);

// Whether `accept` is base64(SHA-1(key + the RFC 6455 GUID)): the proof that the upstream read this key.
bool websocket_accept_matches(std::string_view key, std::string_view accept);

}  // namespace edgeguard
