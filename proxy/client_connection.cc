#include "proxy/client_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "proxy/access_control.h"
#include "proxy/body_framing.h"
#include "proxy/client_ip.h"
#include "proxy/direct_write.h"
#include "proxy/http_errors.h"
#include "proxy/privacy_stage.h"
#include "proxy/router.h"
#include "proxy/tls_bufferevent.h"
#include "proxy/tls_redirect.h"
#include "proxy/worker.h"

namespace edgeguard {

namespace {

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
// After an early error response, unread request bytes are read and dropped for a while before closing, so
// the client sees our response instead of a reset (lingering close, as nginx does).
constexpr Millis kLingerTime{2'000};
constexpr size_t kLingerMaxBytes = 1 << 20;
// A filtered route without its own limit still must not buffer without bound (capture's 20 MB wire limit).
constexpr uint64_t kDefaultFilteredBodyLimit = 20 * 1024 * 1024;

timeval to_timeval(Millis ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

ClientConnection* self_of(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }

int status_for_parse_error(llhttp_errno_t err) {
    switch (err) {
        case HPE_INVALID_TRANSFER_ENCODING: return 501;
        case HPE_INVALID_VERSION: return 505;
        default: return 400;
    }
}

// Host is uri-host [":" port]: a reg-name, IPv4 or bracketed IPv6 literal. No spaces, lists or userinfo.
bool is_valid_host_value(std::string_view host) {
    for (char c : host) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
                        c == '.' || c == ':' || c == '[' || c == ']' || c == '_' || c == '~' || c == '%';
        if (!ok) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

ClientConnection::Entry::~Entry() {
    if (--conn->depth_ == 0 && conn->closed_) delete conn;
}

// ---------------------------------------------------------------------------------------------------------
// Setup and teardown
// ---------------------------------------------------------------------------------------------------------

ClientConnection::ClientConnection(Worker& worker, evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len,
                                   const ListenerConfig& listener, const ServerTlsContext* tls,
                                   ConnectionLimits::Ticket ticket)
    : worker_(worker), listener_(listener), ticket_(ticket) {
    std::memcpy(&peer_, peer, std::min<size_t>(peer_len, sizeof peer_));
    peer_text_ = peer_address_text(peer);
    peer_ip_ = IpAddress::from_sockaddr(peer);
    client_ip_ = peer_ip_;
    client_addr_ = peer_;
    client_text_ = peer_text_;
    bev_ = new_client_bufferevent(worker_.base(), fd, tls);
    client_direct_ = tls == nullptr;
    client_stage_ = evbuffer_new();
    upstream_stage_ = evbuffer_new();
    timer_ = evtimer_new(worker_.base(), &ClientConnection::on_client_timer, this);
    llhttp_init(&req_parser_, HTTP_REQUEST, &request_settings());
    req_parser_.data = this;
    llhttp_init(&resp_parser_, HTTP_RESPONSE, &response_settings());
    resp_parser_.data = this;
}

ClientConnection::~ClientConnection() {
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    if (client_stage_ != nullptr) evbuffer_free(client_stage_);
    if (upstream_stage_ != nullptr) evbuffer_free(upstream_stage_);
    if (timer_ != nullptr) event_free(timer_);
    reader_.detach();
    if (bev_ != nullptr) bufferevent_free(bev_);
}

bool ClientConnection::accept(Worker& worker, evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len,
                              const ListenerConfig& listener, const ServerTlsContext* tls,
                              ConnectionLimits::Ticket ticket) {
    // TCP_NODELAY comes from the listening socket (open_listening_socket), accept4 made it non-blocking.
    auto* conn = new ClientConnection(worker, fd, peer, peer_len, listener, tls, ticket);
    if (conn->bev_ == nullptr || conn->timer_ == nullptr || conn->client_stage_ == nullptr ||
        conn->upstream_stage_ == nullptr) {
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
    // being drained while our output holds more than `limit` (see process_upstream_input).
    conn->reader_.set_high_watermark(limit);
    bufferevent_setwatermark(conn->bev_, EV_WRITE, limit / 2, 0);
    if (conn->client_direct_) {
        enable_write_when_queued(conn->bev_);
    } else {
        bufferevent_enable(conn->bev_, EV_WRITE);  // TLS: the handshake writes too
    }
    conn->reader_.enable();
    conn->snapshot_ = worker.current_snapshot();
    // A new connection gets the header deadline to send its first byte (slowloris), not the long keep-alive
    // idle time a client earns by completing a request.
    const Timeouts& t = conn->snapshot_->config->timeouts;
    conn->arm_client_timer(ClientTimer::KeepAlive, std::min(t.client_header, t.client_keepalive));
    return true;
}

void ClientConnection::begin_drain() {
    Entry entry(this);
    draining_ = true;
    if (phase_ == RequestPhase::Idle && !close_after_flush_) close();
}

void ClientConnection::close() {
    if (closed_) return;
    closed_ = true;
    if (waiting_for_dns_ && pool_ != nullptr) pool_->cancel_wait(this);
    waiting_for_dns_ = false;
    if (rate_pending_) {
        if (RedisLimiter* redis = worker_.redis_limiter()) redis->cancel(this);
        rate_pending_ = false;
    }
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    if (upstream_ != nullptr) {
        pool_->discard(upstream_);
        upstream_ = nullptr;
    }
    if (timer_ != nullptr) {
        event_free(timer_);
        timer_ = nullptr;
    }
    if (bev_ != nullptr) {
        reader_.detach();
        bufferevent_free(bev_);
        bev_ = nullptr;
    }
    if (tunnel_) {
        if (MetricsShard* m = worker_.metrics_shard()) m->stream_closed();
    }
    worker_.connection_closed(this);
    if (depth_ == 0) delete this;
}

void ClientConnection::arm_client_timer(ClientTimer kind, Millis after) {
    timer_kind_ = kind;
    timeval tv = to_timeval(after);
    evtimer_add(timer_, &tv);
}

// The first byte of a request arrived: the header deadline starts now and counts the whole head.
void ClientConnection::begin_request_head() {
    phase_ = RequestPhase::Head;
    req_started_ = std::chrono::steady_clock::now();
    timeval now;
    gettimeofday(&now, nullptr);
    req_started_unix_micros_ = static_cast<int64_t>(now.tv_sec) * 1'000'000 + now.tv_usec;
    upstream_micros_ = -1;
    req_bytes_in_ = 0;
    resp_bytes_out_ = 0;
    resp_status_ = 0;
    verdict_ = {};
    rule_ids_.clear();
    recorded_ = false;
    head_scanner_.reset();
    arm_client_timer(ClientTimer::Header, snapshot_->config->timeouts.client_header);
}

void ClientConnection::on_client_timer(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    Entry entry(self);
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
        self->snapshot_ = self->worker_.current_snapshot();
        self->begin_request_head();
    } else if (self->phase_ == RequestPhase::Body) {
        const Timeouts& t = self->route_ != nullptr ? self->route_->timeouts : self->snapshot_->config->timeouts;
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
    if (self->resp_phase_ == ResponsePhase::Head || self->resp_phase_ == ResponsePhase::Body)
        self->process_upstream_input();
}

void ClientConnection::on_client_event(bufferevent*, short events, void* arg) {
    auto* self = static_cast<ClientConnection*>(arg);
    if (events & BEV_EVENT_CONNECTED) return;  // a TLS handshake completed; data follows
    Entry entry(self);
    // EOF or error: the client is gone. Whatever is in flight upstream is cancelled at once, so a
    // disconnected client never leaves an orphaned upstream stream behind.
    if ((events & BEV_EVENT_ERROR) && tls_handshake_incomplete(self->bev_)) {
        if (MetricsShard* m = self->worker_.metrics_shard()) m->tls_handshake_failed();
    }
    self->close();
}

// ---------------------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------------------

const llhttp_settings_t& ClientConnection::request_settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &ClientConnection::req_message_begin;
        s.on_url = &ClientConnection::req_url;
        s.on_header_field = &ClientConnection::req_header_field;
        s.on_header_value = &ClientConnection::req_header_value;
        s.on_header_value_complete = &ClientConnection::req_header_value_complete;
        s.on_headers_complete = &ClientConnection::req_headers_complete;
        s.on_body = &ClientConnection::req_body;
        s.on_chunk_header = &ClientConnection::req_chunk_header;
        s.on_chunk_extension_name = &ClientConnection::req_chunk_extension;
        s.on_chunk_extension_value = &ClientConnection::req_chunk_extension;
        s.on_message_complete = &ClientConnection::req_message_complete;
        return s;
    }();
    return settings;
}

int ClientConnection::req_message_begin(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    self->url_.clear();
    self->req_headers_.clear();
    self->header_bytes_ = 0;
    self->pending_status_ = 0;
    self->route_ = nullptr;
    self->body_bytes_ = 0;
    self->body_limit_ = 0;
    self->buffering_ = false;
    self->body_buf_.clear();
    self->forward_body_.clear();
    self->forward_rewritten_ = false;
    self->expect_continue_ = false;
    self->continue_sent_ = false;
    self->upgrade_requested_ = false;
    self->connect_attempts_ = 0;
    self->retried_ = false;
    self->response_started_ = false;
    return 0;
}

int ClientConnection::req_url(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    const Limits& limits = self->snapshot_->config->limits;
    if (self->url_.size() + len > limits.max_uri_bytes) {
        self->pending_status_ = 414;
        self->pending_message_ = "request target too long";
        return -1;
    }
    self->url_.append(at, len);
    return 0;
}

int ClientConnection::req_header_field(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (self->phase_ == RequestPhase::Body) {
        // Trailer fields: never forwarded, but held to the header-name grammar (no whitespace before ':').
        for (size_t i = 0; i < len; ++i) {
            if (at[i] == ' ' || at[i] == '\t') {
                self->pending_status_ = 400;
                self->pending_message_ = "malformed trailer field";
                return -1;
            }
        }
        return 0;
    }
    const Limits& limits = self->snapshot_->config->limits;
    self->header_bytes_ += static_cast<uint32_t>(len);
    if (self->header_bytes_ + self->url_.size() > limits.max_header_bytes ||
        self->req_headers_.size() >= limits.max_headers + 1) {
        self->pending_status_ = 431;
        self->pending_message_ = "request header fields too large";
        return -1;
    }
    self->req_headers_.append_name(at, len);
    return 0;
}

int ClientConnection::req_header_value(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (self->phase_ == RequestPhase::Body) return 0;  // trailer value: dropped
    self->header_bytes_ += static_cast<uint32_t>(len);
    if (self->header_bytes_ + self->url_.size() > self->snapshot_->config->limits.max_header_bytes) {
        self->pending_status_ = 431;
        self->pending_message_ = "request header fields too large";
        return -1;
    }
    self->req_headers_.append_value(at, len);
    return 0;
}

int ClientConnection::req_header_value_complete(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    if (self->phase_ == RequestPhase::Body) return 0;
    self->req_headers_.end_field();
    if (self->req_headers_.size() > self->snapshot_->config->limits.max_headers) {
        self->pending_status_ = 431;
        self->pending_message_ = "too many request header fields";
        return -1;
    }
    return 0;
}

int ClientConnection::req_headers_complete(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    self->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    self->req_chunked_ = (p->flags & F_CHUNKED) != 0;
    self->req_content_length_ = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
    self->req_has_body_ = self->req_chunked_ || self->req_content_length_ > 0 ||
                          (p->flags & F_TRANSFER_ENCODING) != 0;
    // An Upgrade request is parsed as an ordinary body-less request: once it is complete the parser stays
    // paused, so bytes a client sends before the 101 are never read as HTTP (RFC 9931); they become tunnel
    // data after a matching 101, or the connection closes after any other response. h2c is never tunnelled
    // (it would bypass path rules, PROXY.md §2.8): its Upgrade header is dropped like any hop-by-hop field.
    self->upgrade_requested_ = false;
    if (p->upgrade && p->method != HTTP_CONNECT && !self->req_has_body_) {
        std::string_view proto = self->req_headers_.find("upgrade");
        if (!proto.empty() && !iequals(proto, "h2c")) {
            self->upgrade_requested_ = true;
            self->upgrade_protocol_.assign(proto);
        }
    }
    p->upgrade = 0;
    self->pause_reason_ = PauseReason::HeadComplete;
    return HPE_PAUSED;
}

int ClientConnection::req_body(llhttp_t* p, const char* at, size_t len) {
    return self_of(p)->on_request_body(at, len);
}

int ClientConnection::req_chunk_header(llhttp_t* p) {
    self_of(p)->chunk_extension_bytes_ = 0;
    return 0;
}

int ClientConnection::req_chunk_extension(llhttp_t* p, const char* at, size_t len) {
    constexpr uint32_t kMaxChunkExtensionBytes = 1024;  // PROXY.md §2.1: bound chunk-extension length
    ClientConnection* self = self_of(p);
    (void)at;
    self->chunk_extension_bytes_ += static_cast<uint32_t>(len);
    if (self->chunk_extension_bytes_ > kMaxChunkExtensionBytes) {
        self->pending_status_ = 400;
        self->pending_message_ = "chunk extension too long";
        return -1;
    }
    return 0;
}

int ClientConnection::req_message_complete(llhttp_t* p) {
    self_of(p)->pause_reason_ = PauseReason::MessageComplete;
    return HPE_PAUSED;
}

// Feeds buffered client bytes to the parser while the request may make progress. Stops when the parser is
// paused by us (waiting for an upstream, or for the response), or when the upstream's output is full.
void ClientConnection::process_client_input() {
    // What one call stages upstream (a just-sent head included) leaves in one writev on the way out: sent
    // piecemeal, an upstream could answer before the body it never waited for was all forwarded.
    struct FlushOnExit {
        ClientConnection* self;
        ~FlushOnExit() {
            if (!self->closed_) self->flush_upstream_stage();
        }
    } flush_on_exit{this};
    while (!closed_ && !close_after_flush_) {
        if (phase_ == RequestPhase::Dispatch || phase_ == RequestPhase::Done) return;
        if (phase_ == RequestPhase::Body && upstream_output_full()) return;  // resumed by upstream_writable
        evbuffer* in = bufferevent_get_input(bev_);
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) return;
        const char* data = static_cast<const char*>(vec.iov_base);
        const size_t len = vec.iov_len;
        if (phase_ == RequestPhase::Idle) begin_request_head();
        if (phase_ == RequestPhase::Head && !head_scanner_.done()) {
            size_t scanned = 0;
            if (head_scanner_.scan(data, len, scanned) == RequestHeadScanner::Result::Invalid) {
                evbuffer_drain(in, len);
                respond_error(400, head_scanner_.reason());
                return;
            }
        }
        pause_reason_ = PauseReason::None;
        llhttp_errno_t err = llhttp_execute(&req_parser_, data, len);
        size_t consumed = len;
        if (err == HPE_PAUSED) {
            consumed = static_cast<size_t>(llhttp_get_error_pos(&req_parser_) - data);
            llhttp_resume(&req_parser_);
        } else if (err != HPE_OK) {
            evbuffer_drain(in, len);
            int status = pending_status_ != 0 ? pending_status_ : status_for_parse_error(err);
            const char* message = pending_status_ != 0 ? pending_message_ : llhttp_get_error_reason(&req_parser_);
            if (closed_) return;
            fail_with_status_or_abort(status, message != nullptr ? message : "malformed request");
            return;
        }
        evbuffer_drain(in, consumed);
        req_bytes_in_ += consumed;
        if (closed_) return;
        if (pause_reason_ != PauseReason::None) flush_upstream_stage();
        if (pause_reason_ == PauseReason::HeadComplete) {
            phase_ = RequestPhase::Dispatch;
            on_request_head();
        } else if (pause_reason_ == PauseReason::MessageComplete) {
            phase_ = RequestPhase::Done;
            on_request_complete();
        }
    }
}

// The head is dispatched: let the parser run on (into the body, or straight to message complete).
void ClientConnection::resume_request_parsing() {
    phase_ = RequestPhase::Body;
    if (expect_continue_ && req_has_body_ && !continue_sent_) {
        // We answer 100-continue ourselves once every check that needs only the head has passed; no body
        // byte is read (or sent upstream) before this point.
        continue_sent_ = true;
        bufferevent_write(bev_, kContinue, sizeof kContinue - 1);
    }
    const Timeouts& t = route_ != nullptr ? route_->timeouts : snapshot_->config->timeouts;
    arm_client_timer(ClientTimer::BodyIdle, t.client_body_idle);
    // A pause at headers-complete resumes in a state that needs no input for a body-less request; run the
    // parser once even with nothing buffered so on_message_complete fires.
    static const char kNothing[1] = {0};
    pause_reason_ = PauseReason::None;
    llhttp_errno_t err = llhttp_execute(&req_parser_, kNothing, 0);
    if (err == HPE_PAUSED) {
        llhttp_resume(&req_parser_);
    } else if (err != HPE_OK) {
        int status = pending_status_ != 0 ? pending_status_ : status_for_parse_error(err);
        fail_with_status_or_abort(status, "malformed request");
        return;
    }
    if (closed_) return;
    if (pause_reason_ == PauseReason::MessageComplete) {
        phase_ = RequestPhase::Done;
        on_request_complete();  // flushes the staged head
        return;
    }
    process_client_input();  // the staged head leaves with the body bytes already here
}

void ClientConnection::flush_upstream_stage() {
    if (upstream_ == nullptr) {
        evbuffer_drain(upstream_stage_, evbuffer_get_length(upstream_stage_));
        return;
    }
    flush_staged(upstream_->bev(), upstream_stage_, upstream_->plain());
}

void ClientConnection::flush_client_stage() {
    if (closed_ || bev_ == nullptr) return;
    flush_staged(bev_, client_stage_, client_direct_);
}

bool ClientConnection::upstream_output_full() const {
    if (buffering_ || upstream_ == nullptr) return false;
    return evbuffer_get_length(upstream_->output()) >= snapshot_->config->limits.buffer_per_direction;
}

// ---------------------------------------------------------------------------------------------------------
// The request path
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::on_request_head() {
    evtimer_del(timer_);
    timer_kind_ = ClientTimer::None;
    if (!validate_head()) return;
    if (!redirect_to_https()) return;
    if (!allowlist_permits()) return;
    if (!select_route()) return;
    if (!rate_limit_permits()) return;  // a shared (Redis) decision continues in on_shared_limit_decision
    after_rate_limit();
}

void ClientConnection::after_rate_limit() {
    if (!body_within_limit()) return;
    if (privacy_stage_applies(*snapshot_->config, *route_, static_cast<llhttp_method_t>(req_parser_.method),
                              query_)) {
        // Buffered route: read the whole body first (bounded by the route's limit), filter, then connect.
        buffering_ = true;
        if (body_limit_ == 0) body_limit_ = kDefaultFilteredBodyLimit;
        resume_request_parsing();
        return;
    }
    start_upstream(false);
}

bool ClientConnection::validate_head() {
    const llhttp_t& p = req_parser_;
    if (p.http_major != 1 || p.http_minor > 1) {
        respond_error(505, "HTTP version not supported");
        return false;
    }
    if (p.method == HTTP_CONNECT || p.method == HTTP_TRACE) {
        respond_error(405, "method not allowed");
        return false;
    }
    size_t hosts = req_headers_.count("host");
    if (hosts > 1 || (hosts == 0 && p.http_minor == 1)) {
        respond_error(400, hosts > 1 ? "duplicate Host header" : "missing Host header");
        return false;
    }
    if (hosts == 1 && !is_valid_host_value(req_headers_.find("host"))) {
        respond_error(400, "invalid Host header");
        return false;
    }
    if (req_headers_.count("content-length") > 1) {
        respond_error(400, "duplicate Content-Length");
        return false;
    }
    bool has_te = false;
    std::string_view te = req_headers_.find("transfer-encoding", &has_te);
    if (has_te) {
        if (req_headers_.count("content-length") != 0) {
            respond_error(400, "Content-Length with Transfer-Encoding");
            return false;
        }
        if (p.http_minor == 0) {
            respond_error(400, "Transfer-Encoding in an HTTP/1.0 request");
            return false;
        }
        if (req_headers_.count("transfer-encoding") != 1 || !is_plain_chunked(te)) {
            respond_error(501, "unsupported Transfer-Encoding");
            return false;
        }
    }
    // Request target: origin-form; absolute-form is reduced to its path (RFC 9112 §3.2.2).
    std::string_view target = url_;
    absolute_form_host_ = {};
    if (target.starts_with("http://") || target.starts_with("https://")) {
        size_t authority = target.find("//") + 2;
        size_t slash = target.find_first_of("/?", authority);
        absolute_form_host_ = target.substr(authority, slash == std::string_view::npos ? target.npos
                                                                                        : slash - authority);
        if (absolute_form_host_.empty() || absolute_form_host_.find('@') != std::string_view::npos) {
            respond_error(400, "malformed request target");
            return false;
        }
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
        if (target.front() == '?') {
            respond_error(400, "malformed request target");
            return false;
        }
    }
    if (target.empty() || target.front() != '/') {
        respond_error(400, "malformed request target");
        return false;
    }
    size_t qmark = target.find('?');
    std::string_view raw_path = target.substr(0, qmark);
    query_ = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
    std::optional<std::string> normalized = normalize_path(raw_path);
    if (!normalized) {
        respond_error(400, "malformed request path");
        return false;
    }
    normalized_path_ = std::move(*normalized);
    std::string_view expect = req_headers_.find("expect");
    expect_continue_ = p.http_minor == 1 && iequals(trim(expect), "100-continue");
    if (!expect.empty() && !expect_continue_ && p.http_minor == 1) {
        respond_error(417, "unsupported expectation");
        return false;
    }
    return true;
}

bool ClientConnection::redirect_to_https() {
    if (listener_.redirect_https_to.empty()) return true;
    std::optional<std::string> location =
        https_redirect_location(req_headers_.find("host"), url_, listener_.redirect_https_to);
    if (!location) {
        respond_error(400, "cannot redirect this request");
        return false;
    }
    // Body-less requests keep the connection; anything with a body closes (it is never read).
    if (!req_has_body_) {
        pause_reason_ = PauseReason::None;
        static const char kNothing[1] = {0};
        if (llhttp_execute(&req_parser_, kNothing, 0) == HPE_PAUSED) llhttp_resume(&req_parser_);
        if (pause_reason_ == PauseReason::MessageComplete) phase_ = RequestPhase::Done;
    }
    const bool keep = phase_ == RequestPhase::Done && keep_alive_ && !draining_;
    respond_local(https_redirect_response(*location, keep), !keep, 308);
    return false;
}

// Resolves the client behind trusted proxies. Allow/deny is decided in select_route, once the route (whose
// allow list may replace the listener's) is known.
bool ClientConnection::allowlist_permits() {
    if (!peer_ip_) return true;
    const Config& cfg = *snapshot_->config;
    std::string_view forwarded_for;
    if (!cfg.trusted_proxies.empty() && cfg.trusted_proxies.contains(*peer_ip_)) {
        forwarded_for_joined_.clear();
        for (size_t i = 0; i < req_headers_.size(); ++i) {
            if (!iequals(req_headers_.name(i), "x-forwarded-for")) continue;
            if (!forwarded_for_joined_.empty()) forwarded_for_joined_.push_back(',');
            forwarded_for_joined_.append(req_headers_.value(i));
        }
        forwarded_for = forwarded_for_joined_;
    }
    const ClientIp resolved = resolve_client_ip(*peer_ip_, forwarded_for, cfg.trusted_proxies);
    client_ip_ = resolved.ip;
    if (!resolved.from_forwarded) {
        client_addr_ = peer_;
        client_text_ = peer_text_;
        return true;
    }
    std::memset(&client_addr_, 0, sizeof client_addr_);
    if (resolved.ip.is_v4()) {
        auto* a = reinterpret_cast<sockaddr_in*>(&client_addr_);
        a->sin_family = AF_INET;
        std::memcpy(&a->sin_addr, &resolved.ip.bytes[12], 4);
    } else {
        auto* a = reinterpret_cast<sockaddr_in6*>(&client_addr_);
        a->sin6_family = AF_INET6;
        std::memcpy(&a->sin6_addr, resolved.ip.bytes.data(), 16);
    }
    client_text_ = resolved.ip.str();
    return true;
}

// Local limits decide at once; shared limits ask Redis and may answer later (or before decide() returns).
bool ClientConnection::rate_limit_permits() {
    rate_decision_ = RateLimitDecision{};  // limit 0: no RateLimit headers on this response
    const int index = snapshot_->rate_limit_index(*route_);
    if (index < 0 || !client_ip_ || static_cast<size_t>(index) >= snapshot_->rate_tables.size()) return true;
    const RateLimitConfig& limit = snapshot_->config->rate_limits[static_cast<size_t>(index)];
    RateLimitTable& table = *snapshot_->rate_tables[static_cast<size_t>(index)];
    const std::string_view header_value =
        limit.key == RateLimitConfig::Key::Header ? req_headers_.find(limit.header) : std::string_view();
    RedisLimiter* redis = worker_.redis_limiter();
    if (redis == nullptr || limit.exempt.contains(*client_ip_)) {
        return apply_rate_decision(
            RateLimiter::check(table, limit, *route_, *client_ip_, header_value, RateLimiter::steady_now()));
    }
    redis_key_ = redis_rate_limit_key(limit, *route_, *client_ip_, header_value);
    SharedLimitRequest request;
    request.redis_key = redis_key_;
    request.local_key = rate_limit_key(limit, *route_, *client_ip_, header_value);
    request.params = GcraParams::from(limit.rate_per_second, limit.burst);
    request.fallback = &table;
    request.now = RateLimiter::steady_now();
    rate_pending_ = true;
    rate_decided_ = false;
    rate_in_decide_ = true;
    redis->decide(request, &ClientConnection::on_shared_limit_decision, this);
    rate_in_decide_ = false;
    if (!rate_decided_) return false;  // on_shared_limit_decision continues the request
    rate_pending_ = false;
    return apply_rate_decision(rate_decision_);
}

void ClientConnection::on_shared_limit_decision(void* arg, const RateLimitDecision& decision, DecisionSource source) {
    auto* self = static_cast<ClientConnection*>(arg);
    if (source != DecisionSource::Redis) {
        if (MetricsShard* m = self->worker_.metrics_shard()) m->rate_limit_fell_back();
    }
    self->rate_decision_ = decision;
    self->rate_decided_ = true;
    if (self->rate_in_decide_) return;  // rate_limit_permits takes it from here
    Entry entry(self);
    self->rate_pending_ = false;
    if (self->closed_) return;
    if (self->apply_rate_decision(decision)) self->after_rate_limit();
}

bool ClientConnection::apply_rate_decision(const RateLimitDecision& decision) {
    rate_decision_ = decision;
    if (decision.allowed) return true;
    if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::RateLimit);
    respond_rate_limited(decision);
    return false;
}

// 429 without reading a body: like respond_error, a body-less request keeps the connection, anything with a
// body pending closes it.
void ClientConnection::respond_rate_limited(const RateLimitDecision& decision) {
    if (phase_ == RequestPhase::Dispatch && !req_has_body_ && keep_alive_ && !draining_) {
        pause_reason_ = PauseReason::None;
        static const char kNothing[1] = {0};
        if (llhttp_execute(&req_parser_, kNothing, 0) == HPE_PAUSED) llhttp_resume(&req_parser_);
        if (pause_reason_ == PauseReason::MessageComplete) phase_ = RequestPhase::Done;
    }
    const bool close = phase_ != RequestPhase::Done || !keep_alive_ || draining_;
    char headers[192];
    const int n = std::snprintf(headers, sizeof headers,
                                "Retry-After: %u\r\nRateLimit-Limit: %u\r\nRateLimit-Remaining: 0\r\n"
                                "RateLimit-Reset: %u\r\n",
                                decision.retry_after_seconds, decision.limit, decision.reset_seconds);
    scratch_.clear();
    append_json_response(scratch_, 429, "{\"error\":\"rate limited\",\"status\":429}", close,
                         std::string_view(headers, n > 0 ? static_cast<size_t>(n) : 0));
    respond_local(scratch_, close, 429);
}

bool ClientConnection::select_route() {
    route_ = snapshot_->router.match(normalized_path_);
    if (route_ == nullptr) {
        // A client the listener refuses learns nothing about which paths exist.
        if (client_ip_ && !request_allows(listener_, nullptr, *client_ip_)) {
            if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Allowlist);
            respond_error(403, "forbidden");
            return false;
        }
        respond_error(404, "no route");
        return false;
    }
    if (client_ip_ && !request_allows(listener_, route_, *client_ip_)) {
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Allowlist);
        respond_error(403, "forbidden");
        return false;
    }
    pool_ = worker_.pool_for(*snapshot_, *route_);
    if (pool_ == nullptr) {
        respond_error(503, "no upstream available");
        return false;
    }
    return true;
}

