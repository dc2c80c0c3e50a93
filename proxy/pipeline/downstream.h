// The seam between a downstream codec (the protocol a client speaks: HTTP/1.1 in proxy/http1, HTTP/2 in
// proxy/http2) and the exchange (one request and its response, whatever protocol carried them). A codec parses
// the client's bytes into a RequestHead and body bytes and hands them to an Exchange; the exchange answers
// through the DownstreamStream the codec gives it. One connection may carry many exchanges at once (HTTP/2
// streams): nothing here assumes the exchange owns a socket, a bufferevent or the connection's life, and every
// call below concerns the one stream the exchange was given.
//
// Codec -> exchange (Exchange's member functions):
//   begin / reset_request   a request starts (accounting) / its head is being parsed
//   on_request_head(head)   a complete, validated head; the exchange decides, possibly later (a shared
//                           rate limit asks Redis, an upstream connects), and calls back exactly once:
//                           request_admitted or a respond_* function
//   request_body            body bytes, only after request_admitted, while request_body_room() says yes;
//                           flush_request after each batch
//   request_end             the body is complete (a buffered route is filtered and sent now)
//   response_drained        the codec can take response bytes again after response_room() said no
//   abandon_upstream        the codec answers or ends the request itself (a body error, a timeout)
//   cancel                  the client is gone; nothing may call back afterwards
// Exchange -> codec (DownstreamStream), for one request, in this order:
//   request_admitted        every check that needs only the head passed: deliver the body (a streamed body
//                           is admitted once the upstream has the head, a buffered one at once)
//   request_body_drained    the upstream took what was queued: body delivery, stopped because the exchange's
//                           upstream was full, may resume
//   then exactly one of these endings:
//   a) respond_error/json   a response edgeguard answers itself, before any response_head (the codec frames
//      respond_redirect     it and decides whether the connection survives it)
//   b) response_head        the upstream's head, once; then response_body any number of times, then
//                           response_end once -- or reset once when the response cannot complete
//   c) response_upgraded    the upstream switched protocols (101) for a request that asked to: the codec
//                           takes the upstream connection over as a byte tunnel (an HTTP/1.1 connection, or
//                           an HTTP/2 stream for RFC 8441; a codec that cannot tunnel never sends a request
//                           with Upgrade and so never sees this)
//   response_flush          after each batch of response calls made from one upstream read: the codec may
//                           hold what it was given until then (one writev for head and first body bytes);
//                           response_end sends what is held itself
// The codec counts what it writes to the client (accounting.bytes_out): it alone knows its framing.
// An ending (respond_*, response_end, reset, response_upgraded) is the exchange's last call for the request:
// the codec may reuse the exchange for its next request inside it.
// Back-pressure both ways is pull and resume: the codec asks request_body_room() before delivering body
// bytes and waits for request_body_drained when there is none; the exchange asks response_room() before
// it reads more of its upstream and waits for response_drained() when there is none. After a "no" a resume
// call comes unless the exchange ends first; a resume with nothing to do is harmless.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>
#include <vector>

