#include "proxy/pipeline/exchange.h"

#include <netinet/in.h>
#include <sys/time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "proxy/access/access_control.h"
#include "proxy/access/client_ip.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/worker.h"
#include "proxy/http1/http_headers.h"
#include "proxy/pipeline/body_buffering.h"
#include "proxy/pipeline/error_reason.h"
#include "proxy/pipeline/http_errors.h"
#include "proxy/pipeline/privacy_stage.h"
#include "proxy/pipeline/router.h"
#include "proxy/tls/tls_redirect.h"

namespace edgeguard {

namespace {

// A filtered route without its own limit still must not buffer without bound (capture's 20 MB wire limit).
constexpr uint64_t kDefaultFilteredBodyLimit = 20 * 1024 * 1024;

}  // namespace

Exchange::Exchange(Worker& worker, DownstreamStream& stream, const sockaddr* peer, socklen_t peer_len)
    : worker_(worker), stream_(stream) {
    std::memcpy(&peer_, peer, std::min<size_t>(peer_len, sizeof peer_));
    peer_text_ = peer_address_text(peer);
    peer_ip_ = IpAddress::from_sockaddr(peer);
    client_ip_ = peer_ip_;
    client_addr_ = peer_;
    client_text_ = peer_text_;
}

Exchange::~Exchange() = default;

void Exchange::begin(const Snapshot& snapshot, const ListenerConfig& listener) {
    snapshot_ = &snapshot;
    listener_ = &listener;
    // One clock read: the wall-clock start the access log prints is derived from it when a line is written.
    accounting.started = std::chrono::steady_clock::now();
    accounting.upstream_micros = -1;
    accounting.bytes_in = 0;
    accounting.bytes_out = 0;
    accounting.status = 0;
    accounting.verdict = {};
    accounting.rule_ids.clear();
    accounting.error.clear();
    accounting.upstream_server.clear();
    accounting.recorded = false;
}

void Exchange::reset_request() {
    route = nullptr;
    body_limit = 0;
    buffering = false;
    inspecting = false;
    body_buf_.clear();
    forward_body.clear();
    forward_rewritten = false;
    forward_content_type.clear();
    connect_attempts_ = 0;
    retried_ = false;
    request_complete_ = false;
    body_requested_ = false;
    response_started_ = false;
    event_stream_ = false;
}

void Exchange::cancel() {
    abandon_upstream();
    end_event_stream();
    if (!rate_pending_) return;
    if (RedisLimiter* redis = worker_.redis_limiter()) redis->cancel(this);
    rate_pending_ = false;
}

void Exchange::note_error_reason(int status, std::string_view message) {
    if (accounting.error.empty()) append_error_reason(accounting.error, status, message);
}

void Exchange::forward_buffered_body() {
    forward_rewritten = false;
    forward_body.swap(body_buf_);
}

// ---------------------------------------------------------------------------------------------------------
// The checks on the head, in order
// ---------------------------------------------------------------------------------------------------------

void Exchange::on_request_head(const RequestHead& head) {
    head_ = head;
    query = head.query;
    if (!redirect_to_https()) return;
    if (!resolve_client()) return;
    if (!select_route()) return;
    if (!rate_limit_permits()) return;  // a shared (Redis) decision continues in on_shared_limit_decision
    after_rate_limit();
}

void Exchange::after_rate_limit() {
    if (!body_within_limit()) return;
    if (privacy_stage_applies(*snapshot_->config, *route, head_.method, query, head_.has_body)) {
        // Buffered route: read the whole body first (bounded by the route's limit), filter, then connect.
        buffering = true;
        inspecting = true;
        if (body_limit == 0) body_limit = kDefaultFilteredBodyLimit;
    } else if (buffers_body_before_forwarding(body_limit, head_.chunked)) {
        // Held whole so that a body over the limit is refused with nothing forwarded.
        buffering = true;
    }
    if (buffering) {
        stream_.request_admitted(true);
        return;
    }
    start_upstream(false);  // the body is admitted once the upstream has the head
}

// The HTTPS the operator requires holds for every protocol (HTTP/1.1, h2c, an HTTP/2 WebSocket CONNECT):
// decided here, before routing, access checks or any upstream work, so no codec can forget it.
bool Exchange::redirect_to_https() {
    if (listener_->redirect_https_to.empty()) return true;
    const std::optional<std::string> location = https_redirect_location(
        head_.headers->find(HeaderList::kHost), head_.target, listener_->redirect_https_to);
    if (!location) {
        stream_.respond_error(400, "cannot redirect this request");
        return false;
    }
    stream_.respond_redirect(*location);
    return false;
}

// Resolves the client behind trusted proxies. Allow/deny is decided in select_route, once the route (whose
// allow list may replace the listener's) is known.
bool Exchange::resolve_client() {
    if (!peer_ip_) return true;
    const Config& cfg = *snapshot_->config;
    const HeaderList& headers = *head_.headers;
    std::string_view forwarded_for;
    if (!cfg.trusted_proxies.empty() && cfg.trusted_proxies.contains(*peer_ip_)) {
        forwarded_for_joined_.clear();
        for (size_t i = 0; i < headers.size(); ++i) {
            if (!iequals(headers.name(i), "x-forwarded-for")) continue;
            if (!forwarded_for_joined_.empty()) forwarded_for_joined_.push_back(',');
            forwarded_for_joined_.append(headers.value(i));
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

bool Exchange::client_allowed() {
    if (!client_ip_) return true;
    // The peer is the client: its answer holds for every request on the connection that reaches the same
    // route under the same snapshot (the listener's config is the snapshot's too). A client named by
    // X-Forwarded-For is decided per request.
    const bool cacheable = !client_from_forwarded_ && snapshot_->generation != 0;
    if (cacheable && allow_generation_ == snapshot_->generation && allow_route_ == route) return allow_answer_;
    const bool allowed = request_allows(*listener_, route, *client_ip_);
    allow_generation_ = cacheable ? snapshot_->generation : 0;
    allow_route_ = route;
    allow_answer_ = allowed;
    return allowed;
}

bool Exchange::select_route() {
    // The route depends on the normalized path and the snapshot alone: a connection's next request for the
    // same path under the same snapshot takes the route found for the last one.
    if (route_generation_ == 0 || route_generation_ != snapshot_->generation ||
        head_.normalized_path != route_path_) {
        route_found_ = snapshot_->router.match(head_.normalized_path);
        route_generation_ = snapshot_->generation;
        route_path_.assign(head_.normalized_path);
    }
    route = route_found_;
    if (route == nullptr) {
        // A client the listener refuses learns nothing about which paths exist.
        if (!client_allowed()) {
            if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Allowlist);
            stream_.respond_error(403, "forbidden");
            return false;
        }
        stream_.respond_error(404, "no route");
        return false;
    }
    if (!client_allowed()) {
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Allowlist);
        stream_.respond_error(403, "forbidden");
        return false;
    }
    pool = worker_.pool_for(*snapshot_, *route);
    if (pool == nullptr) {
        stream_.respond_error(503, "no upstream available");
        return false;
    }
    return true;
}

// Local limits decide at once; shared limits ask Redis and may answer later (or before decide() returns).
bool Exchange::rate_limit_permits() {
    rate_decision_ = RateLimitDecision{};  // limit 0: no RateLimit headers on this response
    const int index = snapshot_->rate_limit_index(*route);
    if (index < 0 || !client_ip_ || static_cast<size_t>(index) >= snapshot_->rate_tables.size()) return true;
    const RateLimitConfig& limit = snapshot_->config->rate_limits[static_cast<size_t>(index)];
    RateLimitTable& table = *snapshot_->rate_tables[static_cast<size_t>(index)];
    const std::string_view header_value =
        limit.key == RateLimitConfig::Key::Header ? head_.headers->find(limit.header) : std::string_view();
    RedisLimiter* redis = worker_.redis_limiter();
    if (redis == nullptr || limit.exempt.contains(*client_ip_)) {
        return apply_rate_decision(
            RateLimiter::check(table, limit, *route, *client_ip_, header_value, RateLimiter::steady_now()));
    }
    redis_key_ = redis_rate_limit_key(limit, *route, *client_ip_, header_value);
    SharedLimitRequest request;
    request.redis_key = redis_key_;
    request.local_key = rate_limit_key(limit, *route, *client_ip_, header_value);
    request.params = GcraParams::from(limit.rate_per_second, limit.burst);
    request.fallback = &table;
    request.now = RateLimiter::steady_now();
    rate_pending_ = true;
    rate_decided_ = false;
    rate_in_decide_ = true;
    redis->decide(request, &Exchange::on_shared_limit_decision, this);
    rate_in_decide_ = false;
    if (!rate_decided_) return false;  // on_shared_limit_decision continues the request
    rate_pending_ = false;
    return apply_rate_decision(rate_decision_);
}

void Exchange::on_shared_limit_decision(void* arg, const RateLimitDecision& decision, DecisionSource source) {
    auto* self = static_cast<Exchange*>(arg);
    if (source != DecisionSource::Redis) {
        if (MetricsShard* m = self->worker_.metrics_shard()) m->rate_limit_fell_back();
    }
    self->rate_decision_ = decision;
    self->rate_decided_ = true;
    if (self->rate_in_decide_) return;  // rate_limit_permits takes it from here
    self->rate_pending_ = false;
    // The codec keeps itself alive across what follows; a closed one cancelled the decision (cancel()).
    DownstreamStream::Guard guard(self->stream_);
    if (self->apply_rate_decision(decision)) self->after_rate_limit();
}

bool Exchange::apply_rate_decision(const RateLimitDecision& decision) {
    rate_decision_ = decision;
    if (decision.allowed) return true;
    if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::RateLimit);
    // 429 without reading a body: the codec keeps the connection for a body-less request.
    char headers[192];
    const int n = std::snprintf(headers, sizeof headers,
                                "Retry-After: %u\r\nRateLimit-Limit: %u\r\nRateLimit-Remaining: 0\r\n"
                                "RateLimit-Reset: %u\r\n",
                                decision.retry_after_seconds, decision.limit, decision.reset_seconds);
    accounting.error = "rate_limited";
    stream_.respond_json(429, "{\"error\":\"rate limited\",\"status\":429}",
                         std::string_view(headers, n > 0 ? static_cast<size_t>(n) : 0));
    return false;
}

bool Exchange::body_within_limit() {
    body_limit = snapshot_->body_limit(*route);
    if (body_limit != 0 && head_.content_length > body_limit) {
        // Decided from Content-Length alone: not one body byte is read, and no 100-continue is sent.
        if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Size);
        stream_.respond_error(413, "request body too large");
        return false;
    }
    return true;
}