bool ClientConnection::body_within_limit() {
    body_limit_ = snapshot_->body_limit(*route_);
    if (body_limit_ != 0 && req_content_length_ > body_limit_) {
        // Decided from Content-Length alone: not one body byte is read, and no 100-continue is sent.
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Size);
        respond_error(413, "request body too large");
        return false;
    }
    return true;
}

int ClientConnection::on_request_body(const char* data, size_t len) {
    body_bytes_ += len;
    if (body_limit_ != 0 && body_bytes_ > body_limit_) {
        pending_status_ = 413;
        pending_message_ = "request body too large";
        return -1;
    }
    if (buffering_) {
        body_buf_.append(data, len);
    } else if (upstream_ != nullptr) {
        append_body_bytes(upstream_stage_, data, len, upstream_chunked_);
    }
    return 0;
}

void ClientConnection::on_request_complete() {
    evtimer_del(timer_);
    timer_kind_ = ClientTimer::None;
    if (buffering_) {
        run_privacy_stage();
        return;
    }
    if (upstream_chunked_ && upstream_ != nullptr) append_last_chunk(upstream_stage_);
    flush_upstream_stage();
    // The response may already be complete (an upstream that answered before reading the whole body).
    if (resp_phase_ == ResponsePhase::Complete) finish_exchange();
}

