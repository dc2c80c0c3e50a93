// Exchange, the upstream side: a connection from the route's pool, the request head and body sent to it,
// and its response relayed to the codec (DownstreamStream) as it is parsed (upstream/upstream_response_
// parser.h). Upstream events arrive here directly: each holds the codec (DownstreamStream::Guard), and every
// call that may end the exchange (respond_error, reset, response_end, response_upgraded) is the last thing
// the function does, because the codec may reuse the exchange for its next request inside it.
#include <chrono>

#include "proxy/core/direct_write.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/worker.h"
#include "proxy/http1/body_framing.h"
#include "proxy/http1/http_headers.h"
#include "proxy/pipeline/exchange.h"
#include "proxy/pipeline/router.h"

namespace edgeguard {

namespace {

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
// The request toward the upstream
// ---------------------------------------------------------------------------------------------------------

void Exchange::request_body(const char* data, size_t len) {
    if (buffering) {
        body_buf_.append(data, len);
    } else if (upstream_ != nullptr) {
        append_body_bytes(upstream_stage_, data, len, upstream_chunked_);
    }
}

void Exchange::lend_request_body(const char* data, size_t len) {
    if (buffering) {
        body_buf_.append(data, len);
    } else if (upstream_ != nullptr) {
        lend_body_bytes(upstream_stage_, data, len, upstream_chunked_);
    }
}

bool Exchange::request_body_room() const {
    if (buffering || upstream_ == nullptr) return true;
    return evbuffer_get_length(upstream_->output()) < snapshot_->config->limits.buffer_per_direction;
}

void Exchange::request_end() {
    request_complete_ = true;
    if (buffering && inspecting) {
        if (run_privacy_stage(head_.headers->find("content-type"), head_.headers->find("content-encoding")))
            start_upstream(false);
        return;
    }
    if (buffering) {
        forward_buffered_body();
        start_upstream(false);
        return;
    }
    if (upstream_chunked_ && upstream_ != nullptr) append_last_chunk(upstream_stage_);
    flush_request();
}

void Exchange::flush_request() {
    if (upstream_ == nullptr) {
        upstream_stage_.clear();
        return;
    }
    upstream_stage_.flush(upstream_->bev(), upstream_->plain());
}

void Exchange::start_upstream(bool fresh_only) {
    UpstreamConnection* conn = nullptr;
    switch (pool->acquire(this, this, fresh_only, conn)) {
        case UpstreamPool::Acquire::Pending: waiting_for_dns_ = true; return;
        case UpstreamPool::Acquire::Unavailable: stream_.respond_error(503, "no upstream available"); return;
        case UpstreamPool::Acquire::Ready: break;
    }
    upstream_ = conn;
    accounting.upstream_server = pool->server_text(conn->server_index());
    ++connect_attempts_;
    if (conn->connected()) {
        send_request_head();
    } else {
        conn->arm_timer(route->timeouts.upstream_connect);
    }
}

void Exchange::upstream_addresses_ready() {
    DownstreamStream::Guard guard(stream_);
    waiting_for_dns_ = false;
    start_upstream(false);
}

void Exchange::upstream_connected(UpstreamConnection& conn) {
    DownstreamStream::Guard guard(stream_);
    conn.disarm_timer();
    send_request_head();
}

// Writes the re-serialised head (and a buffered body) to the upstream in one writev. A streamed
// body follows from the codec, which is told to deliver it only now (request_admitted), so that the head
// shares its writev with the first body bytes.
void Exchange::send_request_head() {
    UpstreamRequestHead head;
    head.method = llhttp_method_name(head_.method);
    // Built in a member so its capacity carries over to the next request (no heap churn).
    upstream_target_.assign(upstream_path_view(*route, head_.normalized_path));
    if (!query.empty()) {
        upstream_target_.push_back('?');
        upstream_target_.append(query);
    }
    head.target = upstream_target_;
    head.forwarded_for = forwarded_for(route->client_ip);
    head.forwarded_proto = listener_->tls ? "https" : "http";
    head.host_override = head_.host_override;
    head.upgrade = !head_.upgrade_protocol.empty();
    const bool buffered = buffering && request_complete_;  // the body is already in hand
    upstream_chunked_ = false;
    if (buffered) {
        head.body = (forward_body.empty() && !head_.has_body) ? BodyFraming::None : BodyFraming::ContentLength;
        head.content_length = forward_body.size();
        head.replace_content_type_json = forward_rewritten;
        head.rewritten_content_type = forward_content_type;
    } else if (head_.chunked) {
        head.body = BodyFraming::Chunked;
        upstream_chunked_ = true;
    } else if (head_.has_body) {
        head.body = BodyFraming::ContentLength;
        head.content_length = head_.content_length;
    } else {
        head.body = BodyFraming::None;
    }
    head_buf_.clear();
    append_upstream_request_head(head_buf_, *head_.headers, head);
    upstream_stage_.clear();
    upstream_stage_.append(head_buf_);
    const auto sent_at = std::chrono::steady_clock::now();
    accounting.upstream_sent_at = sent_at;
    // A buffered body (the original or the filter's rewrite, 60 KB and more for a rewritten /batch) goes out
    // from forward_body in the head's writev: lent, not copied, since the flush below follows at once and
    // only what the kernel does not take is copied. forward_body stays intact for a retry.
    if (buffered && !forward_body.empty()) upstream_stage_.lend(forward_body.data(), forward_body.size());
    // A retry sends a request whose body delivery already began (a body-less one): nothing follows.
    const bool deliver_body = !buffered && !body_requested_;
    if (!deliver_body) flush_request();

    response_.begin(head_.method == HTTP_HEAD, head_.upgrade_protocol, snapshot_->config->limits.max_header_bytes);
    response_active_ = true;
    upstream_eof_ = false;
    upstream_->arm_timer_from(sent_at, route->timeouts.upstream_response_header);
    if (deliver_body) {
        body_requested_ = true;
        stream_.request_admitted(false);  // last: the codec may finish the request inside
    }
}

// ---------------------------------------------------------------------------------------------------------
// Upstream events
// ---------------------------------------------------------------------------------------------------------

void Exchange::upstream_readable(UpstreamConnection&) {
    DownstreamStream::Guard guard(stream_);
    (void)relay_response();
}

void Exchange::upstream_writable(UpstreamConnection&) {
    DownstreamStream::Guard guard(stream_);
    // The upstream took our bytes below its low watermark: the client's body may flow again.
    if (!buffering && !request_complete_) stream_.request_body_drained();
}

void Exchange::upstream_closed(UpstreamConnection& conn, short events) {
    DownstreamStream::Guard guard(stream_);
    if (!conn.connected()) {
        upstream_failed_before_response(true);
        return;
    }
    upstream_eof_ = true;
    if (events & BEV_EVENT_EOF) {
        // Bytes read before the EOF may still be waiting behind backpressure.
        if (relay_response() && upstream_ != nullptr) on_upstream_eof();
        return;
    }
    if (response_.state() == UpstreamResponseParser::State::Head && response_.bytes_received() == 0) {
        upstream_failed_before_response(false);
    } else {
        fail(502, "upstream connection reset");
    }
}

void Exchange::upstream_timer_fired(UpstreamConnection& conn) {
    DownstreamStream::Guard guard(stream_);
    const uint32_t label = snapshot_->upstream_label(route->upstream_index);
    if (!conn.connected()) {
        if (MetricsShard* m = worker_.metrics_shard()) {
            m->upstream_connect_error(label);
            m->upstream_timeout(label);
        }
        pool->connect_failed(upstream_);
        upstream_ = nullptr;
        stream_.respond_error(502, "upstream connect timeout");
        return;
    }
    if (MetricsShard* m = worker_.metrics_shard()) m->upstream_timeout(label);
    if (response_.state() == UpstreamResponseParser::State::Head) {
        fail(504, "upstream response timeout");
    } else {
        fail(504, "upstream body idle timeout");
    }
}

// Connect refused: try the next server. A reused pooled connection that died before any response byte is
// retried once on a fresh connection, but only when the request body is still in hand (none, or buffered).
void Exchange::upstream_failed_before_response(bool connect_failure) {
    UpstreamConnection* failed = upstream_;
    upstream_ = nullptr;
    response_active_ = false;
    if (connect_failure) {
        if (MetricsShard* m = worker_.metrics_shard())
            m->upstream_connect_error(snapshot_->upstream_label(route->upstream_index));
        pool->connect_failed(failed);
        if (connect_attempts_ < pool->server_count()) {
            start_upstream(true);
            return;
        }
        stream_.respond_error(502, "upstream connection refused");
        return;
    }
    const bool was_reused = failed->reused();
    pool->discard(failed);
    const bool body_in_hand = !head_.has_body || (request_complete_ && buffering);
    if (was_reused && !retried_ && body_in_hand && !response_started_) {
        if (MetricsShard* m = worker_.metrics_shard())
            m->upstream_retry(snapshot_->upstream_label(route->upstream_index));
        retried_ = true;
        start_upstream(true);
        return;
    }
    fail(502, "upstream closed the connection");
}

void Exchange::on_upstream_eof() {
    if (response_.finish()) {
        finish_response();  // a close-delimited body ends here
        return;
    }
    stream_.response_flush();
    if (response_.state() == UpstreamResponseParser::State::Head && response_.bytes_received() == 0) {
        upstream_failed_before_response(false);
        return;
    }
    fail(502, "upstream closed mid-response");
}

// Before the response started the client still gets a status; afterwards the codec resets the stream.
void Exchange::fail(int status, std::string_view reason) {
    abandon_upstream();
    if (!response_started_) {
        stream_.respond_error(status, reason);
        return;
    }
    end_event_stream();
    stream_.reset(status, reason);
}

void Exchange::abandon_upstream() {
    if (waiting_for_dns_) {
        pool->cancel_wait(this);
        waiting_for_dns_ = false;
    }
    response_active_ = false;
    if (upstream_ == nullptr) return;
    upstream_stage_.clear();  // nothing staged goes anywhere now, and lent bytes must not be read later
    pool->discard(upstream_);
    upstream_ = nullptr;
}

// ---------------------------------------------------------------------------------------------------------
// The response
// ---------------------------------------------------------------------------------------------------------

void Exchange::response_drained() {
    if (response_active_) (void)relay_response();
}

// Relays upstream bytes to the codec while it has room; the rest waits in the upstream's (bounded) input
// buffer, so a slow client pauses reading from the upstream. False when the exchange ended inside (the
// codec may already run its next request on it).
bool Exchange::relay_response() {
    using State = UpstreamResponseParser::State;
    if (upstream_ == nullptr || !response_active_) return true;
    bool progressed = false;
    while (upstream_ != nullptr && (response_.state() == State::Head || response_.state() == State::Body)) {
        if (!stream_.response_room()) break;  // resumed by response_drained
        evbuffer* in = upstream_->input();
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        size_t consumed = 0;
        if (!response_.feed(static_cast<const char*>(vec.iov_base), vec.iov_len, consumed)) {
            // Upstream framing errors: never relay further, never reuse the connection (RFC 9112 §6.3).
            stream_.response_flush();
            fail(502, "invalid upstream response");
            return false;
        }
        progressed = true;
        evbuffer_drain(in, consumed);
        if (response_.state() == State::Complete) {
            finish_response();
            return false;
        }
        // A head cut off at its scanned end is followed by body bytes of the same read: send both with one
        // writev (the next pass) rather than the head alone (one more syscall and segment per response).
        const bool body_follows_in_chunk = consumed < vec.iov_len && response_.state() == State::Body;
        if (!body_follows_in_chunk) stream_.response_flush();
    }
    stream_.response_flush();
    if (upstream_ == nullptr) return false;
    if (response_.state() == State::Upgraded) {
        // After a matching 101 the upstream connection carries the new protocol: the codec takes it over.
        UpstreamConnection* conn = upstream_;
        upstream_ = nullptr;
        response_active_ = false;
        conn->disarm_timer();
        accounting.status = 101;
        accounting.upstream_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                         std::chrono::steady_clock::now() - accounting.upstream_sent_at)
                                         .count();
        stream_.response_upgraded(response_.head(), *conn);
        return false;
    }
    if (progressed && response_.state() == State::Body) upstream_->arm_timer(response_body_idle());
    return true;
}

void Exchange::upstream_response_head(const ResponseHead& parsed) {
    ResponseHead head = parsed;
    head.route_fields = &route->response_headers;
    head.rate_limit = &rate_decision_;
    event_stream_ = head.has_body && is_event_stream(head.fields->find(HeaderList::kContentType));
    if (event_stream_) begin_event_stream();
    accounting.status = head.status;
    accounting.upstream_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                     std::chrono::steady_clock::now() - accounting.upstream_sent_at)
                                     .count();
    if (MetricsShard* m = worker_.metrics_shard())
        m->upstream_response(snapshot_->upstream_label(route->upstream_index),
                             static_cast<uint64_t>(accounting.upstream_micros));
    response_started_ = true;
    stream_.response_head(head);
    // The body idle timeout replaces the response header one where relay_response stops reading with the
    // body still open; a response complete in this read (most) never arms it.
}

