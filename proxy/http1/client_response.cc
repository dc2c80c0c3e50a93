// ClientConnection, the response side: upstream connection events, relaying the upstream's response to
// the client, and the byte relay of an upgraded (WebSocket) connection.
#include "proxy/http1/client_connection.h"

#include <cstdio>

#include "proxy/http1/body_framing.h"
#include "proxy/pipeline/response_headers.h"
#include "proxy/core/worker.h"

namespace edgeguard {

namespace {

ClientConnection* self_of(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }

// Server-sent events (text/event-stream, parameters and case ignored) stay open with long silences.
bool is_event_stream(std::string_view content_type) {
    const size_t semicolon = content_type.find(';');
    std::string_view media = content_type.substr(0, semicolon);
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
    while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
    return iequals(media, "text/event-stream");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Upstream events
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::upstream_readable(UpstreamConnection&) {
    Entry entry(this);
    if (tunnel_) {
        pump_tunnel();
        return;
    }
    process_upstream_input();
}

void ClientConnection::upstream_writable(UpstreamConnection&) {
    Entry entry(this);
    if (tunnel_) {
        pump_tunnel();
        return;
    }
    // The upstream took our bytes below its low watermark: the client's body may flow again.
    if (!ex_.buffering) request_body_drained();
}

void ClientConnection::upstream_closed(UpstreamConnection& conn, short events) {
    Entry entry(this);
    if (tunnel_) {
        // The upstream ended the stream: hand the client what is already here, then close.
        evbuffer_add_buffer(bufferevent_get_output(bev_), upstream_->input());
        close_after_flush();
        return;
    }
    if (!conn.connected()) {
        upstream_failed_before_response(true);
        return;
    }
    if (events & BEV_EVENT_EOF) {
        upstream_eof_ = true;
        process_upstream_input();  // bytes read before the EOF may still be waiting behind backpressure
        if (!closed_ && upstream_ != nullptr && resp_phase_ != ResponsePhase::Complete) on_upstream_eof();
        return;
    }
    upstream_eof_ = true;
    if (resp_phase_ == ResponsePhase::Head && resp_bytes_received_ == 0) {
        upstream_failed_before_response(false);
    } else {
        fail_with_status_or_abort(502, "upstream connection reset");
    }
}

void ClientConnection::upstream_timer_fired(UpstreamConnection& conn) {
    Entry entry(this);
    if (!conn.connected()) {
        if (MetricsShard* m = worker_.metrics_shard()) {
            m->upstream_connect_error(snapshot_->upstream_label(ex_.route->upstream_index));
            m->upstream_timeout(snapshot_->upstream_label(ex_.route->upstream_index));
        }
        ex_.pool->connect_failed(upstream_);
        upstream_ = nullptr;
        respond_error(502, "upstream connect timeout");
        return;
    }
    if (MetricsShard* m = worker_.metrics_shard())
        m->upstream_timeout(snapshot_->upstream_label(ex_.route->upstream_index));
    if (resp_phase_ == ResponsePhase::Head) {
        fail_with_status_or_abort(504, "upstream response timeout");
    } else {
        fail_with_status_or_abort(504, "upstream body idle timeout");
    }
}

// Connect refused: try the next server. A reused pooled connection that died before any response byte is
// retried once on a fresh connection, but only when the request body is still in hand (none, or buffered).
void ClientConnection::upstream_failed_before_response(bool connect_failure) {
    UpstreamConnection* failed = upstream_;
    upstream_ = nullptr;
    if (connect_failure) {
        if (MetricsShard* m = worker_.metrics_shard())
            m->upstream_connect_error(snapshot_->upstream_label(ex_.route->upstream_index));
        ex_.pool->connect_failed(failed);
        if (connect_attempts_ < ex_.pool->server_count()) {
            start_upstream(true);
            return;
        }
        respond_error(502, "upstream connection refused");
        return;
    }
    const bool was_reused = failed->reused();
    ex_.pool->discard(failed);
    const bool body_in_hand = !req_has_body_ || (phase_ == RequestPhase::Done && ex_.buffering);
    if (was_reused && !retried_ && body_in_hand && !response_started_) {
        if (MetricsShard* m = worker_.metrics_shard())
            m->upstream_retry(snapshot_->upstream_label(ex_.route->upstream_index));
        retried_ = true;
        start_upstream(true);
        return;
    }
    fail_with_status_or_abort(502, "upstream closed the connection");
}

void ClientConnection::on_upstream_eof() {
    if (resp_phase_ == ResponsePhase::Body && resp_until_close_) {
        // A close-delimited body ends here.
        const llhttp_errno_t finished = llhttp_finish(&resp_parser_);
        if (finished == HPE_OK || resp_phase_ == ResponsePhase::Complete) {
            finish_exchange();
            return;
        }
        response_flush();
    }
    if (resp_phase_ == ResponsePhase::Head && resp_bytes_received_ == 0) {
        upstream_failed_before_response(false);
        return;
    }
    fail_with_status_or_abort(502, "upstream closed mid-response");
}

// ---------------------------------------------------------------------------------------------------------
// Response relaying
// ---------------------------------------------------------------------------------------------------------

const llhttp_settings_t& ClientConnection::response_settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &ClientConnection::resp_message_begin;
        s.on_header_field = &ClientConnection::resp_header_field;
        s.on_header_value = &ClientConnection::resp_header_value;
        s.on_header_value_complete = &ClientConnection::resp_header_value_complete;
        s.on_headers_complete = &ClientConnection::resp_headers_complete;
        s.on_body = &ClientConnection::resp_body;
        s.on_message_complete = &ClientConnection::resp_message_complete;
        return s;
    }();
    return settings;
}

int ClientConnection::resp_message_begin(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    self->resp_headers_.clear();
    self->resp_header_bytes_ = 0;
    return 0;
}

// Names and values of the upstream's head count against the same limit as a client's head.
bool ClientConnection::resp_head_within_limit(size_t len) {
    resp_header_bytes_ += static_cast<uint32_t>(len);
    return resp_header_bytes_ <= snapshot_->config->limits.max_header_bytes;
}

int ClientConnection::resp_header_field(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (!self->resp_head_within_limit(len)) return -1;
    self->resp_headers_.append_name(at, len);
    return 0;
}

int ClientConnection::resp_header_value(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (!self->resp_head_within_limit(len)) return -1;
    self->resp_headers_.append_value(at, len);
    return 0;
}

int ClientConnection::resp_header_value_complete(llhttp_t* p) {
    self_of(p)->resp_headers_.end_field();
    return 0;
}

int ClientConnection::resp_headers_complete(llhttp_t* p) { return self_of(p)->on_response_headers_complete(); }

int ClientConnection::on_response_headers_complete() {
    const int status = resp_parser_.status_code;
    if (status >= 100 && status < 200) {
        // Interim responses are not relayed (we answer 100-continue ourselves). A 101 is accepted only for
        // the protocol the client asked for; anything else is a protocol violation (502).
        if (status == 101) {
            if (!upgrade_requested_ || !iequals(resp_headers_.find(HeaderList::kUpgrade), upgrade_protocol_)) return -1;
            ex_.accounting.status = 101;
            ex_.accounting.upstream_micros =
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                      ex_.accounting.upstream_sent_at)
                    .count();
            resp_phase_ = ResponsePhase::Tunnel;  // the head goes out with response_upgraded, after the parse
            return 0;
        }
        // The final head that follows gets the same strict scan as a first head.
        resp_head_scanner_.reset(true);
        // A 1xx ends at its blank line whatever its fields claim (RFC 9112 §6.3); reading a body here
        // would swallow the start of the final response.
        return 1;
    }
    // llhttp takes any number of digits (or none); a code outside 100-599 is no HTTP status (RFC 9110 §15).
    if (status < 100 || status > 599) return -1;
    if (resp_headers_.count(HeaderList::kContentLength) > 1) return -1;
    if ((resp_parser_.flags & F_CONTENT_LENGTH) && resp_parser_.content_length > static_cast<uint64_t>(INT64_MAX))
        return -1;
    const bool head_request = req_parser_.method == HTTP_HEAD;
    const bool bodyless = head_request || status == 204 || status == 304;
    ResponseHead head;
    head.status = status;
    head.fields = &resp_headers_;
    head.has_body = !bodyless;
    head.route_fields = &ex_.route->response_headers;
    head.rate_limit = &ex_.rate_decision();
    resp_until_close_ = false;
    if (!bodyless && !(resp_parser_.flags & F_CHUNKED)) {
        if (resp_parser_.flags & F_CONTENT_LENGTH) {
            head.length_known = true;
            head.content_length = resp_parser_.content_length;
        } else {
            resp_until_close_ = true;  // close-delimited (SSE from some servers, HTTP/1.0 upstreams)
        }
    }
    resp_event_stream_ = !bodyless && is_event_stream(resp_headers_.find(HeaderList::kContentType));
    if (resp_event_stream_) stream_began();
    ex_.accounting.status = status;
    ex_.accounting.upstream_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - ex_.accounting.upstream_sent_at)
                                         .count();
    if (MetricsShard* m = worker_.metrics_shard())
        m->upstream_response(snapshot_->upstream_label(ex_.route->upstream_index),
                             static_cast<uint64_t>(ex_.accounting.upstream_micros));
    response_head(head);
    resp_phase_ = ResponsePhase::Body;
    upstream_->arm_timer(response_body_idle());
    return bodyless ? 1 : 0;
}