void ClientConnection::run_privacy_stage() {
    PrivacyRequest req;
    req.method = llhttp_method_name(static_cast<llhttp_method_t>(req_parser_.method));
    req.normalized_path = normalized_path_;
    req.query = query_;
    req.content_type = req_headers_.find("content-type");
    req.content_encoding = req_headers_.find("content-encoding");
    req.body = body_buf_;
    req.client_ip = client_text_;
    req.wire_limit = body_limit_;
    privacy::FilterOutput out = run_privacy_filter(*snapshot_->config, *route_, req);
    if (Metrics* metrics = worker_.metrics())
        metrics->record_privacy(*worker_.metrics_shard(), snapshot_->labels.profile(route_->privacy_profile), out);
    rule_ids_ = out.rule_ids;
    verdict_ = out.verdict == privacy::FilterOutput::Verdict::Rejected    ? "rejected"
               : out.verdict == privacy::FilterOutput::Verdict::Rewritten ? "rewritten"
               : out.report_only_hits                                     ? "report"
                                                                          : "unchanged";
    switch (out.verdict) {
        case privacy::FilterOutput::Verdict::Unchanged:
            forward_rewritten_ = false;
            forward_body_.swap(body_buf_);
            break;
        case privacy::FilterOutput::Verdict::Rewritten:
            forward_rewritten_ = true;
            forward_body_ = std::move(out.body);
            if (out.query_changed) {
                forward_query_ = std::move(out.query);
                query_ = forward_query_;
            }
            break;
        case privacy::FilterOutput::Verdict::Rejected: {
            int status = out.status != 0 ? out.status : 400;
            scratch_.clear();
            append_json_response(scratch_, status, privacy_rejection_body(status, out.code, out.error),
                                 !keep_alive_ || draining_);
            if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Privacy);
            respond_local(scratch_, !keep_alive_ || draining_, status);
            return;
        }
    }
    start_upstream(false);
}

