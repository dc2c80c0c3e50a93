// One HTTP/2 stream: one request and its response, carried by an Exchange exactly as an HTTP/1.1 request is
// (allowlist, rate limits, routes, body limits, the privacy stage, the upstream). The stream is the
// exchange's DownstreamStream: it turns the exchange's answers into HEADERS and DATA frames, and the
// client's DATA into body bytes for the exchange, giving flow-control window back only for what the
// exchange took.
//
// Life: the connection takes a stream from its free list on a request's HEADERS (begin), feeds it fields,
// the end of the head, body bytes and the end of the body; nghttp2 reports the stream closed (on_closed).
// The stream goes back to the free list once it is closed and nothing holds it (a Redis reply or an
// upstream event in flight), so steady traffic allocates nothing per stream.
//
// A WebSocket (RFC 8441 extended CONNECT) runs the exchange as an HTTP/1.1 upgrade request; once the
// upstream answered 101 with the right Sec-WebSocket-Accept the stream answers 200 and takes the upstream
// connection over (http2_stream_tunnel.cc): DATA frames and the upstream socket become one byte tunnel.
#pragma once

#include <event2/buffer.h>
#include <nghttp2/nghttp2.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "proxy/core/snapshot.h"
#include "proxy/http2/frame_segments.h"
#include "proxy/http2/request_fields.h"
#include "proxy/pipeline/exchange.h"
#include "proxy/upstream/upstream_connection.h"

namespace edgeguard {

class Http2Connection;

class Http2Stream final : public DownstreamStream, private UpstreamOwner {
  public:
    Http2Stream(Http2Connection& conn, const sockaddr* peer, socklen_t peer_len);
    ~Http2Stream();
    Http2Stream(const Http2Stream&) = delete;
    Http2Stream& operator=(const Http2Stream&) = delete;

    // --- driven by the connection ---
    void begin(int32_t id);
    void on_field(std::string_view name, std::string_view value);
    // The request's HEADERS ended; `end_stream`: no body follows.
    void on_head_complete(bool end_stream);
    void on_body(const uint8_t* data, size_t len);
    void on_body_end();
    // Sends the body bytes the exchange staged during one read of the client's socket.
    void flush_request();
    // nghttp2 closed the stream (`error_code` 0: both sides ended it normally).
    void on_closed(uint32_t error_code);
    // The connection's output has room again after response_room() said no.
    void output_drained();
    // nghttp2 refused the request's HEADERS as malformed (`why`) and resets the stream.
    void on_malformed(std::string_view why);
    // The frame that ends the response (END_STREAM) went out.
    void response_complete_sent();
    // The zero-window check: when the response has bytes waiting and the client's window for them stayed
    // closed past `timeout`, the stream is reset. True when it was.
    bool reset_if_stalled(std::chrono::steady_clock::time_point now, Millis timeout);
    // The header and body deadlines of the request side (timeouts.client_header, client_body_idle).
    void check_request_deadlines(std::chrono::steady_clock::time_point now);

    // nghttp2's data source for this stream's response body (NGHTTP2_DATA_FLAG_NO_COPY: the bytes are
    // moved into the connection's output by send_body; a frame ends where a segment of the buffer ends).
    ssize_t read_body(size_t length, uint32_t* data_flags);
    void send_body(evbuffer* out, size_t length);

    bool ready() const { return ex_.ready() && pending_body_ != nullptr && response_body_ != nullptr; }
    int32_t id() const { return id_; }
    bool open() const { return id_ != 0; }
    // Intrusive lists of the connection (open streams, free streams, streams waiting for output room).
    Http2Stream* prev = nullptr;
    Http2Stream* next = nullptr;
    Http2Stream* next_waiting = nullptr;
    bool waiting_for_room = false;
    Http2Stream* next_flush = nullptr;  // streams with request bytes staged in this read (flush_request)
    bool flush_pending = false;

    // DownstreamStream
    void request_admitted(bool buffer_body) override;
    void request_body_drained() override;
    void respond_error(int status, std::string_view message) override;
    void respond_json(int status, std::string_view json_body, std::string_view extra_header_lines) override;
    void respond_redirect(std::string_view location) override;
    void response_head(const ResponseHead& head) override;
    void response_body(const char* data, size_t len) override;
    void response_end() override;
    void response_flush() override;
    void reset(int status, std::string_view reason) override;
    bool response_room() const override;
    void response_upgraded(const ResponseHead& head, UpstreamConnection& conn) override;
    void hold() override;
    void release() override;

