// The seam between a downstream codec (the protocol a client speaks: HTTP/1.1 today) and the exchange (one
// request and its response, whatever protocol carried them). A codec parses the client's bytes into a
// RequestHead and body bytes and hands them to an Exchange; the exchange answers through the
// DownstreamStream the codec gives it. One connection may carry many exchanges at once (HTTP/2 streams):
// nothing here assumes the exchange owns a socket, a bufferevent or the connection's life.
//
// Codec -> exchange (Exchange's member functions):
//   on_request_head(head)   a complete, validated head; the exchange decides, possibly later (a shared
//                           rate limit asks Redis), and calls back exactly once: request_admitted or a
//                           respond_* function
//   body bytes              only after request_admitted: buffer_body for a buffered (privacy) route, the
//                           upstream writer otherwise
//   end of body             run_privacy_stage on a buffered route
//   abort                   cancel(): the client is gone; nothing may call back afterwards
// Exchange -> codec (DownstreamStream):
//   request_admitted        every check that needs only the head passed: deliver the body
//   respond_error/json      a response edgeguard answers itself (the codec frames it and decides whether
//                           the connection survives it)
// Back-pressure travels the same way: a codec stops delivering body bytes while the exchange's upstream
// is full and resumes when told; the exchange stops reading its upstream while the codec's output is full.
#pragma once

#include <llhttp.h>

#include <cstdint>
#include <string_view>

namespace edgeguard {

class HeaderList;

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
};

class DownstreamStream {
  public:
    // The head passed every check: deliver the body. `buffer_body`: the whole body is needed before anything
    // goes upstream (the privacy stage, or a small-limit route that must refuse an oversized body whole).
    virtual void request_admitted(bool buffer_body) = 0;
    // A response edgeguard writes itself: {"error": message, "status": status}.
    virtual void respond_error(int status, std::string_view message) = 0;
    // A JSON response with `extra_header_lines` ("Name: value\r\n" each) added to the head.
    virtual void respond_json(int status, std::string_view json_body,
                              std::string_view extra_header_lines) = 0;

    // Keep the codec (and so the exchange it owns) alive across a call that did not come through the codec,
    // such as a Redis reply; release may delete both when the connection closed meanwhile.
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