void ClientConnection::start_upstream(bool fresh_only) {
    UpstreamConnection* conn = nullptr;
    switch (pool_->acquire(this, this, fresh_only, conn)) {
        case UpstreamPool::Acquire::Pending: waiting_for_dns_ = true; return;
        case UpstreamPool::Acquire::Unavailable: respond_error(503, "no upstream available"); return;
        case UpstreamPool::Acquire::Ready: break;
    }
    upstream_ = conn;
    ++connect_attempts_;
    if (conn->connected()) {
        send_request_head();
    } else {
        conn->arm_timer(route_->timeouts.upstream_connect);
    }
}

void ClientConnection::upstream_addresses_ready() {
    Entry entry(this);
    waiting_for_dns_ = false;
    start_upstream(false);
}

void ClientConnection::upstream_connected(UpstreamConnection& conn) {
    Entry entry(this);
    conn.disarm_timer();
    send_request_head();
}

// Writes the re-serialised head (and a buffered body) to the upstream in one evbuffer append, then lets the
// client side stream the body.
void ClientConnection::send_request_head() {
    UpstreamRequestHead head;
    head.method = llhttp_method_name(static_cast<llhttp_method_t>(req_parser_.method));
    std::string upstream_target = upstream_path(*route_, normalized_path_);
    if (!query_.empty()) {
        upstream_target.push_back('?');
        upstream_target.append(query_);
    }
    head.target = upstream_target;
    std::string forwarded_for = forwarded_for_value(reinterpret_cast<const sockaddr*>(&client_addr_), route_->client_ip);
    head.forwarded_for = forwarded_for;
    head.forwarded_proto = listener_.tls ? "https" : "http";
    head.host_override = absolute_form_host_;
    head.upgrade = upgrade_requested_;
    const bool buffered = phase_ == RequestPhase::Done;  // privacy route: the body is already in hand
    if (buffered) {
        head.body = (forward_body_.empty() && !req_has_body_) ? BodyFraming::None : BodyFraming::ContentLength;
        head.content_length = forward_body_.size();
        head.replace_content_type_json = forward_rewritten_;
        upstream_chunked_ = false;
    } else if (req_chunked_) {
        head.body = BodyFraming::Chunked;
        upstream_chunked_ = true;
    } else if (req_has_body_) {
        head.body = BodyFraming::ContentLength;
        head.content_length = req_content_length_;
        upstream_chunked_ = false;
    } else {
        head.body = BodyFraming::None;
        upstream_chunked_ = false;
    }
    scratch_.clear();
    append_upstream_request_head(scratch_, req_headers_, head);
    evbuffer_drain(upstream_stage_, evbuffer_get_length(upstream_stage_));
    evbuffer_drain(client_stage_, evbuffer_get_length(client_stage_));
    evbuffer_add(upstream_stage_, scratch_.data(), scratch_.size());
    upstream_sent_at_ = std::chrono::steady_clock::now();
    if (buffered && !forward_body_.empty())
        evbuffer_add(upstream_stage_, forward_body_.data(), forward_body_.size());
    // A streamed body follows at once (resume_request_parsing): the head waits to share its writev.
    if (buffered || phase_ != RequestPhase::Dispatch) flush_upstream_stage();

    llhttp_init(&resp_parser_, HTTP_RESPONSE, &response_settings());
    resp_parser_.data = this;
    resp_phase_ = ResponsePhase::Head;
    resp_head_scanner_.reset(true);
    resp_bytes_received_ = 0;
    upstream_eof_ = false;
    upstream_->arm_timer(route_->timeouts.upstream_response_header);
    if (!buffered && phase_ == RequestPhase::Dispatch) resume_request_parsing();
}

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
    if (phase_ == RequestPhase::Body && !buffering_) process_client_input();
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
            m->upstream_connect_error(snapshot_->upstream_label(route_->upstream_index));
            m->upstream_timeout(snapshot_->upstream_label(route_->upstream_index));
        }
        pool_->connect_failed(upstream_);
        upstream_ = nullptr;
        respond_error(502, "upstream connect timeout");
        return;
    }
    if (MetricsShard* m = worker_.metrics_shard()) m->upstream_timeout(snapshot_->upstream_label(route_->upstream_index));
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
            m->upstream_connect_error(snapshot_->upstream_label(route_->upstream_index));
        pool_->connect_failed(failed);
        if (connect_attempts_ < pool_->server_count()) {
            start_upstream(true);
            return;
        }
        respond_error(502, "upstream connection refused");
        return;
    }
    const bool was_reused = failed->reused();
    pool_->discard(failed);
    const bool body_in_hand = !req_has_body_ || (phase_ == RequestPhase::Done && buffering_);
    if (was_reused && !retried_ && body_in_hand && !response_started_) {
        if (MetricsShard* m = worker_.metrics_shard()) m->upstream_retry(snapshot_->upstream_label(route_->upstream_index));
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
        flush_client_stage();
        if (finished == HPE_OK || resp_phase_ == ResponsePhase::Complete) {
            if (resp_phase_ != ResponsePhase::Complete) {
                resp_phase_ = ResponsePhase::Complete;
                if (resp_chunked_to_client_) append_last_chunk(bufferevent_get_output(bev_));
            }
            finish_exchange();
            return;
        }
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

int ClientConnection::resp_header_field(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    self->resp_header_bytes_ += static_cast<uint32_t>(len);
    if (self->resp_header_bytes_ > self->snapshot_->config->limits.max_header_bytes) return -1;
    self->resp_headers_.append_name(at, len);
    return 0;
}

int ClientConnection::resp_header_value(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    self->resp_header_bytes_ += static_cast<uint32_t>(len);
    if (self->resp_header_bytes_ > self->snapshot_->config->limits.max_header_bytes) return -1;
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
            if (!upgrade_requested_ || !iequals(resp_headers_.find("upgrade"), upgrade_protocol_)) return -1;
            DownstreamResponseHead head;
            head.status = 101;
            head.upgrade = true;
            scratch_.clear();
            append_downstream_response_head(scratch_, resp_headers_, head);
            bufferevent_write(bev_, scratch_.data(), scratch_.size());
            resp_status_ = 101;
            resp_bytes_out_ += scratch_.size();
            upstream_micros_ = std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now() - upstream_sent_at_)
                                   .count();
            response_started_ = true;
            resp_phase_ = ResponsePhase::Tunnel;
        }
        return 0;
    }
    if (resp_headers_.count("content-length") > 1) return -1;
    const bool head_request = req_parser_.method == HTTP_HEAD;
    const bool bodyless = head_request || status == 204 || status == 304;
    const bool client_http11 = req_parser_.http_minor == 1;
    DownstreamResponseHead head;
    head.status = status;
    // A refused upgrade closes after the response: bytes the client may already have sent for the new
    // protocol must never be parsed as HTTP.
    resp_close_client_ = !keep_alive_ || draining_ || upgrade_requested_;
    resp_chunked_to_client_ = false;
    resp_until_close_ = false;
    if (bodyless) {
        head.body = BodyFraming::None;
        head.keep_original_content_length = true;
    } else if (resp_parser_.flags & F_CHUNKED) {
        if (client_http11) {
            head.body = BodyFraming::Chunked;
            resp_chunked_to_client_ = true;
        } else {
            head.body = BodyFraming::UntilClose;
            resp_close_client_ = true;
        }
    } else if (resp_parser_.flags & F_CONTENT_LENGTH) {
        head.body = BodyFraming::ContentLength;
        head.content_length = resp_parser_.content_length;
    } else {
        // Close-delimited upstream body (SSE from some servers, HTTP/1.0 upstreams): re-chunk for
        // HTTP/1.1 clients so their connection can stay open; flushed on every upstream read.
        resp_until_close_ = true;
        if (client_http11) {
            head.body = BodyFraming::Chunked;
            resp_chunked_to_client_ = true;
        } else {
            head.body = BodyFraming::UntilClose;
            resp_close_client_ = true;
        }
    }
    head.close = resp_close_client_;
    scratch_.clear();
    append_downstream_response_head(scratch_, resp_headers_, head);
    if (rate_decision_.limit != 0 && scratch_.ends_with("\r\n\r\n")) {
        // The client's standing with its rate limit, before the blank line that ends the head.
        char fields[128];
        const int n = std::snprintf(fields, sizeof fields,
                                    "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                                    rate_decision_.limit, rate_decision_.remaining, rate_decision_.reset_seconds);
        if (n > 0 && static_cast<size_t>(n) < sizeof fields)
            scratch_.insert(scratch_.size() - 2, fields, static_cast<size_t>(n));
    }
    evbuffer_add(client_stage_, scratch_.data(), scratch_.size());
    resp_status_ = status;
    resp_bytes_out_ += scratch_.size();
    upstream_micros_ = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                                             upstream_sent_at_)
                           .count();
    if (MetricsShard* m = worker_.metrics_shard())
        m->upstream_response(snapshot_->upstream_label(route_->upstream_index), static_cast<uint64_t>(upstream_micros_));
    response_started_ = true;
    resp_phase_ = ResponsePhase::Body;
    upstream_->arm_timer(route_->timeouts.upstream_body_idle);
    return bodyless ? 1 : 0;
}

