// ClientConnection, the response side: the exchange's response framed as HTTP/1.1 (DownstreamStream), and
// the byte relay of an upgraded (WebSocket) connection.
#include "proxy/http1/client_connection.h"

#include <cstdio>

#include "proxy/core/worker.h"
#include "proxy/http1/body_framing.h"
#include "proxy/pipeline/response_headers.h"

namespace edgeguard {

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
        // Chunked or close-delimited upstream: chunked for HTTP/1.1 clients so their connection can stay
        // open (a close-delimited body is flushed on every upstream read); an HTTP/1.0 client reads to the
        // close.
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
    append_rate_limit_fields(scratch_, head.rate_limit);
    client_stage_.append(scratch_);
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

// After a matching 101 both sockets carry the new protocol: bytes are moved between the buffers without
// copying, each direction paused while the other side's output is full, and the stream's own idle timeout
// (RouteConfig::timeouts.stream_idle) replaces the HTTP timeouts.
void ClientConnection::response_upgraded(const ResponseHead& head, UpstreamConnection& conn) {
    DownstreamResponseHead framing;
    framing.status = head.status;
    framing.upgrade = true;
    scratch_.clear();
    append_downstream_response_head(scratch_, *head.fields, framing);
    bufferevent_write(bev_, scratch_.data(), scratch_.size());
    ex_.accounting.bytes_out += scratch_.size();
    response_started_ = true;
    tunnel_upstream_ = &conn;
    conn.set_owner(this);
    tunnel_ = true;
    phase_ = RequestPhase::Done;
    record_exchange();
    stream_began();
    pump_tunnel();
}

// ---------------------------------------------------------------------------------------------------------
// The tunnel
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::upstream_connected(UpstreamConnection&) {}  // a tunnel's connection is connected

void ClientConnection::upstream_readable(UpstreamConnection&) {
    Entry entry(this);
    pump_tunnel();
}

void ClientConnection::upstream_writable(UpstreamConnection&) {
    Entry entry(this);
    pump_tunnel();
}

void ClientConnection::upstream_closed(UpstreamConnection&, short) {
    Entry entry(this);
    // The upstream ended the stream: hand the client what is already here, then close.
    evbuffer_add_buffer(bufferevent_get_output(bev_), tunnel_upstream_->input());
    close_after_flush();
}

void ClientConnection::upstream_timer_fired(UpstreamConnection&) {}  // disarmed before the tunnel began

void ClientConnection::pump_tunnel() {
    if (closed_ || tunnel_upstream_ == nullptr) return;
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    evbuffer* client_in = bufferevent_get_input(bev_);
    evbuffer* client_out = bufferevent_get_output(bev_);
    evbuffer* up_in = tunnel_upstream_->input();
    evbuffer* up_out = tunnel_upstream_->output();
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

// The gauge counts a tunnel once from its start until the connection closes.
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

}  // namespace edgeguard
