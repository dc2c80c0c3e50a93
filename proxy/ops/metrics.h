// Prometheus metrics with a fixed label set: route, upstream, profile, rule, action, status class and a few
// closed enums. No client IPs and no raw paths ever become label values, so cardinality is bounded by the
// config. Workers update their own cache-line-separated shard with relaxed atomic adds (integer indices
// only); a scrape sums the shards. Label values are interned into append-only tables at snapshot build time,
// so a reload that adds a route never moves an index a worker still holds.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace edgeguard::privacy {
struct FilterOutput;
}

namespace edgeguard {

struct Config;

// Capacities of the label tables. A name beyond capacity is counted under kOtherLabel, never dropped.
inline constexpr size_t kMaxRouteLabels = 128;
inline constexpr size_t kMaxUpstreamLabels = 64;
inline constexpr size_t kMaxProfileLabels = 16;
inline constexpr size_t kMaxRuleLabels = 256;
// Index 0 of every label table: requests that matched no configured name (no route) or overflowed a table.
inline constexpr uint32_t kOtherLabel = 0;
inline constexpr std::string_view kOtherLabelName = "_other";

// Client-facing and upstream latency buckets (seconds). They start at 100 µs because edgeguard itself adds tens
// of microseconds: Prometheus' default 5 ms first bucket would put every locally answered request in one bucket.
inline constexpr std::array<double, 16> kLatencyBucketsSeconds{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                               0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                               1.0,    2.5,     5.0,    10.0};

// Status codes counted one by one (beside the classes), so an alert can tell a 413 from a 429 or a 502 from a
// 504. Any other code is counted as "other". Kept short: one cell per route and code.
inline constexpr std::array<uint16_t, 26> kTrackedStatuses{200, 201, 204, 206, 301, 302, 304, 307, 308,
                                                           400, 401, 403, 404, 405, 408, 413, 414, 415,
                                                           417, 422, 429, 431, 500, 502, 503, 504};
inline constexpr size_t kStatusCells = kTrackedStatuses.size() + 1;  // last = any other code
size_t status_cell(int status);                                      // index into kStatusCells

enum class RejectReason : uint8_t { Allowlist, RateLimit, ConnectionLimit, Size, Parse, Privacy, Timeout };
inline constexpr size_t kRejectReasonCount = 7;
std::string_view reject_reason_name(RejectReason r);

// Why edgeguard ended an HTTP/2 connection with GOAWAY: Idle (no stream for http2.idle_timeout), Drain
// (shutdown), StreamResets and ControlFrames (a flood over its http2 budget), Stalled (a closed flow-control
// window or an unread socket for http2.zero_window_timeout), Protocol (the client broke HTTP/2; nghttp2's
// own limits, such as the CONTINUATION cap, end here too).
enum class Http2Goaway : uint8_t { Idle, Drain, StreamResets, ControlFrames, Stalled, Protocol };
inline constexpr size_t kHttp2GoawayCount = 6;
std::string_view http2_goaway_name(Http2Goaway g);

// The actions a privacy rule can take (filters/filter_api.h AuditEntry::action); Pass is a profile's
// `on_undecodable: pass` letting an undecodable body through; Other catches a name this list does not know.
enum class PrivacyAction : uint8_t { Reject, Drop, Redact, Mask, Hash, TruncateIp, Report, Pass, Other };
inline constexpr size_t kPrivacyActionCount = 9;
std::string_view privacy_action_name(PrivacyAction a);
PrivacyAction parse_privacy_action(std::string_view name);

// InvalidJson is a body that decoded but is not JSON: told apart from rule hits (Rejected) and from bodies
// that could not be decoded at all (DecodeFailed), because it usually means a broken client, not a leak.
enum class PrivacyVerdict : uint8_t { Unchanged, Rewritten, Rejected, DecodeFailed, InvalidJson };
inline constexpr size_t kPrivacyVerdictCount = 5;
std::string_view privacy_verdict_name(PrivacyVerdict v);

// Append-only interning of label values with lock-free lookups: an open-addressing table of atomic pointers.
// intern() takes a mutex only on a miss (once per distinct name, at config time in practice); find() and a
// hit in intern() never lock. Entries are never removed, so an index stays valid for the registry's life.
class LabelTable {
  public:
    explicit LabelTable(size_t capacity);  // capacity includes the kOtherLabel slot
    ~LabelTable();
    LabelTable(const LabelTable&) = delete;
    LabelTable& operator=(const LabelTable&) = delete;

    uint32_t intern(std::string_view name);      // kOtherLabel when the table is full
    uint32_t find(std::string_view name) const;  // kOtherLabel when absent
    size_t size() const { return size_.load(std::memory_order_acquire); }
    size_t capacity() const { return capacity_; }
    std::string_view name(uint32_t index) const;  // index < size()