int ClientConnection::resp_body(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    if (self->resp_phase_ != ResponsePhase::Body) return 0;
    self->resp_bytes_out_ += len;
    append_body_bytes(self->client_stage_, at, len, self->resp_chunked_to_client_);
    return 0;
}

int ClientConnection::resp_message_complete(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    if (self->resp_phase_ == ResponsePhase::Tunnel) return HPE_PAUSED;  // the rest is the new protocol
    if (self->resp_phase_ != ResponsePhase::Body) return 0;  // an interim 1xx response ended
    if (self->resp_chunked_to_client_) append_last_chunk(self->client_stage_);
    self->resp_phase_ = ResponsePhase::Complete;
    return HPE_PAUSED;
}

// Relays upstream bytes to the client while the client's output has room; the rest waits in the upstream's
// (bounded) input buffer, so a slow client pauses reading from the upstream.
void ClientConnection::process_upstream_input() {
    if (upstream_ == nullptr) return;
    const uint32_t limit = snapshot_->config->limits.buffer_per_direction;
    evbuffer* client_out = bufferevent_get_output(bev_);
    bool progressed = false;
    while (!closed_ && upstream_ != nullptr &&
           (resp_phase_ == ResponsePhase::Head || resp_phase_ == ResponsePhase::Body)) {
        if (evbuffer_get_length(client_out) >= limit) break;  // resumed from on_client_write
        evbuffer* in = upstream_->input();
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        const char* data = static_cast<const char*>(vec.iov_base);
        if (resp_phase_ == ResponsePhase::Head && !resp_head_scanner_.done()) {
            size_t scanned = 0;
            if (resp_head_scanner_.scan(data, vec.iov_len, scanned) == RequestHeadScanner::Result::Invalid) {
                fail_with_status_or_abort(502, "invalid upstream response");
                return;
            }
        }
        llhttp_errno_t err = llhttp_execute(&resp_parser_, data, vec.iov_len);
        size_t consumed = vec.iov_len;
        if (err == HPE_PAUSED) {
            consumed = static_cast<size_t>(llhttp_get_error_pos(&resp_parser_) - data);
            llhttp_resume(&resp_parser_);
        } else if (err != HPE_OK) {
            // Upstream framing errors: never relay, never reuse the connection (RFC 9112 §6.3).
            flush_client_stage();
            fail_with_status_or_abort(502, "invalid upstream response");
            return;
        }
        resp_bytes_received_ += consumed;
        progressed = true;
        evbuffer_drain(in, consumed);
        // Counted before the last bytes leave, so a client that reads its response and then scrapes the
        // metrics always sees its request.
        if (resp_phase_ == ResponsePhase::Complete) record_exchange();
        flush_client_stage();
    }
    if (closed_ || upstream_ == nullptr) return;
    if (resp_phase_ == ResponsePhase::Tunnel) {
        enter_tunnel();
        return;
    }
    if (progressed && resp_phase_ == ResponsePhase::Body) upstream_->arm_timer(route_->timeouts.upstream_body_idle);
    if (resp_phase_ == ResponsePhase::Complete) {
        if (phase_ == RequestPhase::Done || phase_ == RequestPhase::Body || phase_ == RequestPhase::Dispatch)
            finish_exchange();
    }
}