int ClientConnection::resp_body(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (self->resp_phase_ != ResponsePhase::Body) return 0;
    self->response_body(at, len);
    return 0;
}

int ClientConnection::resp_message_complete(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    if (self->resp_phase_ == ResponsePhase::Tunnel) return HPE_PAUSED;  // the rest is the new protocol
    if (self->resp_phase_ != ResponsePhase::Body) return 0;  // an interim 1xx response ended
    self->resp_phase_ = ResponsePhase::Complete;
    return HPE_PAUSED;
}

// Relays upstream bytes to the client while the client's output has room; the rest waits in the upstream's
// (bounded) input buffer, so a slow client pauses reading from the upstream.
void ClientConnection::process_upstream_input() {
    if (upstream_ == nullptr) return;
    bool progressed = false;
    while (!closed_ && upstream_ != nullptr &&
           (resp_phase_ == ResponsePhase::Head || resp_phase_ == ResponsePhase::Body)) {
        if (!response_room()) break;  // resumed from on_client_write
        evbuffer* in = upstream_->input();
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        const char* data = static_cast<const char*>(vec.iov_base);
        size_t len = vec.iov_len;
        if (resp_phase_ == ResponsePhase::Head && !resp_head_scanner_.done()) {
            // llhttp gets only bytes the scanner has checked, so a head after an interim response (which
            // resets the scanner) is never parsed unscanned.
            size_t scanned = 0;
            if (resp_head_scanner_.scan(data, len, scanned) == RequestHeadScanner::Result::Invalid) {
                fail_with_status_or_abort(502, "invalid upstream response");
                return;
            }
            len = scanned;
        }
        llhttp_errno_t err = llhttp_execute(&resp_parser_, data, len);
        size_t consumed = len;
        if (err == HPE_PAUSED) {
            consumed = static_cast<size_t>(llhttp_get_error_pos(&resp_parser_) - data);
            llhttp_resume(&resp_parser_);
        } else if (err != HPE_OK) {
            // Upstream framing errors: never relay, never reuse the connection (RFC 9112 §6.3).
            response_flush();
            fail_with_status_or_abort(502, "invalid upstream response");
            return;
        }
        resp_bytes_received_ += consumed;
        progressed = true;
        evbuffer_drain(in, consumed);
        if (resp_phase_ == ResponsePhase::Complete) break;
        // A head cut off at its scanned end is followed by body bytes of the same read: send both with one
        // writev (the next pass) rather than the head alone (one more syscall and segment per response).
        const bool body_follows_in_chunk = len < vec.iov_len && resp_phase_ == ResponsePhase::Body;
        if (!body_follows_in_chunk) response_flush();
    }
    if (closed_) return;
    if (resp_phase_ == ResponsePhase::Complete) {
        finish_exchange();
        return;
    }
    response_flush();
    if (upstream_ == nullptr) return;
    if (resp_phase_ == ResponsePhase::Tunnel) {
        ResponseHead head;
        head.status = 101;
        head.fields = &resp_headers_;
        head.has_body = false;
        response_upgraded(head, *upstream_);
        return;
    }
    if (progressed && resp_phase_ == ResponsePhase::Body) upstream_->arm_timer(response_body_idle());
}

