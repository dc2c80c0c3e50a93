// ClientConnection, the request side: parsing the client's bytes, checking and routing the head, rate
// limits, the body (streamed or buffered for the privacy stage) and the head sent upstream.
#include "proxy/http1/client_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "proxy/access/access_control.h"
#include "proxy/http1/body_framing.h"
#include "proxy/access/client_ip.h"
#include "proxy/core/direct_write.h"
#include "proxy/pipeline/body_buffering.h"
#include "proxy/pipeline/http_errors.h"
#include "proxy/pipeline/privacy_stage.h"
#include "proxy/http1/request_target.h"
#include "proxy/pipeline/router.h"
#include "proxy/tls/tls_redirect.h"
#include "proxy/core/worker.h"

namespace edgeguard {

namespace {

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
// A filtered route without its own limit still must not buffer without bound (capture's 20 MB wire limit).
constexpr uint64_t kDefaultFilteredBodyLimit = 20 * 1024 * 1024;

ClientConnection* self_of(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }

int status_for_parse_error(llhttp_errno_t err) {
    switch (err) {
        case HPE_INVALID_TRANSFER_ENCODING: return 501;
        case HPE_INVALID_VERSION: return 505;
        default: return 400;
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

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
    self->inspecting_ = false;
    self->body_buf_.clear();
    self->forward_body_.clear();
    self->forward_rewritten_ = false;
    self->forward_content_type_.clear();
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
        std::string_view proto = self->req_headers_.find(HeaderList::kUpgrade);
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
    timer_.disarm();
    timer_kind_ = ClientTimer::None;
    if (!validate_head()) return;
    if (!answer_acme_challenge()) return;  // before the redirect: the CA fetches challenges over plain HTTP
    if (!redirect_to_https()) return;
    if (!allowlist_permits()) return;
    if (!select_route()) return;
    if (!rate_limit_permits()) return;  // a shared (Redis) decision continues in on_shared_limit_decision
    after_rate_limit();
}

void ClientConnection::after_rate_limit() {
    if (!body_within_limit()) return;
    if (privacy_stage_applies(*snapshot_->config, *route_, static_cast<llhttp_method_t>(req_parser_.method),
                              query_, req_has_body_)) {
        // Buffered route: read the whole body first (bounded by the route's limit), filter, then connect.
        buffering_ = true;
        inspecting_ = true;
        if (body_limit_ == 0) body_limit_ = kDefaultFilteredBodyLimit;
        resume_request_parsing();
        return;
    }
    if (buffers_body_before_forwarding(body_limit_, req_chunked_)) {
        // Held whole so that a body over the limit is refused with nothing forwarded.
        buffering_ = true;
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
    size_t hosts = req_headers_.count(HeaderList::kHost);
    if (hosts > 1 || (hosts == 0 && p.http_minor == 1)) {
        respond_error(400, hosts > 1 ? "duplicate Host header" : "missing Host header");
        return false;
    }
    if (hosts == 1 && !is_valid_authority(req_headers_.find(HeaderList::kHost))) {
        respond_error(400, "invalid Host header");
        return false;
    }
    if (req_headers_.count(HeaderList::kContentLength) > 1) {
        respond_error(400, "duplicate Content-Length");
        return false;
    }
    // llhttp reads Content-Length into a uint64; no body, file offset or upstream can hold more than int64.
    if ((p.flags & F_CONTENT_LENGTH) && p.content_length > static_cast<uint64_t>(INT64_MAX)) {
        respond_error(400, "invalid Content-Length");
        return false;
    }
    bool has_te = false;
    std::string_view te = req_headers_.find(HeaderList::kTransferEncoding, &has_te);
    if (has_te) {
        if (req_headers_.count(HeaderList::kContentLength) != 0) {
            respond_error(400, "Content-Length with Transfer-Encoding");
            return false;
        }
        if (p.http_minor == 0) {
            respond_error(400, "Transfer-Encoding in an HTTP/1.0 request");
            return false;
        }
        if (req_headers_.count(HeaderList::kTransferEncoding) != 1 || !is_plain_chunked(te)) {
            respond_error(501, "unsupported Transfer-Encoding");
            return false;
        }
    }
    if (!is_valid_target_bytes(url_)) {
        respond_error(400, "invalid character in request target");
        return false;
    }
    // Request target: origin-form; absolute-form is reduced to its path (RFC 9112 §3.2.2).
    std::string_view target = url_;
    absolute_form_host_ = {};
    if (target.starts_with("http://") || target.starts_with("https://")) {
        size_t authority = target.find("//") + 2;
        size_t slash = target.find_first_of("/?", authority);
        absolute_form_host_ = target.substr(authority, slash == std::string_view::npos ? target.npos
                                                                                        : slash - authority);
        if (absolute_form_host_.empty() || !is_valid_authority(absolute_form_host_)) {
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
    std::string_view expect = req_headers_.find(HeaderList::kExpect);
    expect_continue_ = p.http_minor == 1 && iequals(trim(expect), "100-continue");
    if (!expect.empty() && !expect_continue_ && p.http_minor == 1) {
        respond_error(417, "unsupported expectation");
        return false;
    }
    return true;
}

bool ClientConnection::redirect_to_https() {
    if (listener_->redirect_https_to.empty()) return true;
    std::optional<std::string> location =
        https_redirect_location(req_headers_.find(HeaderList::kHost), url_, listener_->redirect_https_to);
    if (!location) {
        respond_error(400, "cannot redirect this request");
        return false;
    }
    // Body-less requests keep the connection; anything with a body closes (it is never read).
    read_bodyless_request_to_end();
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
        if (client_from_forwarded_) {
            client_addr_ = peer_;
            client_text_ = peer_text_;
            client_from_forwarded_ = false;
            forwarded_for_valid_ = false;
        }
        return true;
    }
    client_from_forwarded_ = true;
    forwarded_for_valid_ = false;
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
    error_reason_ = "rate_limited";
    scratch_.clear();
    append_json_response(scratch_, 429, "{\"error\":\"rate limited\",\"status\":429}", close,
                         std::string_view(headers, n > 0 ? static_cast<size_t>(n) : 0));
    respond_local(scratch_, close, 429);
}

bool ClientConnection::select_route() {
    route_ = snapshot_->router.match(normalized_path_);
    if (route_ == nullptr) {
        // A client the listener refuses learns nothing about which paths exist.
        if (client_ip_ && !request_allows(*listener_, nullptr, *client_ip_)) {
            if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Allowlist);
            respond_error(403, "forbidden");
            return false;
        }
        respond_error(404, "no route");
        return false;
    }
    if (client_ip_ && !request_allows(*listener_, route_, *client_ip_)) {
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
        // A streamed body: the upstream (named in the access log) already holds the part read so far.
        if (!buffering_ && upstream_ != nullptr) error_reason_ = "body_too_large: partial body sent upstream";
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
    timer_.disarm();
    timer_kind_ = ClientTimer::None;
    if (buffering_ && inspecting_) {
        run_privacy_stage();
        return;
    }
    if (buffering_) {
        forward_rewritten_ = false;
        forward_body_.swap(body_buf_);
        start_upstream(false);
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
    // The wire format is the one of the service behind the route, so the filter sees the path it receives.
    req.normalized_path = upstream_path_view(*route_, normalized_path_);
    req.query = query_;
    req.content_type = req_headers_.find("content-type");
    req.content_encoding = req_headers_.find("content-encoding");
    req.body = body_buf_;
    req.client_ip = client_text_;
    req.wire_limit = body_limit_;
    req.observations = worker_.observations();
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
            forward_content_type_ = std::move(out.content_type);
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
            error_reason_ = "privacy_rejected";
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
    upstream_server_ = pool_->server_text(conn->server_index());
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
    // Built in a member so its capacity carries over to the connection's next request (no heap churn).
    upstream_target_.assign(upstream_path_view(*route_, normalized_path_));
    if (!query_.empty()) {
        upstream_target_.push_back('?');
        upstream_target_.append(query_);
    }
    head.target = upstream_target_;
    // The client address rarely changes between a connection's requests: format it (inet_ntop, ~2k
    // instructions) only when it or the route's policy did.
    if (!forwarded_for_valid_ || forwarded_for_policy_ != route_->client_ip) {
        forwarded_for_ = forwarded_for_value(reinterpret_cast<const sockaddr*>(&client_addr_), route_->client_ip);
        forwarded_for_policy_ = route_->client_ip;
        forwarded_for_valid_ = true;
    }
    head.forwarded_for = forwarded_for_;
    head.forwarded_proto = listener_->tls ? "https" : "http";
    head.host_override = absolute_form_host_;
    head.upgrade = upgrade_requested_;
    const bool buffered = phase_ == RequestPhase::Done;  // privacy route: the body is already in hand
    if (buffered) {
        head.body = (forward_body_.empty() && !req_has_body_) ? BodyFraming::None : BodyFraming::ContentLength;
        head.content_length = forward_body_.size();
        head.replace_content_type_json = forward_rewritten_;
        head.rewritten_content_type = forward_content_type_;
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

}  // namespace edgeguard