// The response is complete. Return the upstream connection to the pool when it is clean, then go on with
// the next pipelined request, or close.
void ClientConnection::finish_exchange() {
    if (resp_phase_ != ResponsePhase::Complete) return;
    const bool request_complete = phase_ == RequestPhase::Done;
    if (upstream_ != nullptr) {
        upstream_->disarm_timer();
        const bool reusable = request_complete && !upstream_eof_ && !resp_until_close_ &&
                              llhttp_should_keep_alive(&resp_parser_) != 0 &&
                              evbuffer_get_length(upstream_->input()) == 0;
        release_upstream(reusable);
    }
    record_exchange();
    resp_phase_ = ResponsePhase::None;
    if (!request_complete || resp_close_client_ || !keep_alive_ || draining_) {
        close_after_flush();
        return;
    }
    phase_ = RequestPhase::Idle;
    route_ = nullptr;
    arm_client_timer(ClientTimer::KeepAlive, snapshot_->config->timeouts.client_keepalive);
    snapshot_ = worker_.current_snapshot();
    process_client_input();  // a pipelined request may be waiting already
}

void ClientConnection::release_upstream(bool reusable) {
    if (upstream_ == nullptr) return;
    if (reusable) {
        pool_->release(upstream_);
    } else {
        pool_->discard(upstream_);
    }
    upstream_ = nullptr;
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
    scratch_.clear();
    append_error_response(scratch_, status, message, close);
    if (status == 400 || status == 414 || status == 431 || status == 501 || status == 505) {
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Parse);
    }
    respond_local(scratch_, close, status);
}