// The response is complete: it is counted before its last bytes leave (a client that reads its response
// and then scrapes the metrics always sees its request), the upstream connection goes back to the pool
// when it is clean, and the codec ends the response.
void ClientConnection::finish_exchange() {
    const bool request_complete = phase_ == RequestPhase::Done;
    record_exchange();
    if (upstream_ != nullptr) {
        upstream_->disarm_timer();
        const bool reusable = request_complete && !upstream_eof_ && !resp_until_close_ &&
                              llhttp_should_keep_alive(&resp_parser_) != 0 &&
                              evbuffer_get_length(upstream_->input()) == 0;
        release_upstream(reusable);
    }
    resp_phase_ = ResponsePhase::None;
    response_end();
}

// ---------------------------------------------------------------------------------------------------------
// The response toward the client (DownstreamStream): HTTP/1.1 framing
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::response_head(const ResponseHead& head) {
    DownstreamResponseHead framing;
    framing.status = head.status;
    // A refused upgrade closes after the response: bytes the client may already have sent for the new
    // protocol must never be parsed as HTTP.
    resp_close_client_ = !keep_alive_ || draining_ || upgrade_requested_;
    resp_chunked_to_client_ = false;
    if (!head.has_body) {
        framing.body = BodyFraming::None;
        framing.keep_original_content_length = true;
    } else if (head.length_known) {
        framing.body = BodyFraming::ContentLength;
        framing.content_length = head.content_length;
    } else if (req_parser_.http_minor == 1) {
        // Chunked, or close-delimited upstream: chunked for HTTP/1.1 clients so their connection can stay
        // open; an HTTP/1.0 client reads to the close.
        framing.body = BodyFraming::Chunked;
        resp_chunked_to_client_ = true;
    } else {
        framing.body = BodyFraming::UntilClose;
        resp_close_client_ = true;
    }
    framing.close = resp_close_client_;
    scratch_.clear();
    append_downstream_response_head(scratch_, *head.fields, framing);
    apply_response_headers(scratch_, &listener_->response_headers, head.route_fields);
    if (head.rate_limit != nullptr && head.rate_limit->limit != 0 && scratch_.ends_with("\r\n\r\n")) {
        // The client's standing with its rate limit, before the blank line that ends the head.
        char fields[128];
        const int n = std::snprintf(fields, sizeof fields,
                                    "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                                    head.rate_limit->limit, head.rate_limit->remaining,
                                    head.rate_limit->reset_seconds);
        if (n > 0 && static_cast<size_t>(n) < sizeof fields)
            scratch_.insert(scratch_.size() - 2, fields, static_cast<size_t>(n));
    }
    evbuffer_add(client_stage_, scratch_.data(), scratch_.size());
    ex_.accounting.bytes_out += scratch_.size();
    response_started_ = true;
}