// ---------------------------------------------------------------------------------------------------------
// The privacy stage, the forwarded client address, the record
// ---------------------------------------------------------------------------------------------------------

bool Exchange::run_privacy_stage(std::string_view content_type, std::string_view content_encoding) {
    PrivacyRequest req;
    req.method = llhttp_method_name(head_.method);
    // The wire format is the one of the service behind the route, so the filter sees the path it receives.
    req.normalized_path = upstream_path_view(*route, head_.normalized_path);
    req.query = query;
    req.content_type = content_type;
    req.content_encoding = content_encoding;
    req.body = body_buf_;
    req.client_ip = client_text_;
    req.wire_limit = body_limit;
    req.observations = worker_.observations();
    privacy::FilterOutput out = run_privacy_filter(*snapshot_->config, *route, req);
    if (Metrics* metrics = worker_.metrics())
        metrics->record_privacy(*worker_.metrics_shard(), snapshot_->labels.profile(route->privacy_profile),
                                out);
    accounting.rule_ids = std::move(out.rule_ids);
    accounting.verdict = out.verdict == privacy::FilterOutput::Verdict::Rejected    ? "rejected"
                         : out.verdict == privacy::FilterOutput::Verdict::Rewritten ? "rewritten"
                         : out.report_only_hits                                     ? "report"
                                                                                    : "unchanged";
    switch (out.verdict) {
        case privacy::FilterOutput::Verdict::Unchanged:
            forward_rewritten = false;
            forward_body.swap(body_buf_);
            return true;
        case privacy::FilterOutput::Verdict::Rewritten:
            forward_rewritten = true;
            forward_body = std::move(out.body);
            forward_content_type = std::move(out.content_type);
            if (out.query_changed) {
                forward_query_ = std::move(out.query);
                query = forward_query_;
            }
            return true;
        case privacy::FilterOutput::Verdict::Rejected: {
            const int status = out.status != 0 ? out.status : 400;
            if (MetricsShard* m = worker_.metrics_shard()) m->rejected(RejectReason::Privacy);
            accounting.error = "privacy_rejected";
            stream_.respond_json(status, privacy_rejection_body(status, out.code, out.error), {});
            return false;
        }
    }
    return false;
}

