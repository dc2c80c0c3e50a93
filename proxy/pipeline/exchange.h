// One request and its response, independent of the protocol that carried them (downstream.h). The steps
// that need only the request head and the snapshot run here, in this order:
//   HTTPS redirect (a redirect_https_to listener answers 308 here, whatever protocol carried the request)
//   -> client IP (trusted proxies) -> route -> allow/deny -> rate limit (local, or shared through Redis)
//   -> body limit -> privacy stage (buffered routes: the whole body, then the filter)
//   -> upstream: a pooled connection, the request head and body, the response parsed and relayed
// and the exchange keeps what the access-log line and the per-route metrics report when it ends.
// exchange.cc holds the checks, exchange_upstream.cc the upstream side. The codec carrying the exchange
// owns it and reuses it for its next request (buffers keep their capacity: no allocation per request).
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
#include "proxy/core/direct_write.h"
#include "proxy/pipeline/downstream.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"
#include "proxy/upstream/upstream_response_parser.h"

namespace edgeguard {

struct Snapshot;
class Worker;

// What the access-log line and the request metrics of one exchange report.
struct ExchangeRecord {
    // The head's first byte; the access log's wall-clock start is derived from it when a line is written.
    std::chrono::steady_clock::time_point started;
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

class Exchange final : public UpstreamOwner, public UpstreamWaiter, public UpstreamResponseParser::Sink {
  public:
    Exchange(Worker& worker, DownstreamStream& stream, const sockaddr* peer, socklen_t peer_len);
    ~Exchange();
    Exchange(const Exchange&) = delete;
    Exchange& operator=(const Exchange&) = delete;
    bool ready() const { return upstream_stage_.ready(); }  // false: out of memory at construction

    // --- driven by the codec ---
    // A request starts under `snapshot` (kept until it ends) on `listener`: accounting starts now.
    void begin(const Snapshot& snapshot, const ListenerConfig& listener);
    // A request head parsed: what earlier requests on the connection left behind is cleared.
    void reset_request();
    // The validated head: runs the checks; ends in stream.request_admitted or a stream.respond_* call. A
    // streamed body is admitted once the upstream has the head, so the body follows the head in order.
    void on_request_head(const RequestHead& head);
    // Body bytes, after request_admitted: held for a buffered route, staged for the upstream otherwise.
    void request_body(const char* data, size_t len);
    // As request_body, but a streamed body's bytes are staged where they are (WriteStage::lend): the codec
    // keeps them unchanged until it calls flush_request or keep_request_body.
    void lend_request_body(const char* data, size_t len);
    bool request_body_lent() const { return upstream_stage_.has_lent(); }
    // Copies lent body bytes into the stage: the codec is about to drain them without a flush.
    void keep_request_body() { upstream_stage_.keep_lent(); }
    // Whether the upstream can take more body bytes now; after false the codec waits for
    // stream.request_body_drained.
    bool request_body_room() const;
    // Sends staged body bytes upstream (the codec calls it after each batch of request_body).
    void flush_request();
    // The body ended: a buffered route's body is filtered (the exchange may answer: a rejection) and sent.
    void request_end();
    // The codec can take response bytes again after stream.response_room() said no.
    void response_drained();
    // The codec answers (or ends) the request itself: an upstream connection or address wait is given up.
    void abandon_upstream();
    // An upstream holds (part of) the request.
    bool has_upstream() const { return upstream_ != nullptr; }
    // The exchange ended (or its response started to stream): one metrics update and one access-log line,
    // once. `method`, `host` and `target` are what the codec parsed, however far it got.
    void record(std::string_view method, std::string_view host, std::string_view target);
    // Whether record() writes an access-log line (the log is on): what only the line needs may be skipped.
    bool access_logged() const;
    // The client is gone: nothing in flight (a shared rate-limit decision, an upstream) may call back.
    void cancel();
    // Sets the access log's `error` code for this request (the first reason wins: it is the cause).
    void note_error_reason(int status, std::string_view message);

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
    bool redirect_to_https();
    bool resolve_client();
    bool select_route();
    bool client_allowed();  // allow/deny for the client on `route` (null: no route matched)
    bool rate_limit_permits();
    static void on_shared_limit_decision(void* arg, const RateLimitDecision& decision, DecisionSource source);
    bool apply_rate_decision(const RateLimitDecision& decision);
    void after_rate_limit();
    bool body_within_limit();
    bool run_privacy_stage(std::string_view content_type, std::string_view content_encoding);
    void forward_buffered_body();
    void record_request();

    // --- the upstream side (exchange_upstream.cc) ---
    void start_upstream(bool fresh_only);
    void send_request_head();
    bool relay_response();
    void finish_response();
    void on_upstream_eof();
    void upstream_failed_before_response(bool connect_failure);
    void fail(int status, std::string_view reason);
    Millis response_body_idle() const;
    void begin_event_stream();
    void end_event_stream();

    // UpstreamOwner / UpstreamWaiter / UpstreamResponseParser::Sink
    void upstream_connected(UpstreamConnection& conn) override;
    void upstream_readable(UpstreamConnection& conn) override;
    void upstream_writable(UpstreamConnection& conn) override;
    void upstream_closed(UpstreamConnection& conn, short events) override;
    void upstream_timer_fired(UpstreamConnection& conn) override;
    void upstream_addresses_ready() override;
    void upstream_response_head(const ResponseHead& head) override;
    void upstream_response_body(const char* data, size_t len) override;

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
    // The route the last request's normalized path matched, and the snapshot it was matched in (0: none).
    uint64_t route_generation_ = 0;
    std::string route_path_;
    const RouteConfig* route_found_ = nullptr;
    // The last allow/deny answer for the peer as the client, and what it was decided under.
    bool allow_answer_ = false;
    uint64_t allow_generation_ = 0;  // 0: no answer kept (none yet, or the last client came from X-Forwarded-For)
    const RouteConfig* allow_route_ = nullptr;

    // Shared (Redis) rate limit in flight: the decision may arrive before decide() returns.
    bool rate_pending_ = false;
    bool rate_in_decide_ = false;
    bool rate_decided_ = false;
    RateLimitDecision rate_decision_;
    std::string redis_key_;

    std::string body_buf_;       // a buffered route's body as the client sent it
    std::string forward_query_;  // the filter's rewritten query, when it changed one

    // --- the upstream side of the current request ---
    UpstreamConnection* upstream_ = nullptr;
    bool waiting_for_dns_ = false;
    uint32_t connect_attempts_ = 0;
    bool retried_ = false;
    bool request_complete_ = false;  // the codec delivered the whole body (request_end)
    bool body_requested_ = false;    // request_admitted(false) went out: the body streams as it is read
    bool upstream_chunked_ = false;  // the body is re-chunked toward the upstream
    bool upstream_eof_ = false;
    bool response_active_ = false;   // a response is being read from upstream_
    bool response_started_ = false;  // its head went to the codec
    bool event_stream_ = false;      // text/event-stream: silence is timed by the route's stream_idle
    bool stream_counted_ = false;    // this exchange holds one count of the active-streams gauge
    UpstreamResponseParser response_{*this};
    std::string head_buf_;         // the upstream request head is built here, then added in one append
    std::string upstream_target_;  // path (+ "?query") sent upstream
    WriteStage upstream_stage_;    // request bytes of one client read, sent with one writev
};

}  // namespace edgeguard