void ClientConnection::response_body(const char* data, size_t len) {
    ex_.accounting.bytes_out += len;
    append_body_bytes(client_stage_, data, len, resp_chunked_to_client_);
}

// The last bytes leave with the body bytes before them; then the next pipelined request, or close.
void ClientConnection::response_end() {
    if (resp_chunked_to_client_) append_last_chunk(client_stage_);
    flush_client_stage();
    stream_ended();
    if (phase_ != RequestPhase::Done || resp_close_client_ || !keep_alive_ || draining_) {
        close_after_flush();
        return;
    }
    phase_ = RequestPhase::Idle;
    ex_.route = nullptr;
    arm_client_timer(ClientTimer::KeepAlive, snapshot_->config->timeouts.client_keepalive);
    if (!refresh_snapshot()) {
        close_after_flush();
        return;
    }
    process_client_input();  // a pipelined request may be waiting already
}

// The status line already went out: the log line carries the cause of the cut-short response, and closing
// the connection mid-body is the only honest signal left.
void ClientConnection::reset(int status, std::string_view reason) {
    ex_.note_error_reason(status, reason);
    record_exchange();
    close();
}

bool ClientConnection::response_room() const {
    return evbuffer_get_length(bufferevent_get_output(bev_)) < snapshot_->config->limits.buffer_per_direction;
}