void Exchange::upstream_response_body(const char* data, size_t len) { stream_.response_body(data, len); }

// The response is complete: it is counted before its last bytes leave (a client that reads its response
// and then scrapes the metrics always sees its request), the upstream connection goes back to the pool
// when it is clean, and the codec ends the response.
void Exchange::finish_response() {
    record_request();
    if (upstream_ != nullptr) {
        upstream_->disarm_timer();
        const bool reusable = request_complete_ && !upstream_eof_ && !response_.until_close() &&
                              response_.keep_alive() && evbuffer_get_length(upstream_->input()) == 0;
        if (reusable) {
            pool->release(upstream_);
        } else {
            pool->discard(upstream_);
        }
        upstream_ = nullptr;
    }
    response_active_ = false;
    end_event_stream();
    stream_.response_end();
}

// An event stream is silent between events for as long as the application likes; like a tunnel it is
// timed by the route's stream_idle (which falls back to the global one), not by upstream_body_idle.
Millis Exchange::response_body_idle() const {
    return event_stream_ ? route->timeouts.stream_idle : route->timeouts.upstream_body_idle;
}

// The active-streams gauge counts an event stream once, from its head until its response ends or the
// exchange is cancelled.
void Exchange::begin_event_stream() {
    if (stream_counted_) return;
    stream_counted_ = true;
    if (MetricsShard* m = worker_.metrics_shard()) m->stream_opened();
}

void Exchange::end_event_stream() {
    if (!stream_counted_) return;
    stream_counted_ = false;
    if (MetricsShard* m = worker_.metrics_shard()) m->stream_closed();
}

}  // namespace edgeguard
