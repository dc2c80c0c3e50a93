// The WebSocket tunnel of an HTTP/2 stream (RFC 8441): after the upstream's 101 the stream's DATA frames and
// the upstream socket carry the same bytes, with flow control as the back-pressure both ways.
//
// Client -> upstream: DATA bytes wait in pending_body_ and move to the upstream's output while it holds less
// than limits.buffer_per_direction; the client's window is given back only for what moved, so a slow
// upstream stops the client. Upstream -> client: the upstream's input moves into the stream's response
// buffer while response_room() says yes; the upstream socket is read only while its input is below the same
// limit, so a client that does not open its window stops the upstream. END_STREAM and the upstream's FIN
// are passed on as half-closes; a client's RST_STREAM closes the upstream socket, an upstream error resets
// the stream (CONNECT_ERROR); the route's stream_idle ends a tunnel with no byte either way.
#include <algorithm>

#include "proxy/core/worker.h"
#include "proxy/http2/http2_connection.h"
#include "proxy/http2/http2_stream.h"
#include "proxy/http2/websocket_handshake.h"
#include "proxy/pipeline/response_headers.h"
#include "proxy/tls/tls_bufferevent.h"

namespace edgeguard {

// The upstream switched protocols. Its Sec-WebSocket-Accept must prove it read our key (RFC 6455 §4.1);
// otherwise it is no WebSocket server and the client gets a 502, nothing tunnelled.
bool Http2Stream::start_tunnel(const ResponseHead& head, UpstreamConnection& conn) {
    if (closed_) return false;
    if (!websocket_accept_matches(fields_.websocket_key(), head.fields->find("sec-websocket-accept"))) {
        if (ex_.pool != nullptr) ex_.pool->discard(&conn);
        respond_error(502, "upstream WebSocket handshake: Sec-WebSocket-Accept does not match the key");
        return true;
    }
    // RFC 8441 §5: a 2xx accepts; the handshake's own fields (Upgrade, Connection, Sec-WebSocket-Accept)
    // have no meaning on the HTTP/2 side, the negotiated subprotocol and extensions do.
    head_.assign("HTTP/1.1 200 OK\r\n");
    const HeaderList& fields = *head.fields;
    for (size_t i = 0; i < fields.size(); ++i) {
        if (fields.field_class(i) & (HeaderList::kHopByHop | HeaderList::kContentLength)) continue;
        if (iequals(fields.name(i), "sec-websocket-accept")) continue;
        head_.append(fields.name(i)).append(": ").append(fields.value(i)).append("\r\n");
    }
    head_.append("\r\n");
    apply_response_headers(head_, &listener_->response_headers, head.route_fields);
    ex_.accounting.status = 200;
    ex_.accounting.bytes_out += head_.size();
    tunnel_upstream_ = &conn;
    conn.set_owner(this);
    if (!submit_head(head_, true)) return true;  // the stream is reset; on_closed gives the connection back
    // Logged and counted now, as an HTTP/1.1 tunnel is at its 101: the line says who opened it and when.
    record();
    tunnel_counted_ = true;
    if (MetricsShard* m = conn_.worker().metrics_shard()) m->stream_opened();
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    bufferevent_setwatermark(conn.bev(), EV_WRITE, limit / 2, 0);
    tunnel_deadline_ = std::chrono::steady_clock::now() + ex_.route->timeouts.stream_idle;
    pump_tunnel();  // bytes that came after the 101 in its read, and DATA the client sent early
    conn_.schedule_flush();
    return true;
}

void Http2Stream::tunnel_from_client(const uint8_t* data, size_t len) {
    if (tunnel_upstream_ == nullptr && response_started_) {
        // No tunnel came of it (or it is over): the bytes have nowhere to go.
        nghttp2_session_consume(conn_.session(), id_, len);
        return;
    }
    // Before the 101 the bytes wait unacknowledged: the stream's window bounds them.
    evbuffer_add(pending_body_, data, len);
    if (tunnel_upstream_ != nullptr) pump_tunnel();
}

void Http2Stream::pump_tunnel() {
    if (tunnel_upstream_ == nullptr || closed_) return;
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    evbuffer* up_in = tunnel_upstream_->input();
    evbuffer* up_out = tunnel_upstream_->output();
    bool moved = false;

    const size_t to_upstream = evbuffer_get_length(pending_body_);
    if (to_upstream != 0 && !tunnel_half_closed_ && evbuffer_get_length(up_out) < limit) {
        evbuffer_add_buffer(up_out, pending_body_);
        // WINDOW_UPDATE: the client may send as much again as the upstream's buffer took.
        nghttp2_session_consume(conn_.session(), id_, to_upstream);
        moved = true;
    }
    if (body_ended_ && !tunnel_half_closed_ && evbuffer_get_length(pending_body_) == 0) {
        if (evbuffer_get_length(up_out) == 0) {
            shutdown_write(tunnel_upstream_->bev());  // the client's END_STREAM is the upstream's FIN
            tunnel_half_closed_ = true;
        } else {
            bufferevent_setwatermark(tunnel_upstream_->bev(), EV_WRITE, 0, 0);  // told once it is all written
        }
    }

    if (evbuffer_get_length(up_in) != 0) {
        if (response_room()) {  // registers the stream for output_drained otherwise
            ex_.accounting.bytes_out += evbuffer_get_length(up_in);
            evbuffer_add_buffer(response_body_, up_in);  // draining the input lets the upstream be read again
            resume_response();
            moved = true;
        }
    }
    if (tunnel_upstream_ended_ && evbuffer_get_length(up_in) == 0 && !response_ended_) {
        response_ended_ = true;  // the upstream's FIN is END_STREAM once the bytes before it went out
        resume_response();
        moved = true;
    }
    if (moved) {
        tunnel_deadline_ = std::chrono::steady_clock::now() + ex_.route->timeouts.stream_idle;
        conn_.schedule_flush();
    }
}

void Http2Stream::end_tunnel() {
    if (tunnel_counted_) {
        tunnel_counted_ = false;
        if (MetricsShard* m = conn_.worker().metrics_shard()) m->stream_closed();
    }
    if (tunnel_upstream_ == nullptr) return;
    UpstreamConnection* conn = tunnel_upstream_;
    tunnel_upstream_ = nullptr;
    if (ex_.pool != nullptr) ex_.pool->discard(conn);  // never reused: it spoke WebSocket
}

bool Http2Stream::drain_tunnel() {
    if (tunnel_upstream_ == nullptr || tunnel_half_closed_) return false;
    const size_t held = evbuffer_get_length(pending_body_);
    if (held != 0) {
        evbuffer_add_buffer(tunnel_upstream_->output(), pending_body_);
        nghttp2_session_consume_connection(conn_.session(), held);  // the stream's own window is gone with it
    }
    if (evbuffer_get_length(tunnel_upstream_->output()) == 0) {
        shutdown_write(tunnel_upstream_->bev());
        tunnel_half_closed_ = true;
        return false;
    }
    // Kept off the free list until the output is written (upstream_writable), the upstream goes away or
    // stream_idle passes; the connection's tick keeps checking it.
    tunnel_draining_ = true;
    bufferevent_setwatermark(tunnel_upstream_->bev(), EV_WRITE, 0, 0);
    tunnel_deadline_ = std::chrono::steady_clock::now() + ex_.route->timeouts.stream_idle;
    return true;
}

void Http2Stream::finish_drain() {
    tunnel_draining_ = false;
    if (tunnel_upstream_ != nullptr && evbuffer_get_length(tunnel_upstream_->output()) == 0) {
        shutdown_write(tunnel_upstream_->bev());
        tunnel_half_closed_ = true;
    }
    end_tunnel();
    finish_if_done();
}

void Http2Stream::check_tunnel_idle(std::chrono::steady_clock::time_point now) {
    if (tunnel_upstream_ == nullptr || now < tunnel_deadline_) return;
    if (tunnel_draining_) {
        finish_drain();
        return;
    }
    if (closed_) return;
    end_tunnel();
    reset_stream(NGHTTP2_CANCEL);
}

// ---------------------------------------------------------------------------------------------------------
// The upstream connection's events, once the tunnel owns it
// ---------------------------------------------------------------------------------------------------------

void Http2Stream::upstream_connected(UpstreamConnection&) {}  // a tunnel's connection is connected

void Http2Stream::upstream_readable(UpstreamConnection& conn) {
    Guard guard(*this);
    if (tunnel_draining_) {
        evbuffer_drain(conn.input(), evbuffer_get_length(conn.input()));  // the client has gone: dropped
        return;
    }
    pump_tunnel();
}

void Http2Stream::upstream_writable(UpstreamConnection& conn) {
    Guard guard(*this);
    if (tunnel_draining_) {
        if (evbuffer_get_length(conn.output()) == 0) finish_drain();
        return;
    }
    pump_tunnel();
}

void Http2Stream::upstream_closed(UpstreamConnection&, short events) {
    Guard guard(*this);
    if (tunnel_draining_) {
        finish_drain();
        return;
    }
    if ((events & BEV_EVENT_EOF) != 0 && (events & BEV_EVENT_ERROR) == 0) {
        tunnel_upstream_ended_ = true;
        pump_tunnel();
        return;
    }
    // RFC 9113 §8.5: an error on the tunnelled connection is a CONNECT_ERROR on the stream.
    end_tunnel();
    reset_stream(NGHTTP2_CONNECT_ERROR);
    conn_.schedule_flush();
}

void Http2Stream::upstream_timer_fired(UpstreamConnection&) {}  // disarmed before the tunnel began

}  // namespace edgeguard