void ClientConnection::respond_local(std::string_view response_bytes, bool close_after, int status) {
    if (waiting_for_dns_) {
        pool_->cancel_wait(this);
        waiting_for_dns_ = false;
    }
    release_upstream(false);
    resp_phase_ = ResponsePhase::None;
    evtimer_del(timer_);
    timer_kind_ = ClientTimer::None;
    response_started_ = true;
    resp_status_ = status;
    resp_bytes_out_ += response_bytes.size();
    record_exchange();
    bufferevent_write(bev_, response_bytes.data(), response_bytes.size());
    if (close_after || phase_ != RequestPhase::Done) {
        close_after_flush();
        return;
    }
    phase_ = RequestPhase::Idle;
    route_ = nullptr;
    arm_client_timer(ClientTimer::KeepAlive, snapshot_->config->timeouts.client_keepalive);
    process_client_input();
}

// After a matching 101 both sockets carry the new protocol: bytes are moved between the buffers without
// copying, each direction paused while the other side's output is full, and the stream's own idle timeout
// (RouteConfig::timeouts.stream_idle) replaces the HTTP timeouts.
void ClientConnection::enter_tunnel() {
    tunnel_ = true;
    phase_ = RequestPhase::Done;
    upstream_->disarm_timer();
    record_exchange();
    if (MetricsShard* m = worker_.metrics_shard()) m->stream_opened();
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
    if (moved || timer_kind_ != ClientTimer::StreamIdle) arm_client_timer(ClientTimer::StreamIdle, route_->timeouts.stream_idle);
}

