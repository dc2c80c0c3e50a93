#include "proxy/http1/client_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <algorithm>
#include <cstring>

#include "proxy/core/direct_write.h"
#include "proxy/http2/http2_connection.h"
#include "proxy/pipeline/http_errors.h"
#include "proxy/pipeline/response_headers.h"
#include "proxy/tls/tls_bufferevent.h"
#include "proxy/core/worker.h"

namespace edgeguard {

namespace {

// After an early error response, unread request bytes are read and dropped for a while before closing, so
// the client sees our response instead of a reset (lingering close, as nginx does).
constexpr Millis kLingerTime{2'000};
constexpr size_t kLingerMaxBytes = 1 << 20;

// RFC 9113 §3.4: what an HTTP/2 client with prior knowledge sends first.
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

ClientConnection::Entry::~Entry() {
    if (--conn->depth_ == 0 && conn->closed_) delete conn;
}

// ---------------------------------------------------------------------------------------------------------
// Setup and teardown
// ---------------------------------------------------------------------------------------------------------

ClientConnection::ClientConnection(Worker& worker, evutil_socket_t fd, const sockaddr* peer,
                                   socklen_t peer_len, size_t listener_index, const ServerTlsContext* tls,
                                   ConnectionLimits::Ticket ticket)
    : worker_(worker), listener_index_(listener_index), ex_(worker, *this, peer, peer_len), ticket_(ticket) {
    bev_ = new_client_bufferevent(worker_.base(), fd, tls);
    client_direct_ = tls == nullptr;
    timer_ready_ = timer_.init(worker_.base(), &ClientConnection::on_client_timer, this);
    llhttp_init(&req_parser_, HTTP_REQUEST, &request_settings());
    req_parser_.data = this;
}

ClientConnection::~ClientConnection() {
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    timer_.stop();
    reader_.detach();
    if (bev_ != nullptr) bufferevent_free(bev_);
}

bool ClientConnection::accept(Worker& worker, evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len,
                              size_t listener_index, const ServerTlsContext* tls,
                              ConnectionLimits::Ticket ticket) {
    // TCP_NODELAY comes from the listening socket (open_listening_socket), accept4 made it non-blocking.
    auto* conn = new ClientConnection(worker, fd, peer, peer_len, listener_index, tls, ticket);
    if (conn->bev_ == nullptr || !conn->timer_ready_ || !conn->client_stage_.ready() || !conn->ex_.ready()) {
        if (conn->bev_ == nullptr) ::close(fd);
        delete conn;
        return false;
    }
    if (!conn->reader_.attach(conn->bev_, conn->client_direct_, &ClientConnection::on_client_read,
                              &ClientConnection::on_client_write, &ClientConnection::on_client_event, conn)) {
        delete conn;
        return false;
    }
    worker.connection_opened(conn);
    const uint32_t limit = worker.current_snapshot()->config->limits.buffer_per_direction;
    // Bounded buffers in both directions: input stops being read at `limit`, and the upstream side stops
    // being drained while our output holds more than `limit` (response_room).
    conn->reader_.set_high_watermark(limit);
    bufferevent_setwatermark(conn->bev_, EV_WRITE, limit / 2, 0);
    if (conn->client_direct_) {
        enable_write_when_queued(conn->bev_);
    } else {
        bufferevent_enable(conn->bev_, EV_WRITE);  // TLS: the handshake writes too
    }
    conn->reader_.enable();
    if (!conn->refresh_snapshot()) {
        conn->close();
        return false;
    }
    // A new connection gets the header deadline to send its first byte (slowloris), not the long keep-alive
    // idle time a client earns by completing a request.
    const Timeouts& t = conn->snapshot_->config->timeouts;
    conn->arm_client_timer(ClientTimer::KeepAlive, std::min(t.client_header, t.client_keepalive));
    return true;
}

bool ClientConnection::refresh_snapshot() {
    const std::shared_ptr<const Snapshot>& current = worker_.current_snapshot();
    // Twice per keep-alive request, nearly always unchanged: the listener found in it still holds.
    if (current == snapshot_ && listener_ != nullptr) return true;
    snapshot_ = current;
    listener_ = worker_.listener_config(*snapshot_, listener_index_);
    return listener_ != nullptr;
}

void ClientConnection::begin_drain() {
    Entry entry(this);
    draining_ = true;
    if (phase_ == RequestPhase::Idle && !close_after_flush_) close();
}

void ClientConnection::close() {
    if (closed_) return;
    closed_ = true;
    ex_.cancel();
    discard_tunnel_upstream();
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    timer_.stop();
    if (bev_ != nullptr) {
        reader_.detach();
        bufferevent_free(bev_);
        bev_ = nullptr;
    }
    stream_ended();
    worker_.connection_closed(this);
    if (depth_ == 0) delete this;
}

void ClientConnection::arm_client_timer(ClientTimer kind, Millis after, DeadlineTimer::Clock::time_point now) {
    timer_kind_ = kind;
    timer_.arm_from(now, after);
}

// The first byte of a request arrived: the header deadline starts now and counts the whole head.
void ClientConnection::begin_request_head() {
    phase_ = RequestPhase::Head;
    ex_.begin(*snapshot_, *listener_);
    head_scanner_.reset();
    req_headers_.clear();
    arm_client_timer(ClientTimer::Header, snapshot_->config->timeouts.client_header, ex_.accounting.started);
}

void ClientConnection::on_client_timer(void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    Entry entry(self);
    if (tls_handshake_incomplete(self->bev_)) {
        // Our deadline ends a handshake the client never finished: a failed handshake, reason "timeout".
        if (SSL* ssl = bufferevent_openssl_get_ssl(self->bev_)) count_tls_handshake_timeout(ssl);
        if (MetricsShard* m = self->worker_.metrics_shard()) m->tls_handshake_failed();
    }
    switch (self->timer_kind_) {
        case ClientTimer::KeepAlive:
        case ClientTimer::StreamIdle:
        case ClientTimer::Linger:
        case ClientTimer::None: self->close(); return;
        case ClientTimer::Header:
            if (MetricsShard* m = self->worker_.metrics_shard()) m->rejected(RejectReason::Timeout);
            self->respond_error(408, "request header deadline passed");
            return;
        case ClientTimer::BodyIdle: self->fail_with_status_or_abort(408, "request body idle timeout"); return;
    }
}

// ---------------------------------------------------------------------------------------------------------
// Client socket events
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::on_client_read(bufferevent*, void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    Entry entry(self);
    if (self->lingering_) {
        evbuffer* in = bufferevent_get_input(self->bev_);
        self->body_bytes_ += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (self->body_bytes_ > kLingerMaxBytes) self->close();
        return;
    }
    if (self->close_after_flush_) return;
    if (self->tunnel_) {
        self->pump_tunnel();
        return;
    }
    if (self->phase_ == RequestPhase::Idle) {
        if (!self->refresh_snapshot()) {
            self->close();
            return;
        }
        if (!self->protocol_chosen_ && self->hand_over_to_http2()) return;
        self->begin_request_head();
    } else if (self->phase_ == RequestPhase::Body) {
        const Timeouts& t =
            self->ex_.route != nullptr ? self->ex_.route->timeouts : self->snapshot_->config->timeouts;
        self->arm_client_timer(ClientTimer::BodyIdle, t.client_body_idle);
    }
    self->process_client_input();
}

void ClientConnection::on_client_write(bufferevent*, void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    Entry entry(self);
    if (self->close_after_flush_) {
        if (evbuffer_get_length(bufferevent_get_output(self->bev_)) != 0) return;
        if (self->lingering_) return;
        // The client asked for the close and its request was read to the end: nothing more is coming, so
        // the socket closes at once (a FIN after our response) instead of half-closing and waiting for its
        // EOF, which costs a shutdown, a re-armed read event, a read and a timer per connection.
        if (self->client_direct_ && !self->tunnel_ && !self->keep_alive_ &&
            self->phase_ == RequestPhase::Done && evbuffer_get_length(bufferevent_get_input(self->bev_)) == 0) {
            self->close();
            return;
        }
        // Early response with request bytes possibly still unread: half-close and drain before closing.
        self->lingering_ = true;
        self->body_bytes_ = 0;
        if (!self->client_direct_) {
            // TLS: end with close_notify, so clients can tell a complete response from a truncated one.
            if (SSL* ssl = bufferevent_openssl_get_ssl(self->bev_)) SSL_shutdown(ssl);
        }
        ::shutdown(bufferevent_getfd(self->bev_), SHUT_WR);
        self->reader_.set_high_watermark(0);
        self->reader_.enable();
        self->arm_client_timer(ClientTimer::Linger, kLingerTime);
        evbuffer* in = bufferevent_get_input(self->bev_);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    // Our output drained below the low watermark: the upstream may be read again.
    if (self->tunnel_) {
        self->pump_tunnel();
        return;
    }
    self->ex_.response_drained();
}

void ClientConnection::on_client_event(bufferevent*, short events, void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    if (events & BEV_EVENT_CONNECTED) {
        // A TLS handshake completed; data follows. A client that chose h2 gets our SETTINGS at once.
        Entry entry(self);
        if (!self->protocol_chosen_ && self->refresh_snapshot()) self->hand_over_to_http2();
        return;
    }
    Entry entry(self);
    // EOF or error: the client is gone. Whatever is in flight upstream is cancelled at once, so a
    // disconnected client never leaves an orphaned upstream stream behind.
    if ((events & BEV_EVENT_ERROR) && tls_handshake_incomplete(self->bev_)) {
        if (MetricsShard* m = self->worker_.metrics_shard()) m->tls_handshake_failed();
    }
    self->close();
}

// ---------------------------------------------------------------------------------------------------------
// HTTP/2
// ---------------------------------------------------------------------------------------------------------

// Decided once, before the first request byte is parsed: ALPN "h2" after a TLS handshake, or the h2c preface
// on a plain listener that allows it. True when this connection is gone (handed over, or waiting for the
// rest of a preface).
bool ClientConnection::hand_over_to_http2() {
    bool http2 = false;
    if (!client_direct_) {
        SSL* ssl = bufferevent_openssl_get_ssl(bev_);
        if (ssl == nullptr || tls_handshake_incomplete(bev_)) return false;
        const unsigned char* alpn = nullptr;
        unsigned int alpn_len = 0;
        SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
        http2 = alpn_len == 2 && std::memcmp(alpn, "h2", 2) == 0;
    } else if (listener_->h2c) {
        evbuffer* in = bufferevent_get_input(bev_);
        const size_t n = std::min(evbuffer_get_length(in), kHttp2Preface.size());
        char start[kHttp2Preface.size()];
        if (evbuffer_copyout(in, start, n) != static_cast<ev_ssize_t>(n)) return false;
        if (std::string_view(start, n) != kHttp2Preface.substr(0, n)) {
            protocol_chosen_ = true;
            return false;
        }
        if (n < kHttp2Preface.size()) return true;  // the rest of the preface decides
        http2 = true;
    }
    protocol_chosen_ = true;
    if (!http2) return false;
    // The HTTP/2 connection takes the socket, its place in the worker's list and its connection-limit slot.
    bufferevent* bev = bev_;
    reader_.detach();
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    bev_ = nullptr;
    timer_.stop();
    closed_ = true;
    ConnectionLimits::Ticket ticket = ticket_;
    ticket_ = {};
    Http2Connection::adopt(worker_, bev, client_direct_, listener_index_, ticket, this);
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// Errors and closing
// ---------------------------------------------------------------------------------------------------------

// Our own error response. The rest of the request is not read, so the connection closes after it.
void ClientConnection::respond_error(int status, std::string_view message) {
    // A decision made from a well-framed head of a body-less request (403, 404, 429, 503...) keeps the
    // connection: the parser is run on to the end of that message. Parse errors, timeouts and anything with
    // an unread body close it, because the rest of the byte stream cannot be trusted or skipped.
    const bool framing_error = status == 400 || status == 405 || status == 408 || status == 413 ||
                               status == 414 || status == 417 || status == 431 || status == 501 || status == 505;
    if (!framing_error && phase_ == RequestPhase::Dispatch && !req_has_body_ && keep_alive_ && !draining_) {
        pause_reason_ = PauseReason::None;
        static const char kNothing[1] = {0};
        if (llhttp_execute(&req_parser_, kNothing, 0) == HPE_PAUSED) llhttp_resume(&req_parser_);
        if (pause_reason_ == PauseReason::MessageComplete) phase_ = RequestPhase::Done;
    }
    const bool close = framing_error || phase_ != RequestPhase::Done || !keep_alive_ || draining_;
    ex_.note_error_reason(status, message);
    scratch_.clear();
    append_error_response(scratch_, status, message, close);
    if (status == 400 || status == 414 || status == 431 || status == 501 || status == 505) {
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Parse);
    }
    respond_local(scratch_, close, status);
}

// A JSON response the exchange chose (429, a privacy rejection). Like respond_error's decisions, a
// body-less request keeps the connection; anything with a body pending closes it.
void ClientConnection::respond_json(int status, std::string_view json_body,
                                    std::string_view extra_header_lines) {
    if (phase_ == RequestPhase::Dispatch && !req_has_body_ && keep_alive_ && !draining_) {
        pause_reason_ = PauseReason::None;
        static const char kNothing[1] = {0};
        if (llhttp_execute(&req_parser_, kNothing, 0) == HPE_PAUSED) llhttp_resume(&req_parser_);
        if (pause_reason_ == PauseReason::MessageComplete) phase_ = RequestPhase::Done;
    }
    const bool close = phase_ != RequestPhase::Done || !keep_alive_ || draining_;
    scratch_.clear();
    append_json_response(scratch_, status, json_body, close, extra_header_lines);
    respond_local(scratch_, close, status);
}

void ClientConnection::respond_local(std::string_view response_bytes, bool close_after, int status) {
    ex_.abandon_upstream();
    timer_.disarm();
    timer_kind_ = ClientTimer::None;
    response_started_ = true;
    ex_.accounting.status = status;
    const RouteConfig* route = ex_.route;
    const bool fields_configured = listener_ != nullptr && (!listener_->response_headers.empty() ||
                                                            (route != nullptr && !route->response_headers.empty()));
    const size_t head_end = fields_configured ? response_bytes.find("\r\n\r\n") : std::string_view::npos;
    std::string with_fields;  // stays empty (no allocation) unless fields are configured
    if (head_end != std::string_view::npos) {
        // edgeguard's own answers get the configured fields too (HSTS must not vanish on a 404).
        with_fields.assign(response_bytes.substr(0, head_end + 4));
        apply_response_headers(with_fields, &listener_->response_headers,
                               route != nullptr ? &route->response_headers : nullptr);
        with_fields.append(response_bytes.substr(head_end + 4));
        response_bytes = with_fields;
    }
    ex_.accounting.bytes_out += response_bytes.size();
    record_exchange();
    bufferevent_write(bev_, response_bytes.data(), response_bytes.size());
    if (close_after || phase_ != RequestPhase::Done) {
        close_after_flush();
        return;
    }
    phase_ = RequestPhase::Idle;
    ex_.route = nullptr;
    arm_client_timer(ClientTimer::KeepAlive, snapshot_->config->timeouts.client_keepalive);
    process_client_input();
}

// One finished exchange: per-route counters and one access-log line, with what the parser got to.
void ClientConnection::record_exchange() {
    ex_.record(llhttp_method_name(static_cast<llhttp_method_t>(req_parser_.method)),
               ex_.access_logged() ? req_headers_.find(HeaderList::kHost) : "", url_);
}

// Before the response started we can still answer with a status; afterwards the only honest signal left
// is closing the connection mid-body.
void ClientConnection::fail_with_status_or_abort(int status, std::string_view message) {
    if (!response_started_) {
        respond_error(status, message);
        return;
    }
    ex_.abandon_upstream();
    reset(status, message);
}

void ClientConnection::close_after_flush() {
    close_after_flush_ = true;
    ex_.abandon_upstream();
    discard_tunnel_upstream();
    reader_.disable();
    arm_client_timer(ClientTimer::Linger, kLingerTime);
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) on_client_write(bev_, this);
}

void ClientConnection::discard_tunnel_upstream() {
    if (tunnel_upstream_ == nullptr) return;
    ex_.pool->discard(tunnel_upstream_);
    tunnel_upstream_ = nullptr;
}

}  // namespace edgeguard