std::string_view Exchange::forwarded_for(ClientIpPolicy policy) {
    // The client address rarely changes between a connection's requests: format it (inet_ntop, ~2k
    // instructions) only when it or the route's policy did.
    if (!forwarded_for_valid_ || forwarded_for_policy_ != policy) {
        forwarded_for_ = forwarded_for_value(reinterpret_cast<const sockaddr*>(&client_addr_), policy);
        forwarded_for_policy_ = policy;
        forwarded_for_valid_ = true;
    }
    return forwarded_for_;
}

bool Exchange::access_logged() const {
    const AccessLog* log = worker_.access_log();
    return log != nullptr && log->enabled() && peer_ip_;
}

void Exchange::record_request() {
    // The Host is looked up only for the access log, the one reader of it here.
    record(llhttp_method_name(head_.method), access_logged() ? head_.headers->find(HeaderList::kHost) : "",
           head_.target);
}

// One finished exchange: per-route counters and one access-log line.
void Exchange::record(std::string_view method, std::string_view host, std::string_view target) {
    if (accounting.recorded) return;
    accounting.recorded = true;
    const uint64_t micros = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                      std::chrono::steady_clock::now() - accounting.started)
                                                      .count());
    const uint32_t route_label = route != nullptr ? snapshot_->route_label(*route) : kOtherLabel;
    if (MetricsShard* m = worker_.metrics_shard())
        m->request_done(route_label, accounting.status, micros, accounting.bytes_in, accounting.bytes_out);
    if (!access_logged()) return;
    AccessLogEntry e;
    timeval wall_now;
    gettimeofday(&wall_now, nullptr);
    e.start_unix_micros =
        static_cast<int64_t>(wall_now.tv_sec) * 1'000'000 + wall_now.tv_usec - static_cast<int64_t>(micros);
    e.client = client_ip_ ? *client_ip_ : *peer_ip_;
    e.client_ip_policy = route != nullptr ? route->client_ip : ClientIpPolicy::Forward;
    e.method = method;
    e.protocol = protocol;
    e.host = host;
    e.target = target;
    e.status = accounting.status;
    e.bytes_in = accounting.bytes_in;
    e.bytes_out = accounting.bytes_out;
    e.duration_micros = micros;
    if (route != nullptr) {
        e.route = route->name;
        // The upstream is named whenever it was involved: it answered, it was sent (part of) the request, or
        // none of its servers could be reached (503).
        if (accounting.upstream_micros >= 0 || !accounting.upstream_server.empty() || accounting.status == 503)
            e.upstream = snapshot_->config->upstreams[route->upstream_index].name;
    }
    e.upstream_server = accounting.upstream_server;
    e.error = accounting.error;
    e.upstream_micros = accounting.upstream_micros;
    e.verdict = accounting.verdict;
    e.rule_ids = accounting.rule_ids;
    e.include_query = snapshot_->config->access_log.include_query;
    worker_.access_log()->log(worker_.id(), e);
}

}  // namespace edgeguard
