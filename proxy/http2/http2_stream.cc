#include "proxy/http2/http2_stream.h"

#include <algorithm>

#include "proxy/core/worker.h"
#include "proxy/http2/http2_connection.h"
#include "proxy/http2/response_fields.h"
#include "proxy/pipeline/http_errors.h"
#include "proxy/pipeline/response_headers.h"
#include "proxy/tls/tls_redirect.h"

namespace edgeguard {

Http2Stream::Http2Stream(Http2Connection& conn, const sockaddr* peer, socklen_t peer_len)
    : conn_(conn), ex_(conn.worker(), *this, peer, peer_len) {
    ex_.protocol = "HTTP/2";
    pending_body_ = evbuffer_new();
    response_body_ = evbuffer_new();
}

Http2Stream::~Http2Stream() {
    if (pending_body_ != nullptr) evbuffer_free(pending_body_);
    if (response_body_ != nullptr) evbuffer_free(response_body_);
}

// ---------------------------------------------------------------------------------------------------------
// The request, from the connection
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::begin(int32_t id) {
    id_ = id;
    closed_ = false;
    phase_ = Phase::Head;
    admitted_ = false;
    body_ended_ = false;
    request_ended_ = false;
    discard_body_ = false;
    body_bytes_ = 0;
    response_started_ = false;
    response_ended_ = false;
    deferred_ = false;
    blocked_since_ = {};
    tunnel_requested_ = false;
    tunnel_upstream_ = nullptr;
    tunnel_upstream_ended_ = false;
    tunnel_half_closed_ = false;
    tunnel_draining_ = false;
    tunnel_deadline_ = {};
    evbuffer_drain(pending_body_, evbuffer_get_length(pending_body_));
    evbuffer_drain(response_body_, evbuffer_get_length(response_body_));
    segments_.restart();
    // The stream keeps the snapshot it started under until it ends, whatever later streams run under.
    snapshot_ = conn_.current_snapshot();
    listener_ = &conn_.listener();
    const Config& cfg = *snapshot_->config;
    ex_.begin(*snapshot_, *listener_);
    ex_.reset_request();
    fields_.reset({cfg.http2.max_header_list_bytes, cfg.limits.max_headers, cfg.limits.max_uri_bytes});
    request_deadline_ = std::chrono::steady_clock::now() + cfg.timeouts.client_header;
    if (MetricsShard* m = conn_.worker().metrics_shard()) m->http2_stream_opened();
}

void Http2Stream::on_field(std::string_view name, std::string_view value) {
    ex_.accounting.bytes_in += name.size() + value.size();
    if (phase_ == Phase::Head) fields_.add(name, value);
    // Trailer fields (a HEADERS frame after the body) are never forwarded, as with HTTP/1.1.
}

void Http2Stream::on_head_complete(bool end_stream) {
    body_ended_ = end_stream;
    phase_ = Phase::Decide;
    const Http2RequestFields::Refusal refusal = fields_.finish(!end_stream);
    if (refusal.status != 0) {
        if (MetricsShard* m = conn_.worker().metrics_shard()) m->rejected(RejectReason::Parse);
        respond_error(refusal.status, refusal.message);
        return;
    }
    const RequestHead& head = fields_.head();
    tunnel_requested_ = fields_.websocket();
    request_deadline_ = head.has_body ? std::chrono::steady_clock::now() + snapshot_->config->timeouts.client_body_idle
                                      : std::chrono::steady_clock::time_point{};
    // Ends in request_admitted or a respond_* call, maybe later (a Redis reply, an upstream connect).
    ex_.on_request_head(head);
}

void Http2Stream::on_malformed(std::string_view why) {
    if (ex_.accounting.recorded || phase_ != Phase::Head) return;
    if (MetricsShard* m = conn_.worker().metrics_shard()) m->rejected(RejectReason::Parse);
    ex_.accounting.status = 400;  // what the HTTP/1.1 codec answers a malformed head
    scratch_.assign("malformed request: ");
    scratch_.append(why);
    ex_.note_error_reason(400, scratch_);
}

void Http2Stream::on_body(const uint8_t* data, size_t len) {
    ex_.accounting.bytes_in += len;
    if (discard_body_) {
        nghttp2_session_consume(conn_.session(), id_, len);
        return;
    }
    if (tunnel_requested_) {
        tunnel_from_client(data, len);
        return;
    }
    body_bytes_ += len;
    if (ex_.body_limit != 0 && body_bytes_ > ex_.body_limit) {
        nghttp2_session_consume(conn_.session(), id_, len);
        if (MetricsShard* m = conn_.worker().metrics_shard()) m->rejected(RejectReason::Size);
        // A streamed body: the upstream (named in the access log) already holds the part read so far.
        if (!ex_.buffering && ex_.has_upstream()) ex_.accounting.error = "body_too_large: partial body sent upstream";
        if (response_started_) {
            reset(413, "request body too large");
        } else {
            respond_error(413, "request body too large");
        }
        return;
    }
    if (ex_.route != nullptr)
        request_deadline_ = std::chrono::steady_clock::now() + ex_.route->timeouts.client_body_idle;
    if (admitted_ && evbuffer_get_length(pending_body_) == 0 && ex_.request_body_room()) {
        // The usual case: straight to the exchange (no copy into pending_body_), sent upstream once this
        // read of the client's socket is parsed (Http2Connection::on_read), one writev for all of it.
        ex_.request_body(reinterpret_cast<const char*>(data), len);
        nghttp2_session_consume(conn_.session(), id_, len);
        conn_.flush_request_later(*this);
        return;
    }
    evbuffer_add(pending_body_, data, len);
    if (admitted_) deliver_body();
}

void Http2Stream::flush_request() { ex_.flush_request(); }

void Http2Stream::on_body_end() {
    body_ended_ = true;
    request_deadline_ = {};
    if (tunnel_upstream_ != nullptr) {
        pump_tunnel();  // the half-close goes upstream once the bytes before it did
        return;
    }
    if (admitted_) deliver_body();
}

void Http2Stream::deliver_body() {
    if (discard_body_ || request_ended_) return;
    if (tunnel_requested_) {
        // The handshake has no body: DATA frames wait (unacknowledged, so bounded by the stream's window)
        // until the upstream switched protocols, and are never parsed or forwarded otherwise (RFC 9931).
        request_ended_ = true;
        phase_ = Phase::Complete;
        ex_.request_end();
        return;
    }
    size_t delivered = 0;
    while (ex_.request_body_room()) {
        evbuffer_iovec vec;
        if (evbuffer_peek(pending_body_, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        ex_.request_body(static_cast<const char*>(vec.iov_base), vec.iov_len);
        delivered += vec.iov_len;
        evbuffer_drain(pending_body_, vec.iov_len);
    }
    if (delivered != 0) {
        ex_.flush_request();
        // The client may send as much again as the exchange took: back-pressure is the stream's window.
        nghttp2_session_consume(conn_.session(), id_, delivered);
    }
    if (body_ended_ && evbuffer_get_length(pending_body_) == 0) {
        request_ended_ = true;
        phase_ = Phase::Complete;
        request_deadline_ = {};
        ex_.request_end();  // a buffered route is filtered and sent now (or answered: a rejection)
    }
}

// ---------------------------------------------------------------------------------------------------------
// DownstreamStream: the exchange's answers
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::request_admitted(bool) {
    admitted_ = true;
    phase_ = Phase::Body;
    deliver_body();  // the exchange's `buffering` says where the bytes go
    conn_.schedule_flush();
}

void Http2Stream::request_body_drained() {
    if (!admitted_ || closed_) return;
    deliver_body();
    conn_.schedule_flush();  // WINDOW_UPDATE for what the upstream took
}

void Http2Stream::respond_error(int status, std::string_view message) {
    ex_.note_error_reason(status, message);
    scratch_.clear();
    append_error_response(scratch_, status, message, false);
    respond_local(scratch_, status);
}

void Http2Stream::respond_json(int status, std::string_view json_body, std::string_view extra_header_lines) {
    scratch_.clear();
    append_json_response(scratch_, status, json_body, false, extra_header_lines);
    respond_local(scratch_, status);
}

// The same 308 as HTTP/1.1's, framed as HEADERS with END_STREAM; a body or WebSocket tunnel bytes the
// client still sends are dropped (respond_local, response_complete_sent).
void Http2Stream::respond_redirect(std::string_view location) {
    scratch_ = https_redirect_response(location, true);
    respond_local(scratch_, 308);
}

void Http2Stream::respond_local(std::string_view response_bytes, int status) {
    if (closed_ || response_started_) return;
    ex_.abandon_upstream();
    discard_body_ = true;
    phase_ = Phase::Complete;
    request_deadline_ = {};
    ex_.accounting.status = status;
    const size_t head_end = response_bytes.find("\r\n\r\n");
    if (head_end == std::string_view::npos) return;
    head_.assign(response_bytes.substr(0, head_end + 4));
    // edgeguard's own answers get the configured fields too (HSTS must not vanish on a 404).
    apply_response_headers(head_, &listener_->response_headers,
                           ex_.route != nullptr ? &ex_.route->response_headers : nullptr);
    const std::string_view body = response_bytes.substr(head_end + 4);
    const bool head_request = fields_.head().method == HTTP_HEAD;
    if (!head_request) evbuffer_add(response_body_, body.data(), body.size());
    response_ended_ = true;
    ex_.accounting.bytes_out += head_.size() + (head_request ? 0 : body.size());
    record();
    submit_head(head_, !head_request && !body.empty());
    // The client may still be sending a body nobody will read: its window is given back as it comes.
    const size_t unread = evbuffer_get_length(pending_body_);
    if (unread != 0) {
        evbuffer_drain(pending_body_, unread);
        nghttp2_session_consume(conn_.session(), id_, unread);
    }
    conn_.schedule_flush();
}

void Http2Stream::response_head(const ResponseHead& head) {
    DownstreamResponseHead framing;
    framing.status = head.status;
    if (!head.has_body) {
        framing.keep_original_content_length = true;  // HEAD, 204, 304: it describes the representation
    } else if (head.length_known) {
        framing.body = BodyFraming::ContentLength;
        framing.content_length = head.content_length;
    }  // otherwise the body ends with END_STREAM: HTTP/2 needs no length
    head_.clear();
    append_downstream_response_head(head_, *head.fields, framing);
    apply_response_headers(head_, &listener_->response_headers, head.route_fields);
    append_rate_limit_fields(head_, head.rate_limit);
    ex_.accounting.bytes_out += head_.size();
    if (!head.has_body) response_ended_ = true;
    submit_head(head_, head.has_body);
}

void Http2Stream::response_body(const char* data, size_t len) {
    ex_.accounting.bytes_out += len;
    segments_.append(response_body_, data, len);
    resume_response();
}

void Http2Stream::response_end() {
    response_ended_ = true;
    discard_body_ = true;  // an upstream that answered early: the rest of the body has nowhere to go
    resume_response();
    conn_.schedule_flush();
}

void Http2Stream::response_flush() { conn_.schedule_flush(); }

void Http2Stream::reset(int status, std::string_view reason) {
    discard_body_ = true;
    ex_.note_error_reason(status, reason);
    record();
    reset_stream(NGHTTP2_INTERNAL_ERROR);
    conn_.schedule_flush();
}

bool Http2Stream::response_room() const {
    const bool room = evbuffer_get_length(response_body_) < snapshot_->config->limits.buffer_per_direction &&
                      conn_.output_has_room();
    // Resumed (output_drained) once the client took bytes.
    if (!room) conn_.wait_for_output_room(const_cast<Http2Stream&>(*this));
    return room;
}

// Only an extended CONNECT goes upstream with Upgrade, and the response parser reports a 101 only for the
// protocol asked for; anything else here is a bug upstream of this codec, never a tunnel.
void Http2Stream::response_upgraded(const ResponseHead& head, UpstreamConnection& conn) {
    if (tunnel_requested_ && start_tunnel(head, conn)) return;
    if (ex_.pool != nullptr) ex_.pool->discard(&conn);
    if (!tunnel_requested_) reset(502, "upstream switched protocols on an HTTP/2 stream");
}

void Http2Stream::hold() {
    ++depth_;
    conn_.hold();
}

void Http2Stream::release() {
    Http2Connection& conn = conn_;
    --depth_;
    finish_if_done();
    conn.release();
}

// ---------------------------------------------------------------------------------------------------------
// The response to the client
// ---------------------------------------------------------------------------------------------------------

namespace {

ssize_t read_stream_body(nghttp2_session*, int32_t, uint8_t*, size_t length, uint32_t* data_flags,
                         nghttp2_data_source* source, void*) {
    return static_cast<Http2Stream*>(source->ptr)->read_body(length, data_flags);
}

}  // namespace

bool Http2Stream::submit_head(std::string_view head, bool has_body) {
    if (!http2_response_fields(head, nv_storage_, nv_)) {
        reset_stream(NGHTTP2_INTERNAL_ERROR);
        return false;
    }
    response_started_ = true;
    nghttp2_data_provider provider;
    provider.source.ptr = this;
    provider.read_callback = &read_stream_body;
    if (nghttp2_submit_response(conn_.session(), id_, nv_.data(), nv_.size(), has_body ? &provider : nullptr) != 0) {
        reset_stream(NGHTTP2_INTERNAL_ERROR);
        return false;
    }
    return true;
}

void Http2Stream::resume_response() {
    if (!deferred_ || closed_) return;
    deferred_ = false;
    nghttp2_session_resume_data(conn_.session(), id_);
}

ssize_t Http2Stream::read_body(size_t length, uint32_t* data_flags) {
    const size_t available = evbuffer_get_length(response_body_);
    if (available == 0) {
        if (response_ended_) {
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        deferred_ = true;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = std::min(length, available);
    // A frame that ends where a segment of the buffer ends lets send_body move its segments whole; one that
    // ends inside a segment copies that part. So a frame ends at the last segment end it reaches: a full
    // frame reaches the end of a 16 KiB block (frame_segments.h), and after a frame the client's window cut
    // short, the next one stops at the block's end and the frames after it are whole blocks again.
    evbuffer_iovec segments[4];
    const int covering = evbuffer_peek(response_body_, static_cast<ev_ssize_t>(n), nullptr, segments, 4);
    size_t whole = 0;
    for (int i = 0; i < std::min(covering, 4) && whole + segments[i].iov_len <= n; ++i) whole += segments[i].iov_len;
    if (whole != 0) n = whole;
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (response_ended_ && n == available) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    blocked_since_ = {};
    return static_cast<ssize_t>(n);
}

// An exchange that stopped reading its upstream (response_room) is resumed by the connection after this
// send round (Http2Connection::flush).
void Http2Stream::send_body(evbuffer* out, size_t length) {
    evbuffer_remove_buffer(response_body_, out, length);
    if (evbuffer_get_length(response_body_) == 0) segments_.restart();  // the next frame starts a block
}

void Http2Stream::output_drained() {
    resume_response();
    if (tunnel_upstream_ != nullptr) {
        pump_tunnel();
        return;
    }
    ex_.response_drained();
}

void Http2Stream::response_complete_sent() {
    // RFC 9113 §8.1: a complete answer to a WebSocket CONNECT that opened no tunnel (a refusal, the
    // upstream's non-101 status) ends the client's side too, whose DATA would have nowhere to go.
    if (tunnel_requested_ && !closed_ && !body_ended_ && tunnel_upstream_ == nullptr &&
        !tunnel_upstream_ended_)
        reset_stream(NGHTTP2_NO_ERROR);
}

void Http2Stream::reset_stream(uint32_t error_code) {
    if (closed_) return;
    nghttp2_submit_rst_stream(conn_.session(), NGHTTP2_FLAG_NONE, id_, error_code);
}

bool Http2Stream::reset_if_stalled(std::chrono::steady_clock::time_point now, Millis timeout) {
    if (closed_ || !response_started_) return false;
    const bool waiting = evbuffer_get_length(response_body_) != 0;
    const bool window_closed = nghttp2_session_get_stream_remote_window_size(conn_.session(), id_) <= 0 ||
                               nghttp2_session_get_remote_window_size(conn_.session()) <= 0;
    if (!waiting || !window_closed) {
        blocked_since_ = {};
        return false;
    }
    if (blocked_since_ == std::chrono::steady_clock::time_point{}) {
        blocked_since_ = now;
        return false;
    }
    if (now - blocked_since_ < timeout) return false;
    ex_.abandon_upstream();
    ex_.note_error_reason(408, "flow-control window closed too long");
    record();
    reset_stream(NGHTTP2_CANCEL);
    return true;
}

void Http2Stream::check_request_deadlines(std::chrono::steady_clock::time_point now) {
    if (tunnel_requested_) check_tunnel_idle(now);
    if (closed_ || request_deadline_ == std::chrono::steady_clock::time_point{} || now < request_deadline_) return;
    request_deadline_ = {};
    if (MetricsShard* m = conn_.worker().metrics_shard()) m->rejected(RejectReason::Timeout);
    if (phase_ == Phase::Head) {
        respond_error(408, "request header deadline passed");
    } else if (!response_started_) {
        respond_error(408, "request body idle timeout");
    } else {
        ex_.abandon_upstream();
        reset(408, "request body idle timeout");
    }
}

// ---------------------------------------------------------------------------------------------------------
// The end of the stream
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::record() { ex_.record(fields_.method_text(), fields_.authority(), fields_.path()); }

void Http2Stream::on_closed(uint32_t error_code) {
    if (closed_) {
        if (tunnel_draining_) finish_drain();  // the connection ends before the upstream took the last bytes
        return;
    }
    closed_ = true;
    // A client's RST_STREAM (or the connection's end) closes the upstream socket at once; after END_STREAM
    // both ways the upstream still gets what the client sent last, then its FIN.
    if (error_code != NGHTTP2_NO_ERROR || !drain_tunnel()) end_tunnel();
    // Nothing in flight (a Redis decision, an upstream connection half-read) calls back any more.
    ex_.cancel();
    if (!ex_.accounting.recorded) {
        if (error_code != NGHTTP2_NO_ERROR) ex_.note_error_reason(499, "client reset the stream");
        record();
    }
    // Bytes the exchange never took still count against the connection's window: give them back.
    const size_t unread = evbuffer_get_length(pending_body_);
    if (unread != 0) {
        evbuffer_drain(pending_body_, unread);
        nghttp2_session_consume_connection(conn_.session(), unread);
    }
    finish_if_done();
}

void Http2Stream::finish_if_done() {
    if (!closed_ || depth_ != 0 || id_ == 0 || tunnel_draining_) return;
    id_ = 0;
    snapshot_.reset();
    conn_.stream_finished(*this);
}

}  // namespace edgeguard