  private:
    struct Entry {
        std::string name;
        uint32_t index;
    };
    const Entry* probe(std::string_view name, size_t& slot) const;

    size_t capacity_;
    size_t slot_mask_;
    std::unique_ptr<std::atomic<const Entry*>[]> slots_;  // hash slots, 2x capacity rounded to a power of 2
    std::unique_ptr<std::atomic<const Entry*>[]> by_index_;
    std::atomic<size_t> size_{0};
    std::mutex insert_mutex_;
};

// Counts of one latency distribution; buckets are non-cumulative here and made cumulative when rendered.
struct HistogramCells {
    std::array<std::atomic<uint64_t>, kLatencyBucketsSeconds.size() + 1> buckets{};  // last = +Inf
    std::atomic<uint64_t> sum_micros{0};
    void observe_micros(uint64_t micros);
};

// One writer thread's counters. Cache-line aligned so two workers never share a line.
struct alignas(64) MetricsShard {
    std::array<std::array<std::atomic<uint64_t>, 5>, kMaxRouteLabels> requests{};  // [route][status/100 - 1]
    std::array<std::array<std::atomic<uint64_t>, kStatusCells>, kMaxRouteLabels> statuses{};  // [route][cell]
    std::array<HistogramCells, kMaxRouteLabels> request_duration{};
    std::array<std::atomic<uint64_t>, kMaxRouteLabels> bytes_in{};
    std::array<std::atomic<uint64_t>, kMaxRouteLabels> bytes_out{};
    std::array<HistogramCells, kMaxUpstreamLabels> upstream_duration{};
    std::array<std::atomic<uint64_t>, kMaxUpstreamLabels> upstream_connect_errors{};
    std::array<std::atomic<uint64_t>, kMaxUpstreamLabels> upstream_timeouts{};
    std::array<std::atomic<uint64_t>, kMaxUpstreamLabels> upstream_retries{};
    // Gauges are kept as per-shard signed deltas; the scrape sums them.
    std::array<std::atomic<int64_t>, kMaxUpstreamLabels> pool_idle{};
    std::array<std::atomic<int64_t>, kMaxUpstreamLabels> pool_active{};
    std::atomic<int64_t> active_connections{0};
    std::atomic<int64_t> active_streams{0};
    std::atomic<uint64_t> connections_accepted{0};
    std::array<std::atomic<uint64_t>, kRejectReasonCount> rejections{};
    std::array<std::array<std::atomic<uint64_t>, kPrivacyVerdictCount>, kMaxProfileLabels> privacy_verdicts{};
    std::atomic<uint64_t> tls_handshake_failures{0};
    std::atomic<uint64_t> rate_limit_fallbacks{0};
    std::atomic<uint64_t> http2_connections{0};  // connections that chose HTTP/2
    std::atomic<uint64_t> http2_streams{0};      // requests carried by HTTP/2 streams
    std::array<std::atomic<uint64_t>, kHttp2GoawayCount> http2_goaways{};

    // --- hot-path updates: relaxed adds on this shard only ---
    void request_done(uint32_t route, int status, uint64_t duration_micros, uint64_t in, uint64_t out);
    void upstream_response(uint32_t upstream, uint64_t duration_micros);
    void upstream_connect_error(uint32_t upstream) { add(upstream_connect_errors[clamp_upstream(upstream)]); }
    void upstream_timeout(uint32_t upstream) { add(upstream_timeouts[clamp_upstream(upstream)]); }
    void upstream_retry(uint32_t upstream) { add(upstream_retries[clamp_upstream(upstream)]); }
    void pool_idle_delta(uint32_t upstream, int64_t d) { add(pool_idle[clamp_upstream(upstream)], d); }
    void pool_active_delta(uint32_t upstream, int64_t d) { add(pool_active[clamp_upstream(upstream)], d); }
    void connection_opened() {
        add(active_connections, 1);
        add(connections_accepted);
    }
    void connection_closed() { add(active_connections, -1); }
    void stream_opened() { add(active_streams, 1); }
    void stream_closed() { add(active_streams, -1); }
    void rejected(RejectReason r) { add(rejections[static_cast<size_t>(r)]); }
    void privacy_verdict(uint32_t profile, PrivacyVerdict v);
    void tls_handshake_failed() { add(tls_handshake_failures); }
    void rate_limit_fell_back() { add(rate_limit_fallbacks); }
    void http2_connection_opened() { add(http2_connections); }
    void http2_stream_opened() { add(http2_streams); }
    void http2_goaway(Http2Goaway g) { add(http2_goaways[static_cast<size_t>(g)]); }