// One finished exchange: per-route counters and one access-log line. Called once per request.
void ClientConnection::record_exchange() {
    if (recorded_) return;
    recorded_ = true;
    const uint64_t micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - req_started_).count());
    const uint32_t route_label = route_ != nullptr ? snapshot_->route_label(*route_) : kOtherLabel;
    if (MetricsShard* m = worker_.metrics_shard()) m->request_done(route_label, resp_status_, micros, req_bytes_in_, resp_bytes_out_);
    AccessLog* log = worker_.access_log();
    if (log == nullptr || !peer_ip_) return;
    AccessLogEntry e;
    e.start_unix_micros = req_started_unix_micros_;
    e.client = client_ip_ ? *client_ip_ : *peer_ip_;
    e.client_ip_policy = route_ != nullptr ? route_->client_ip : ClientIpPolicy::Forward;
    e.method = llhttp_method_name(static_cast<llhttp_method_t>(req_parser_.method));
    e.host = req_headers_.find("host");
    e.target = url_;
    e.status = resp_status_;
    e.bytes_in = req_bytes_in_;
    e.bytes_out = resp_bytes_out_;
    e.duration_micros = micros;
    if (route_ != nullptr) {
        e.route = route_->name;
        if (upstream_micros_ >= 0) e.upstream = snapshot_->config->upstreams[route_->upstream_index].name;
    }
    e.upstream_micros = upstream_micros_;
    e.verdict = verdict_;
    e.rule_ids = rule_ids_;
    e.include_query = snapshot_->config->access_log.include_query;
    log->log(worker_.id(), e);
}

// Before the response started we can still answer with a status; afterwards the only honest signal left
// is closing the connection mid-body.
void ClientConnection::fail_with_status_or_abort(int status, std::string_view message) {
    if (!response_started_) {
        respond_error(status, message);
        return;
    }
    release_upstream(false);
    close();
}

void ClientConnection::close_after_flush() {
    close_after_flush_ = true;
    if (waiting_for_dns_) {
        pool_->cancel_wait(this);
        waiting_for_dns_ = false;
    }
    release_upstream(false);
    reader_.disable();
    arm_client_timer(ClientTimer::Linger, kLingerTime);
    if (evbuffer_get_length(bufferevent_get_output(bev_)) == 0) on_client_write(bev_, this);
}

}  // namespace edgeguard
