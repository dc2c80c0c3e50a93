// The fields of one HTTP/2 request, as HPACK decoded them, turned into what the exchange reads: a
// RequestHead and a HeaderList that holds Host (from :authority) and one Cookie, as the HTTP/1.1 request
// sent upstream needs them.
//
// nghttp2 (HTTP messaging on) has already refused, as a stream error, what RFC 9113 §8.2 and §8.3 call
// malformed at the frame level: uppercase or invalid names and values, pseudo-fields after regular ones,
// unknown, duplicate or missing pseudo-fields, connection-specific fields (Connection, Keep-Alive,
// Proxy-Connection, Transfer-Encoding, Upgrade) and TE other than "trailers". What is left here is what the
// proxy decides the way its HTTP/1.1 codec does: the method, the target's bytes and path, :authority against
// Host (§8.3.1), Content-Length, and the size limits (431/414 rather than a reset, as HTTP/1.1 answers).
//
// An extended CONNECT (RFC 8441: :method CONNECT with :protocol websocket, which nghttp2 accepts only once
// SETTINGS_ENABLE_CONNECT_PROTOCOL was sent and only with :scheme, :path and :authority) becomes the head of
// the HTTP/1.1 WebSocket handshake an upgrade request has: GET with Upgrade: websocket, a fresh
// Sec-WebSocket-Key and Sec-WebSocket-Version 13, the client's Sec-WebSocket-Protocol and -Extensions kept.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/http1/http_headers.h"
#include "proxy/http2/websocket_handshake.h"
#include "proxy/pipeline/downstream.h"

namespace edgeguard {

class Http2RequestFields {
  public:
    struct Limits {
        uint32_t max_list_bytes = 64 * 1024;  // names + values + 32 per field (RFC 9113 §6.5.2)
        uint32_t max_fields = 100;
        uint32_t max_uri_bytes = 8 * 1024;
    };
    // Why a request is refused before the exchange sees it: status 0 = none.
    struct Refusal {
        int status = 0;
        std::string_view message;
    };

    // Starts a new request (buffers keep their capacity).
    void reset(const Limits& limits);
    // One decoded field, in the order received.
    void add(std::string_view name, std::string_view value);
    // Every field arrived: checks them and builds the head. `has_body`: the HEADERS frame did not end the
    // stream. The head's views stay valid until reset().
    Refusal finish(bool has_body);

    const RequestHead& head() const { return head_; }
    const HeaderList& headers() const { return headers_; }
    std::string_view method_text() const { return method_; }
    std::string_view authority() const { return authority_; }
    std::string_view path() const { return path_; }
    // The request is an extended CONNECT for a WebSocket: key() is what the upstream must answer.
    bool websocket() const { return websocket_; }
    std::string_view websocket_key() const { return websocket_key_.view(); }

  private:
    Limits limits_;
    Refusal refusal_;  // the first problem met while fields arrived
    uint32_t list_bytes_ = 0;
    std::string method_, scheme_, authority_, path_, host_, cookie_, protocol_;
    bool has_authority_ = false;
    bool has_protocol_ = false;
    bool websocket_ = false;
    WebSocketKey websocket_key_;
    uint32_t hosts_ = 0;
    uint32_t content_lengths_ = 0;
    HeaderList incoming_;  // regular fields as received, without Host and Cookie
    HeaderList headers_;   // what the exchange reads: Host first, the fields received, Cookie joined last
    std::string normalized_path_;
    RequestHead head_;
};

// The llhttp method for an HTTP/2 :method, false when llhttp's registry has no such method.
bool http2_method(std::string_view name, llhttp_method_t& out);

}  // namespace edgeguard
