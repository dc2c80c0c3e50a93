// Http2Stream, the upstream side: the request sent as HTTP/1.1 on a pooled upstream connection (the same
// re-serialised head as the HTTP/1.1 codec sends), its body streamed with back-pressure, and the upstream's
// response parsed (llhttp behind the strict head scanner) and relayed as HEADERS and DATA.
#include <cstdio>

#include "proxy/core/direct_write.h"
#include "proxy/core/worker.h"
#include "proxy/http1/body_framing.h"
#include "proxy/http2/http2_connection.h"
#include "proxy/http2/http2_stream.h"
#include "proxy/pipeline/response_headers.h"
#include "proxy/pipeline/router.h"

namespace edgeguard {

namespace {

Http2Stream* self_of(llhttp_t* p) { return static_cast<Http2Stream*>(p->data); }

bool is_event_stream(std::string_view content_type) {
    std::string_view media = content_type.substr(0, content_type.find(';'));
    while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
    return iequals(media, "text/event-stream");
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// The request upstream
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::start_upstream(bool fresh_only) {
    UpstreamConnection* conn = nullptr;
    switch (ex_.pool->acquire(this, this, fresh_only, conn)) {
        case UpstreamPool::Acquire::Pending: waiting_for_dns_ = true; return;
        case UpstreamPool::Acquire::Unavailable: fail(503, "no upstream available"); return;
        case UpstreamPool::Acquire::Ready: break;
    }
    upstream_ = conn;
    ex_.accounting.upstream_server = ex_.pool->server_text(conn->server_index());
    ++connect_attempts_;
    if (conn->connected()) {
        send_request_head();
    } else {
        conn->arm_timer(ex_.route->timeouts.upstream_connect);
    }
}

void Http2Stream::upstream_addresses_ready() {
    DownstreamStream::Guard guard(*this);
    waiting_for_dns_ = false;
    if (!closed_) start_upstream(false);
    conn_.schedule_flush();
}

void Http2Stream::upstream_connected(UpstreamConnection& conn) {
    DownstreamStream::Guard guard(*this);
    conn.disarm_timer();
    send_request_head();
    conn_.schedule_flush();
}

void Http2Stream::send_request_head() {
    const RequestHead& request = fields_.head();
    UpstreamRequestHead head;
    head.method = fields_.method_text();
    upstream_target_.assign(upstream_path_view(*ex_.route, request.normalized_path));
    if (!ex_.query.empty()) {
        upstream_target_.push_back('?');
        upstream_target_.append(ex_.query);
    }
    head.target = upstream_target_;
    head.forwarded_for = ex_.forwarded_for(ex_.route->client_ip);
    head.forwarded_proto = listener_->tls ? "https" : "http";
    const bool buffered = ex_.buffering;
    upstream_chunked_ = false;
    if (buffered) {
        head.body = (ex_.forward_body.empty() && !request.has_body) ? BodyFraming::None : BodyFraming::ContentLength;
        head.content_length = ex_.forward_body.size();
        head.replace_content_type_json = ex_.forward_rewritten;
        head.rewritten_content_type = ex_.forward_content_type;
    } else if (request.chunked) {
        head.body = BodyFraming::Chunked;
        upstream_chunked_ = true;
    } else if (request.has_body) {
        head.body = BodyFraming::ContentLength;
        head.content_length = request.content_length;
    }
    scratch_.clear();
    append_upstream_request_head(scratch_, fields_.headers(), head);
    evbuffer_drain(upstream_stage_, evbuffer_get_length(upstream_stage_));
    evbuffer_add(upstream_stage_, scratch_.data(), scratch_.size());
    if (buffered && !ex_.forward_body.empty())
        evbuffer_add(upstream_stage_, ex_.forward_body.data(), ex_.forward_body.size());
    ex_.accounting.upstream_sent_at = std::chrono::steady_clock::now();
    head_sent_ = true;
    request_sent_ = buffered || !request.has_body;

    llhttp_init(&resp_parser_, HTTP_RESPONSE, &response_settings());
    resp_parser_.data = this;
    resp_phase_ = ResponsePhase::Head;
    resp_scanner_.reset(true);
    resp_bytes_received_ = 0;
    upstream_eof_ = false;
    upstream_->arm_timer(ex_.route->timeouts.upstream_response_header);
    if (!buffered) forward_body();  // the body bytes already here share the head's write
    flush_staged(upstream_->bev(), upstream_stage_, upstream_->plain());
}

void Http2Stream::forward_body() {
    if (upstream_ == nullptr || !head_sent_ || request_sent_) return;
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    evbuffer* out = upstream_stage_;
    size_t taken = 0;
    while (evbuffer_get_length(upstream_->output()) + evbuffer_get_length(out) < limit) {
        evbuffer_iovec vec;
        if (evbuffer_peek(pending_body_, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        append_body_bytes(out, static_cast<const char*>(vec.iov_base), vec.iov_len, upstream_chunked_);
        taken += vec.iov_len;
        evbuffer_drain(pending_body_, vec.iov_len);
    }
    // The client may send as much again as the upstream took: back-pressure is the stream's window.
    if (taken != 0 && !closed_) nghttp2_session_consume(conn_.session(), id_, taken);
    if (body_ended_ && evbuffer_get_length(pending_body_) == 0) {
        if (upstream_chunked_) append_last_chunk(out);
        request_sent_ = true;
        phase_ = Phase::Complete;
    }
    // Sent now unless the head is still being assembled (send_request_head flushes head and body together).
    if (resp_phase_ != ResponsePhase::None) flush_staged(upstream_->bev(), upstream_stage_, upstream_->plain());
    if (request_sent_ && resp_phase_ == ResponsePhase::Complete) on_response_complete();
}

void Http2Stream::upstream_writable(UpstreamConnection&) {
    DownstreamStream::Guard guard(*this);
    forward_body();
    conn_.schedule_flush();
}

// ---------------------------------------------------------------------------------------------------------
// The response back
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::upstream_readable(UpstreamConnection&) {
    DownstreamStream::Guard guard(*this);
    process_upstream_input();
    conn_.schedule_flush();
}

bool Http2Stream::response_buffer_full() const {
    return evbuffer_get_length(response_body_) >= snapshot_->config->limits.buffer_per_direction;
}

void Http2Stream::output_drained() {
    paused_upstream_ = false;
    process_upstream_input();
}

void Http2Stream::process_upstream_input() {
    bool progressed = false;
    while (upstream_ != nullptr && !closed_ &&
           (resp_phase_ == ResponsePhase::Head || resp_phase_ == ResponsePhase::Body)) {
        if (response_buffer_full() || !conn_.output_has_room()) {
            // Resumed by the connection once the client took bytes (send_body, flush).
            paused_upstream_ = true;
            conn_.wait_for_output_room(*this);
            break;
        }
        evbuffer* in = upstream_->input();
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        const char* data = static_cast<const char*>(vec.iov_base);
        size_t len = vec.iov_len;
        if (resp_phase_ == ResponsePhase::Head && !resp_scanner_.done()) {
            size_t scanned = 0;
            if (resp_scanner_.scan(data, len, scanned) == RequestHeadScanner::Result::Invalid) {
                fail(502, "invalid upstream response");
                return;
            }
            len = scanned;
        }
        const llhttp_errno_t err = llhttp_execute(&resp_parser_, data, len);
        size_t consumed = len;
        if (err == HPE_PAUSED) {
            consumed = static_cast<size_t>(llhttp_get_error_pos(&resp_parser_) - data);
            llhttp_resume(&resp_parser_);
        } else if (err != HPE_OK) {
            fail(502, "invalid upstream response");
            return;
        }
        if (upstream_ == nullptr || closed_) return;
        resp_bytes_received_ += consumed;
        progressed = true;
        evbuffer_drain(in, consumed);
    }
    if (upstream_ == nullptr || closed_) return;
    if (progressed && resp_phase_ == ResponsePhase::Body) upstream_->arm_timer(response_body_idle());
    if (deferred_ && (evbuffer_get_length(response_body_) != 0 || response_ended_)) {
        deferred_ = false;
        nghttp2_session_resume_data(conn_.session(), id_);
    }
    if (resp_phase_ == ResponsePhase::Complete) on_response_complete();
}

const llhttp_settings_t& Http2Stream::response_settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &Http2Stream::resp_message_begin;
        s.on_header_field = &Http2Stream::resp_header_field;
        s.on_header_value = &Http2Stream::resp_header_value;
        s.on_header_value_complete = &Http2Stream::resp_header_value_complete;
        s.on_headers_complete = &Http2Stream::resp_headers_complete;
        s.on_body = &Http2Stream::resp_body;
        s.on_message_complete = &Http2Stream::resp_message_complete;
        return s;
    }();
    return settings;
}

int Http2Stream::resp_message_begin(llhttp_t* p) {
    Http2Stream* self = self_of(p);
    self->resp_headers_.clear();
    self->resp_header_bytes_ = 0;
    return 0;
}

int Http2Stream::resp_header_field(llhttp_t* p, const char* at, size_t len) {
    Http2Stream* self = self_of(p);
    self->resp_header_bytes_ += static_cast<uint32_t>(len);
    if (self->resp_header_bytes_ > self->snapshot_->config->limits.max_header_bytes) return -1;
    self->resp_headers_.append_name(at, len);
    return 0;
}

int Http2Stream::resp_header_value(llhttp_t* p, const char* at, size_t len) {
    Http2Stream* self = self_of(p);
    self->resp_header_bytes_ += static_cast<uint32_t>(len);
    if (self->resp_header_bytes_ > self->snapshot_->config->limits.max_header_bytes) return -1;
    self->resp_headers_.append_value(at, len);
    return 0;
}

int Http2Stream::resp_header_value_complete(llhttp_t* p) {
    self_of(p)->resp_headers_.end_field();
    return 0;
}

int Http2Stream::resp_headers_complete(llhttp_t* p) { return self_of(p)->on_response_headers_complete(); }

int Http2Stream::on_response_headers_complete() {
    const int status = resp_parser_.status_code;
    if (status >= 100 && status < 200) {
        // Interim responses are not relayed, and nothing is ever upgraded over HTTP/2 here (no Upgrade is
        // sent upstream): a 101 is a protocol violation.
        if (status == 101) return -1;
        resp_scanner_.reset(true);
        return 1;
    }
    if (status < 100 || status > 599) return -1;
    if (resp_headers_.count(HeaderList::kContentLength) > 1) return -1;
    if ((resp_parser_.flags & F_CONTENT_LENGTH) && resp_parser_.content_length > static_cast<uint64_t>(INT64_MAX))
        return -1;
    const bool bodyless = fields_.head().method == HTTP_HEAD || status == 204 || status == 304;
    DownstreamResponseHead head;
    head.status = status;
    resp_until_close_ = false;
    if (bodyless) {
        head.keep_original_content_length = true;
    } else if (resp_parser_.flags & F_CONTENT_LENGTH) {
        head.body = BodyFraming::ContentLength;
        head.content_length = resp_parser_.content_length;
    } else if (!(resp_parser_.flags & F_CHUNKED)) {
        resp_until_close_ = true;  // ends with the upstream's close; HTTP/2 needs no length for it
    }
    event_stream_ = !bodyless && is_event_stream(resp_headers_.find(HeaderList::kContentType));
    if (event_stream_) {
        if (MetricsShard* m = conn_.worker().metrics_shard()) m->stream_opened();
    }
    head_.clear();
    append_downstream_response_head(head_, resp_headers_, head);
    apply_response_headers(head_, &listener_->response_headers, &ex_.route->response_headers);
    if (ex_.rate_decision().limit != 0 && head_.ends_with("\r\n\r\n")) {
        char fields[128];
        const int n = std::snprintf(fields, sizeof fields,
                                    "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                                    ex_.rate_decision().limit, ex_.rate_decision().remaining,
                                    ex_.rate_decision().reset_seconds);
        if (n > 0 && static_cast<size_t>(n) < sizeof fields) head_.insert(head_.size() - 2, fields, static_cast<size_t>(n));
    }
    ex_.accounting.status = status;
    ex_.accounting.bytes_out += head_.size();
    ex_.accounting.upstream_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - ex_.accounting.upstream_sent_at)
                                         .count();
    if (MetricsShard* m = conn_.worker().metrics_shard())
        m->upstream_response(snapshot_->upstream_label(ex_.route->upstream_index),
                             static_cast<uint64_t>(ex_.accounting.upstream_micros));
    if (!submit_head(head_, !bodyless)) return -1;
    resp_phase_ = ResponsePhase::Body;
    upstream_->arm_timer(response_body_idle());
    if (bodyless) {
        response_ended_ = true;
        return 1;
    }
    return 0;
}

int Http2Stream::resp_body(llhttp_t* p, const char* at, size_t len) {
    Http2Stream* self = self_of(p);
    if (self->resp_phase_ != ResponsePhase::Body) return 0;
    self->ex_.accounting.bytes_out += len;
    evbuffer_add(self->response_body_, at, len);
    return 0;
}

int Http2Stream::resp_message_complete(llhttp_t* p) {
    Http2Stream* self = self_of(p);
    if (self->resp_phase_ != ResponsePhase::Body) return 0;  // an interim 1xx ended
    self->resp_phase_ = ResponsePhase::Complete;
    self->response_ended_ = true;
    return HPE_PAUSED;
}

// The upstream's response is complete (its last bytes may still wait for the client's window): the upstream
// connection goes back to the pool once the whole request went out too.
void Http2Stream::on_response_complete() {
    if (upstream_ == nullptr) return;
    if (deferred_) {
        deferred_ = false;
        nghttp2_session_resume_data(conn_.session(), id_);
    }
    record();
    if (!request_sent_) return;  // the rest of the request body still goes out (forward_body completes it)
    upstream_->disarm_timer();
    const bool reusable = !upstream_eof_ && !resp_until_close_ && llhttp_should_keep_alive(&resp_parser_) != 0 &&
                          evbuffer_get_length(upstream_->input()) == 0;
    release_upstream(reusable);
}

void Http2Stream::upstream_closed(UpstreamConnection& conn, short events) {
    DownstreamStream::Guard guard(*this);
    if (!conn.connected()) {
        upstream_failed_before_response(true);
    } else if ((events & BEV_EVENT_EOF) && resp_phase_ == ResponsePhase::Body && resp_until_close_) {
        upstream_eof_ = true;
        process_upstream_input();  // bytes that arrived with the close
        if (upstream_ != nullptr && resp_phase_ == ResponsePhase::Body) {
            resp_phase_ = ResponsePhase::Complete;
            response_ended_ = true;
            on_response_complete();
        }
    } else {
        upstream_eof_ = true;
        if (events & BEV_EVENT_EOF) process_upstream_input();
        if (upstream_ != nullptr && resp_phase_ != ResponsePhase::Complete) {
            if (resp_phase_ == ResponsePhase::Head && resp_bytes_received_ == 0) {
                upstream_failed_before_response(false);
            } else {
                fail(502, "upstream closed mid-response");
            }
        }
    }
    conn_.schedule_flush();
}

void Http2Stream::upstream_timer_fired(UpstreamConnection& conn) {
    DownstreamStream::Guard guard(*this);
    const uint32_t label = snapshot_->upstream_label(ex_.route->upstream_index);
    MetricsShard* m = conn_.worker().metrics_shard();
    if (!conn.connected()) {
        if (m != nullptr) {
            m->upstream_connect_error(label);
            m->upstream_timeout(label);
        }
        ex_.pool->connect_failed(upstream_);
        upstream_ = nullptr;
        fail(502, "upstream connect timeout");
    } else {
        if (m != nullptr) m->upstream_timeout(label);
        fail(504, resp_phase_ == ResponsePhase::Head ? "upstream response timeout" : "upstream body idle timeout");
    }
    conn_.schedule_flush();
}

// Connect refused: the next server. A reused pooled connection that died before any response byte is retried
// once on a fresh one when the request body is still in hand (none, or buffered).
void Http2Stream::upstream_failed_before_response(bool connect_failure) {
    UpstreamConnection* failed = upstream_;
    upstream_ = nullptr;
    head_sent_ = false;
    if (connect_failure) {
        if (MetricsShard* m = conn_.worker().metrics_shard())
            m->upstream_connect_error(snapshot_->upstream_label(ex_.route->upstream_index));
        ex_.pool->connect_failed(failed);
        if (connect_attempts_ < ex_.pool->server_count()) {
            start_upstream(true);
            return;
        }
        fail(502, "upstream connection refused");
        return;
    }
    const bool was_reused = failed->reused();
    ex_.pool->discard(failed);
    const bool body_in_hand = !fields_.head().has_body || ex_.buffering;
    if (was_reused && !retried_ && body_in_hand && !response_started_) {
        if (MetricsShard* m = conn_.worker().metrics_shard())
            m->upstream_retry(snapshot_->upstream_label(ex_.route->upstream_index));
        retried_ = true;
        start_upstream(true);
        return;
    }
    fail(502, "upstream closed the connection");
}

void Http2Stream::fail(int status, std::string_view message) {
    drop_upstream();
    if (!response_started_) {
        respond_error(status, message);
        return;
    }
    // The head went out: the log line carries the cause, the client sees the stream reset.
    discard_body_ = true;
    ex_.note_error_reason(status, message);
    record();
    reset_stream(NGHTTP2_INTERNAL_ERROR);
}

void Http2Stream::release_upstream(bool reusable) {
    if (upstream_ == nullptr) return;
    if (reusable) {
        ex_.pool->release(upstream_);
    } else {
        ex_.pool->discard(upstream_);
    }
    upstream_ = nullptr;
}

void Http2Stream::drop_upstream() {
    evbuffer_drain(upstream_stage_, evbuffer_get_length(upstream_stage_));
    if (waiting_for_dns_ && ex_.pool != nullptr) ex_.pool->cancel_wait(this);
    waiting_for_dns_ = false;
    release_upstream(false);
    resp_phase_ = ResponsePhase::None;
}

Millis Http2Stream::response_body_idle() const {
    return event_stream_ ? ex_.route->timeouts.stream_idle : ex_.route->timeouts.upstream_body_idle;
}

}  // namespace edgeguard