  private:
    static uint32_t clamp_route(uint32_t i) { return i < kMaxRouteLabels ? i : kOtherLabel; }
    static uint32_t clamp_upstream(uint32_t i) { return i < kMaxUpstreamLabels ? i : kOtherLabel; }
    static void add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
    static void add(std::atomic<int64_t>& g, int64_t d) { g.fetch_add(d, std::memory_order_relaxed); }
};

// Label indices for one config snapshot: route i of Config::routes is counted under routes[i], and so on.
// Built by Metrics::register_config() off the workers; stored beside (or inside) the snapshot.
struct MetricsLabelIds {
    std::vector<uint32_t> routes;
    std::vector<uint32_t> upstreams;
    uint32_t profile(std::string_view name) const;  // kOtherLabel for an unknown profile
    std::vector<std::pair<std::string, uint32_t>> profiles;
};

// The registry. Lives as long as the server (not in the config snapshot), so counters survive reloads.
class Metrics {
  public:
    // One shard per worker thread plus one shared shard for every other thread (admin, reload, Redis
    // callbacks).
    explicit Metrics(size_t worker_shards);
    ~Metrics();
    Metrics(const Metrics&) = delete;
    Metrics& operator=(const Metrics&) = delete;

    MetricsShard& shard(size_t worker) { return *shards_[worker < worker_shards_ ? worker : worker_shards_]; }
    MetricsShard& shared_shard() { return *shards_[worker_shards_]; }
    size_t worker_shards() const { return worker_shards_; }

    LabelTable& routes() { return routes_; }
    LabelTable& upstreams() { return upstreams_; }
    LabelTable& profiles() { return profiles_; }
    LabelTable& rules() { return rules_; }

    // Interns the config's route, upstream and privacy profile names. Call when building a snapshot.
    MetricsLabelIds register_config(const Config& config);

    // Privacy decisions by profile, rule and action: one add per audit entry (by its match count), from any
    // thread. Rule ids are interned on first sight (lock-free afterwards). Also counts the verdict; a
    // rejection with status 400, 413 or 415 is the filter's fail-closed answer to a body it could not decode,
    // counted as decode_failed, any other rejection (422 from a rule) as rejected.
    void record_privacy(MetricsShard& shard, uint32_t profile, const privacy::FilterOutput& out);
    void privacy_decision(uint32_t profile, std::string_view rule_id, PrivacyAction action, uint64_t n = 1);

    // Reload bookkeeping: called by the reload path (not the hot path).
    void config_loaded(std::string_view config_hash);  // counts a successful (re)load, sets the info label
    void config_reload_failed();

    // Extra families owned by other components (access-log drops, limiter table size...). Registered at
    // startup; `read` is called on the scrape thread and must be thread-safe. `type` is "counter" or "gauge".
    void add_external(std::string name, std::string help, std::string type, std::function<double()> read);
    // Families with labels owned by another component (per-listener TLS counters): `render` appends whole
    // families (append_metric_family, then append_metric_sample) on the scrape thread, after everything else.
    void add_collector(std::function<void(std::string& out)> render);

    // Prometheus text exposition format 0.0.4.
    std::string render() const;

  private:
    void render_privacy(std::string& out) const;

    size_t worker_shards_;
    double start_time_unix_ = 0;  // process_start_time_seconds
    std::vector<std::unique_ptr<MetricsShard>> shards_;
    LabelTable routes_{kMaxRouteLabels};
    LabelTable upstreams_{kMaxUpstreamLabels};
    LabelTable profiles_{kMaxProfileLabels};
    LabelTable rules_{kMaxRuleLabels};
    // Decisions are sparse and far rarer than requests: one shared matrix of relaxed atomics.
    std::unique_ptr<std::atomic<uint64_t>[]> privacy_decisions_;  // [profile][rule][action]
    std::atomic<uint64_t> config_reloads_{0};
    std::atomic<uint64_t> config_reload_failures_{0};
    std::atomic<int64_t> config_last_reload_unix_{0};

    mutable std::mutex slow_mutex_;  // guards config_hash_ and externals_ (set rarely, read on scrape)
    std::string config_hash_;
    struct External {
        std::string name, help, type;
        std::function<double()> read;
    };
    std::vector<External> externals_;
    std::vector<std::function<void(std::string&)>> collectors_;
};

// For collectors: a family's HELP and TYPE lines, then one sample per label combination. Label values are
// escaped here; keys must be valid label names. A family's samples must follow its header contiguously.
using MetricLabel = std::pair<std::string_view, std::string_view>;
void append_metric_family(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type);
void append_metric_sample(std::string& out, std::string_view name, std::initializer_list<MetricLabel> labels,
                          uint64_t value);

// Escaping for Prometheus label values (backslash, double quote, newline) and HELP text (backslash, newline).
void append_label_value_escaped(std::string& out, std::string_view value);
void append_help_escaped(std::string& out, std::string_view help);

}  // namespace edgeguard