namespace edgeguard {

class HeaderList;
class UpstreamConnection;
struct RateLimitDecision;
struct ResponseHeaderConfig;

// A request head as the codec parsed and validated it. Views into the codec's buffers, valid until the
// exchange ends.
struct RequestHead {
    llhttp_method_t method = HTTP_GET;  // llhttp's table is the method registry, whichever codec parsed it
    std::string_view target;            // as received, for the access log
    std::string_view normalized_path;   // what routes match (router.h normalize_path)
    std::string_view query;             // without the '?'
    const HeaderList* headers = nullptr;
    bool has_body = false;
    bool chunked = false;         // the body's length is known only at its end (HTTP/1.1 chunked)
    uint64_t content_length = 0;  // 0 when unknown (chunked, HTTP/2 without content-length)
    // Replaces the Host field toward the upstream when set (an HTTP/1.1 absolute-form target's authority).
    std::string_view host_override;
    // The protocol an Upgrade request (or an HTTP/2 extended CONNECT) asked for; empty: none. Set only by a
    // codec that can tunnel (response_upgraded): the request goes upstream with Upgrade, and a 101 for it
    // ends in a tunnel.
    std::string_view upgrade_protocol;
};

// A response head as the upstream sent it, without framing: each codec frames it in its own protocol
// (Content-Length or chunked for HTTP/1.1, a HEADERS frame for HTTP/2). Views valid until response_end,
// reset or the next request.
struct ResponseHead {
    int status = 0;
    // The upstream's fields as parsed, connection-specific ones included (Connection, Keep-Alive, Upgrade,
    // Transfer-Encoding...): a codec drops what its protocol must not carry.
    const HeaderList* fields = nullptr;
    // false: no body follows (a HEAD request, 204, 304, 101); a Content-Length among the fields then
    // describes the representation and is kept.
    bool has_body = true;
    bool length_known = false;    // the body is content_length bytes; otherwise it ends with response_end
    uint64_t content_length = 0;
    // Fields edgeguard adds (response_headers.h): the route's, which win over the listener's the codec adds.
    const std::vector<ResponseHeaderConfig>* route_fields = nullptr;
    // The client's standing with its rate limit (RateLimit-* fields); null or limit 0: none.
    const RateLimitDecision* rate_limit = nullptr;
};

class DownstreamStream {
  public:
    // The head passed every check: deliver the body. `buffer_body`: the whole body is needed before anything
    // goes upstream (the privacy stage, or a small-limit route that must refuse an oversized body whole).
    virtual void request_admitted(bool buffer_body) = 0;
    // The upstream drained below its limit: request body bytes may be delivered again.
    virtual void request_body_drained() = 0;

    // A response edgeguard writes itself: {"error": message, "status": status}. Only before response_head;
    // once the head went out an exchange that cannot finish calls reset instead.
    virtual void respond_error(int status, std::string_view message) = 0;
    // A JSON response with `extra_header_lines` ("Name: value\r\n" each) added to the head.
    virtual void respond_json(int status, std::string_view json_body,
                              std::string_view extra_header_lines) = 0;
    // The listener's HTTPS redirect (redirect_https_to): "308 Permanent Redirect" to `location`, no body.
    virtual void respond_redirect(std::string_view location) = 0;

    // The upstream's response, relayed. Bytes may be held by the codec until response_flush.
    virtual void response_head(const ResponseHead& head) = 0;
    virtual void response_body(const char* data, size_t len) = 0;
    virtual void response_end() = 0;  // trailers are not relayed (PROXY.md §2.1)
    virtual void response_flush() = 0;
    // The response cannot complete after its head went out (upstream reset, timeout, framing error):
    // `status` and `reason` go to the access log; the client learns it the only way left (HTTP/1.1 closes
    // the connection, HTTP/2 resets the stream).
    virtual void reset(int status, std::string_view reason) = 0;
    // Whether the codec can take more response bytes now; after false the codec calls the exchange's
    // response_drained() once it can.
    virtual bool response_room() const = 0;
    // The tunnel hook (see above): the codec writes the 101 head and owns `conn` from now on, giving it
    // back to the exchange's pool (discard) when the tunnel ends.
    virtual void response_upgraded(const ResponseHead& head, UpstreamConnection& conn) = 0;

    // Keep the codec (and so the exchange it owns) alive across a call that did not come through the codec,
    // such as a Redis reply or an upstream event; release may delete both when the connection closed
    // meanwhile.
    virtual void hold() = 0;
    virtual void release() = 0;
    struct Guard {
        explicit Guard(DownstreamStream& s) : stream(s) { stream.hold(); }
        ~Guard() { stream.release(); }
        DownstreamStream& stream;
    };

  protected:
    ~DownstreamStream() = default;
};

}  // namespace edgeguard