void ClientConnection::request_body_drained() {
    if (phase_ == RequestPhase::Body) process_client_input();
}

void ClientConnection::response_upgraded(const ResponseHead& head, UpstreamConnection& conn) {
    DownstreamResponseHead framing;
    framing.status = head.status;
    framing.upgrade = true;
    scratch_.clear();
    append_downstream_response_head(scratch_, *head.fields, framing);
    bufferevent_write(bev_, scratch_.data(), scratch_.size());
    ex_.accounting.bytes_out += scratch_.size();
    response_started_ = true;
    upstream_ = &conn;
    enter_tunnel();
}

void ClientConnection::release_upstream(bool reusable) {
    if (upstream_ == nullptr) return;
    if (reusable) {
        ex_.pool->release(upstream_);
    } else {
        ex_.pool->discard(upstream_);
    }
    upstream_ = nullptr;
}

// After a matching 101 both sockets carry the new protocol: bytes are moved between the buffers without
// copying, each direction paused while the other side's output is full, and the stream's own idle timeout
// (RouteConfig::timeouts.stream_idle) replaces the HTTP timeouts.
void ClientConnection::enter_tunnel() {
    tunnel_ = true;
    phase_ = RequestPhase::Done;
    upstream_->disarm_timer();
    record_exchange();
    stream_began();
    pump_tunnel();
}

void ClientConnection::pump_tunnel() {
    if (closed_ || upstream_ == nullptr) return;
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    evbuffer* client_in = bufferevent_get_input(bev_);
    evbuffer* client_out = bufferevent_get_output(bev_);
    evbuffer* up_in = upstream_->input();
    evbuffer* up_out = upstream_->output();
    bool moved = false;
    if (evbuffer_get_length(client_in) != 0 && evbuffer_get_length(up_out) < limit) {
        evbuffer_add_buffer(up_out, client_in);
        moved = true;
    }
    if (evbuffer_get_length(up_in) != 0 && evbuffer_get_length(client_out) < limit) {
        evbuffer_add_buffer(client_out, up_in);
        moved = true;
    }
    if (moved || timer_kind_ != ClientTimer::StreamIdle)
        arm_client_timer(ClientTimer::StreamIdle, ex_.route->timeouts.stream_idle);
}

// ---------------------------------------------------------------------------------------------------------
// Long-lived streams
// ---------------------------------------------------------------------------------------------------------

// The gauge counts a tunnel or an event stream once from its start until its response ends or the
// connection closes, whichever comes first (both call stream_ended, the flag keeps it to one decrement).
void ClientConnection::stream_began() {
    if (stream_counted_) return;
    stream_counted_ = true;
    if (MetricsShard* m = worker_.metrics_shard()) m->stream_opened();
}

void ClientConnection::stream_ended() {
    if (!stream_counted_) return;
    stream_counted_ = false;
    if (MetricsShard* m = worker_.metrics_shard()) m->stream_closed();
}

// An event stream is silent between events for as long as the application likes; like a tunnel it is
// timed by the route's stream_idle (which falls back to the global one), not by upstream_body_idle.
Millis ClientConnection::response_body_idle() const {
    return resp_event_stream_ ? ex_.route->timeouts.stream_idle : ex_.route->timeouts.upstream_body_idle;
}

}  // namespace edgeguard