  private:
    // UpstreamOwner: the upstream connection of a WebSocket tunnel (http2_stream_tunnel.cc).
    void upstream_connected(UpstreamConnection& conn) override;
    void upstream_readable(UpstreamConnection& conn) override;
    void upstream_writable(UpstreamConnection& conn) override;
    void upstream_closed(UpstreamConnection& conn, short events) override;
    void upstream_timer_fired(UpstreamConnection& conn) override;
    // The tunnel (http2_stream_tunnel.cc).
    bool start_tunnel(const ResponseHead& head, UpstreamConnection& conn);
    void tunnel_from_client(const uint8_t* data, size_t len);
    // Moves bytes both ways as far as the other side has room; the client's window is given back only for
    // what the upstream socket's buffer took, and the upstream is read only while the stream has room.
    void pump_tunnel();
    void end_tunnel();
    // The stream closed normally (END_STREAM both ways) with bytes for the upstream still queued: they are
    // written, then the FIN, before the upstream socket closes. False when there is nothing to wait for.
    bool drain_tunnel();
    void finish_drain();
    void check_tunnel_idle(std::chrono::steady_clock::time_point now);

    enum class Phase { Head, Decide, Body, Complete };
    // Gives request body bytes to the exchange while its upstream takes them, and their window back to the
    // client; the body's end once every byte went.
    void deliver_body();
    // A response edgeguard writes itself, as the HTTP/1.1 side formats it (head and body in one string).
    void respond_local(std::string_view response_bytes, int status);
    // Submits `head` (an HTTP/1.1 head text) as HEADERS; a body follows from response_body_ when `has_body`.
    bool submit_head(std::string_view head, bool has_body);
    void resume_response();
    void reset_stream(uint32_t error_code);
    void record();
    void finish_if_done();

    Http2Connection& conn_;
    std::shared_ptr<const Snapshot> snapshot_;  // the one this stream started under (kept until it ends)
    const ListenerConfig* listener_ = nullptr;  // in snapshot_
    Exchange ex_;
    Http2RequestFields fields_;
    int32_t id_ = 0;
    Phase phase_ = Phase::Head;
    int depth_ = 0;
    bool closed_ = true;          // nghttp2 no longer knows the stream
    bool admitted_ = false;       // request_admitted came: body bytes may go to the exchange
    bool body_ended_ = false;     // END_STREAM from the client
    bool request_ended_ = false;  // the exchange was told (request_end)
    bool discard_body_ = false;   // the exchange is done with the request: body bytes are dropped
    uint64_t body_bytes_ = 0;     // request body bytes received
    evbuffer* pending_body_ = nullptr;  // request bytes received, not yet taken (window not given back)
    std::chrono::steady_clock::time_point request_deadline_{};  // header deadline, then body idle deadline

    // The response side.
    bool response_started_ = false;  // HEADERS submitted
    bool response_ended_ = false;    // the last body byte is in response_body_
    bool deferred_ = false;          // nghttp2 was told NGHTTP2_ERR_DEFERRED: resume when bytes come
    evbuffer* response_body_ = nullptr;
    FrameSegments segments_;  // how upstream bytes are copied into response_body_
    std::chrono::steady_clock::time_point blocked_since_{};  // response bytes waiting on a closed window
    std::string head_;        // a response head as the HTTP/1.1 side formats it
    std::string scratch_;     // edgeguard's own responses are formatted here
    std::string nv_storage_;  // lower-cased names and the status digits the nv array points into
    std::vector<nghttp2_nv> nv_;

    // The WebSocket tunnel.
    bool tunnel_requested_ = false;  // an extended CONNECT: DATA frames are tunnel bytes, never a body
    UpstreamConnection* tunnel_upstream_ = nullptr;  // owned from the 200 until the stream ends
    bool tunnel_upstream_ended_ = false;  // the upstream closed its side: END_STREAM once its bytes are out
    bool tunnel_half_closed_ = false;  // the client's END_STREAM was passed on (shutdown of the write side)
    bool tunnel_counted_ = false;      // in the active-streams gauge
    bool tunnel_draining_ = false;     // closed, the upstream's output still being written (drain_tunnel)
    std::chrono::steady_clock::time_point tunnel_deadline_{};  // the route's stream_idle
};

}  // namespace edgeguard
