#include "proxy/http2/websocket_handshake.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstring>

namespace edgeguard {

namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

}  // namespace

bool new_websocket_key(WebSocketKey& out) {
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1) return false;
    return EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.text), raw, sizeof raw) == 24;
}

bool websocket_accept_matches(std::string_view key, std::string_view accept) {
    // The key is ours (24 characters) and the GUID fixed: the input always fits this buffer.
    char input[64];
    if (key.size() + kWebSocketGuid.size() > sizeof input) return false;
    std::memcpy(input, key.data(), key.size());
    std::memcpy(input + key.size(), kWebSocketGuid.data(), kWebSocketGuid.size());
    unsigned char digest[SHA_DIGEST_LENGTH];
    SHA1(reinterpret_cast<const unsigned char*>(input), key.size() + kWebSocketGuid.size(), digest);
    char expected[29];  // 20 bytes -> 28 base64 characters and a NUL
    if (EVP_EncodeBlock(reinterpret_cast<unsigned char*>(expected), digest, sizeof digest) != 28)
        return false;
    // RFC 6455 §4.1: the value is compared as sent, after optional whitespace around it.
    while (!accept.empty() && (accept.front() == ' ' || accept.front() == '\t')) accept.remove_prefix(1);
    while (!accept.empty() && (accept.back() == ' ' || accept.back() == '\t')) accept.remove_suffix(1);
    return accept == std::string_view(expected, 28);
}

}  // namespace edgeguard
