// One request and its response, independent of the protocol that carried them (downstream.h). The steps
// that need only the request head and the snapshot run here, in this order:
//   client IP (trusted proxies) -> route -> allow/deny -> rate limit (local, or shared through Redis)
//   -> body limit -> privacy stage (buffered routes: the whole body, then the filter)
// and the exchange keeps what the access-log line and the per-route metrics report when it ends.
// The codec carrying the exchange owns it and reuses it for the connection's next request (buffers keep
// their capacity: no allocation per request).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/access/cidr.h"
#include "proxy/access/rate_limiter.h"
#include "proxy/access/redis_limiter.h"
#include "proxy/config/config.h"
#include "proxy/pipeline/downstream.h"

namespace edgeguard {

struct Snapshot;
class UpstreamPool;
class Worker;

// What the access-log line and the request metrics of one exchange report.
struct ExchangeRecord {
    std::chrono::steady_clock::time_point started;
    int64_t started_unix_micros = 0;
    std::chrono::steady_clock::time_point upstream_sent_at;
    int64_t upstream_micros = -1;  // head sent upstream -> response head received; -1: no upstream answer
    uint64_t bytes_in = 0;
    uint64_t bytes_out = 0;
    int status = 0;
    std::string_view verdict;  // privacy stage: unchanged, rewritten, rejected, report; empty when skipped
    std::vector<std::string> rule_ids;
    std::string error;            // the access log's `error` for this request; empty when none
    std::string upstream_server;  // the server this request was sent to ("host:port"); empty before a connect
    bool recorded = true;
};

class Exchange {
  public:
    Exchange(Worker& worker, DownstreamStream& stream, const sockaddr* peer, socklen_t peer_len);
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;

    // --- driven by the codec ---
    // A request starts under `snapshot` (kept until it ends) on `listener`: accounting starts now.
    void begin(const Snapshot& snapshot, const ListenerConfig& listener);
    // A request head parsed: what earlier requests on the connection left behind is cleared.
    void reset_request();
    // The validated head: runs the checks; ends in stream.request_admitted or a stream.respond_* call.
    void on_request_head(const RequestHead& head);
    // Body bytes of a buffered route.
    void buffer_body(const char* data, size_t len) { body_buf_.append(data, len); }
    // The buffered body is complete: filters it. True when the request goes on upstream (forward_body and
    // query say what), false when the exchange answered (a rejection).
    bool run_privacy_stage(std::string_view content_type, std::string_view content_encoding);
    // The exchange ended (or its response started to stream): one metrics update and one access-log line,
    // once. `method`, `host` and `target` are what the codec parsed, however far it got.
    void record(std::string_view method, std::string_view host, std::string_view target);
    // The client is gone: a shared rate-limit decision in flight must not call back.
    void cancel();
    // Sets the access log's `error` code for this request (the first reason wins: it is the cause).
    void note_error_reason(int status, std::string_view message);
    // A buffered route that does not inspect bodies: the body goes upstream as the client sent it.
    void forward_buffered_body();

    // --- what the rest of the request path reads ---
    const RouteConfig* route = nullptr;
    UpstreamPool* pool = nullptr;
    uint64_t body_limit = 0;   // 0: none
    bool buffering = false;    // the whole body is held before anything goes upstream
    bool inspecting = false;   // ... and run through the privacy stage (else forwarded as read)
    std::string_view query;    // the query sent upstream (the filter may have rewritten it)
    std::string forward_body;  // a buffered request's body as it goes upstream (filtered or original)
    bool forward_rewritten = false;
    std::string forward_content_type;  // a rewritten body's Content-Type; empty = application/json
    ExchangeRecord accounting;
    std::string_view protocol = "HTTP/1.1";  // the codec's, for the access log
    const RateLimitDecision& rate_decision() const { return rate_decision_; }
    // The X-Forwarded-For value for this request's client under the route's policy (cached per connection).
    std::string_view forwarded_for(ClientIpPolicy policy);
    const std::optional<IpAddress>& peer_ip() const { return peer_ip_; }

  private:
    bool resolve_client();
    bool select_route();
    bool rate_limit_permits();
    static void on_shared_limit_decision(void* arg, const RateLimitDecision& decision, DecisionSource source);
    bool apply_rate_decision(const RateLimitDecision& decision);
    void after_rate_limit();
    bool body_within_limit();

    Worker& worker_;
    DownstreamStream& stream_;
    const Snapshot* snapshot_ = nullptr;
    const ListenerConfig* listener_ = nullptr;
    RequestHead head_;

    // The peer and the client behind trusted proxies (client_ip.h), resolved per request; the peer until
    // then. Used for X-Forwarded-For, client_ip policies, the privacy filter, logs and rate-limit keys.
    sockaddr_storage peer_{};
    std::string peer_text_;
    std::optional<IpAddress> peer_ip_;
    std::optional<IpAddress> client_ip_;
    sockaddr_storage client_addr_{};
    std::string client_text_;
    bool client_from_forwarded_ = false;  // client_addr_/client_text_ came from X-Forwarded-For, not the peer
    // X-Forwarded-For value for client_addr_ under forwarded_for_policy_, reused while both stay the same.
    std::string forwarded_for_;
    ClientIpPolicy forwarded_for_policy_ = ClientIpPolicy::Forward;
    bool forwarded_for_valid_ = false;
    std::string forwarded_for_joined_;  // every X-Forwarded-For line joined with ','

    // Shared (Redis) rate limit in flight: the decision may arrive before decide() returns.
    bool rate_pending_ = false;
    bool rate_in_decide_ = false;
    bool rate_decided_ = false;
    RateLimitDecision rate_decision_;
    std::string redis_key_;

    std::string body_buf_;       // a buffered route's body as the client sent it
    std::string forward_query_;  // the filter's rewritten query, when it changed one
};

}  // namespace edgeguard
