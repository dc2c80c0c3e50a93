// An upstream's HTTP/1.1 response, parsed: llhttp behind the strict head scanner (http1/head_scanner.h),
// interim 1xx responses skipped, a 101 accepted only for the protocol the request asked for, and the body
// de-chunked. What comes out is protocol-neutral (a ResponseHead and body bytes), so every downstream codec
// relays the same parse. One parser per exchange, reused for its next request (no allocation once warm).
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "proxy/http1/head_scanner.h"
#include "proxy/http1/http_headers.h"
#include "proxy/pipeline/downstream.h"

namespace edgeguard {

class UpstreamResponseParser {
  public:
    // Receives the response as it is parsed, from inside feed().
    class Sink {
      public:
        virtual void upstream_response_head(const ResponseHead& head) = 0;  // the final head (not a 1xx)
        virtual void upstream_response_body(const char* data, size_t len) = 0;

      protected:
        ~Sink() = default;
    };

    enum class State {
        Head,      // reading the head (interim 1xx responses included)
        Body,      // the final head was handed over; body bytes follow
        Complete,  // the message ended; the parser takes no more bytes
        Upgraded,  // a 101 for the requested protocol ended the head: what follows is the new protocol
    };

    explicit UpstreamResponseParser(Sink& sink);
    UpstreamResponseParser(const UpstreamResponseParser&) = delete;
    UpstreamResponseParser& operator=(const UpstreamResponseParser&) = delete;

    // A response to a new request. `head_request`: no body whatever the fields say. `upgrade_protocol`: the
    // Upgrade the request asked for (empty: none; any 101 is then invalid). `max_header_bytes`: the field
    // lines of the head, as received, count against the same limit as a client's head.
    void begin(bool head_request, std::string_view upgrade_protocol, uint32_t max_header_bytes);

    // Parses from `data`, setting `consumed`. Stops early where the caller has something to do: at the end
    // of the scanned head (body bytes of the same read follow in the next call), at the end of the message,
    // after a 101. False: the response is invalid (never relayed further, the connection never reused).
    bool feed(const char* data, size_t len, size_t& consumed);
    // The upstream closed the connection: true when that properly ends the message (a close-delimited body).
    bool finish();

    State state() const { return state_; }
    const ResponseHead& head() const { return head_; }  // from the final head on; a 101's for Upgraded
    uint64_t bytes_received() const { return bytes_received_; }
    bool until_close() const { return until_close_; }  // the body ends when the upstream closes
    bool keep_alive() const { return llhttp_should_keep_alive(&parser_) != 0; }

  private:
    static const llhttp_settings_t& settings();
    static int on_headers_complete(llhttp_t* p);
    static int on_body(llhttp_t* p, const char* at, size_t len);
    static int on_message_complete(llhttp_t* p);
    int headers_complete();

    Sink& sink_;
    llhttp_t parser_;
    RequestHeadScanner scanner_;
    HeaderList fields_;
    ResponseHead head_;
    State state_ = State::Head;
    bool head_request_ = false;
    std::string_view upgrade_protocol_;
    uint32_t max_header_bytes_ = 0;
    uint64_t bytes_received_ = 0;
    bool until_close_ = false;
};

}  // namespace edgeguard
