// The Prometheus text exposition of the registry: shards summed at scrape time, one family per metric,
// label values escaped. Runs on the admin thread, never on a worker.
#include "proxy/ops/metrics.h"

#include <charconv>
#include <cstdio>
#include <functional>

#include "filters/filter_api.h"
#include "proxy/config/config.h"
#include "proxy/ops/process_metrics.h"

#ifndef EDGEGUARD_VERSION
#define EDGEGUARD_VERSION "dev"
#endif

namespace edgeguard {

namespace {

constexpr std::array<std::string_view, 5> kStatusClassNames{"1xx", "2xx", "3xx", "4xx", "5xx"};

uint64_t load(const std::atomic<uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
}
int64_t load(const std::atomic<int64_t>& g) {
    return g.load(std::memory_order_relaxed);
}

void append_uint(std::string& out, uint64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_int(std::string& out, int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

// Shortest round-trip form; Prometheus parses Go-style floats, and to_chars never emits a locale comma.
void append_double(std::string& out, double v) {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

void append_family(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_help_escaped(out, help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

// A label list in the making: `{a="x",b="y"}`; empty when no label was added.
class Labels {
  public:
    Labels& add(std::string_view key, std::string_view value) {
        text_ += text_.empty() ? '{' : ',';
        text_ += key;
        text_ += "=\"";
        append_label_value_escaped(text_, value);
        text_ += '"';
        return *this;
    }
    void append_to(std::string& out) const {
        if (text_.empty()) return;
        out += text_;
        out += '}';
    }
    // The same labels plus one more, for _bucket's le.
    Labels with(std::string_view key, std::string_view value) const {
        Labels l = *this;
        l.add(key, value);
        return l;
    }

  private:
    std::string text_;
};

void append_sample(std::string& out, std::string_view name, std::string_view suffix, const Labels& labels) {
    out += name;
    out += suffix;
    labels.append_to(out);
    out += ' ';
}

void append_histogram(std::string& out, std::string_view name, const Labels& labels,
                      const std::array<uint64_t, kLatencyBucketsSeconds.size() + 1>& buckets,
                      uint64_t sum_micros) {
    uint64_t cumulative = 0;
    char le[32];
    for (size_t i = 0; i < buckets.size(); ++i) {
        cumulative += buckets[i];
        std::string_view le_text = "+Inf";
        if (i < kLatencyBucketsSeconds.size()) {
            // Fixed notation ("0.0001", not "1e-04"): queries select buckets by this exact text.
            auto r = std::to_chars(le, le + sizeof le, kLatencyBucketsSeconds[i], std::chars_format::fixed);
            le_text = std::string_view(le, static_cast<size_t>(r.ptr - le));
        }
        append_sample(out, name, "_bucket", labels.with("le", le_text));
        append_uint(out, cumulative);
        out += '\n';
    }
    append_sample(out, name, "_sum", labels);
    append_double(out, static_cast<double>(sum_micros) / 1e6);
    out += '\n';
    append_sample(out, name, "_count", labels);
    append_uint(out, cumulative);
    out += '\n';
}

using Shards = std::vector<std::unique_ptr<MetricsShard>>;
using BucketCounts = std::array<uint64_t, kLatencyBucketsSeconds.size() + 1>;

// Cell i of a per-label array, summed over every shard.
template <typename T, size_t N>
T sum_cells(const Shards& shards, const std::array<std::atomic<T>, N> MetricsShard::*field, size_t i) {
    T total = 0;
    for (const auto& s : shards) total += load(((*s).*field)[i]);
    return total;
}

template <typename T>
T sum_scalar(const Shards& shards, std::atomic<T> MetricsShard::*field) {
    T total = 0;
    for (const auto& s : shards) total += load((*s).*field);
    return total;
}

template <size_t N>
void sum_histogram(const Shards& shards, const std::array<HistogramCells, N> MetricsShard::*field, size_t i,
                   BucketCounts& buckets, uint64_t& sum_micros) {
    buckets = {};
    sum_micros = 0;
    for (const auto& s : shards) {
        const HistogramCells& cells = ((*s).*field)[i];
        for (size_t b = 0; b < buckets.size(); ++b) buckets[b] += load(cells.buckets[b]);
        sum_micros += load(cells.sum_micros);
    }
}

void append_line(std::string& out, std::string_view name, const Labels& labels, uint64_t v) {
    append_sample(out, name, "", labels);
    append_uint(out, v);
    out += '\n';
}

void append_line(std::string& out, std::string_view name, const Labels& labels, int64_t v) {
    append_sample(out, name, "", labels);
    append_int(out, v);
    out += '\n';
}

// A family with one unlabelled sample.
template <typename T>
void append_scalar_family(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type, T value) {
    append_family(out, name, help, type);
    append_line(out, name, Labels(), value);
}

// A counter family with one sample per label of `table` (routes or upstreams).
template <size_t N>
void append_labelled_counter(std::string& out, const Shards& shards, std::string_view name,
                             std::string_view help, std::string_view key, const LabelTable& table,
                             const std::array<std::atomic<uint64_t>, N> MetricsShard::*field) {
    append_family(out, name, help, "counter");
    for (size_t i = 0; i < table.size(); ++i)
        append_line(out, name, Labels().add(key, table.name(static_cast<uint32_t>(i))),
                    sum_cells(shards, field, i));
}

// A latency histogram family with one histogram per label of `table`.
template <size_t N>
void append_labelled_histogram(std::string& out, const Shards& shards, std::string_view name,
                               std::string_view help, std::string_view key, const LabelTable& table,
                               const std::array<HistogramCells, N> MetricsShard::*field) {
    append_family(out, name, help, "histogram");
    BucketCounts buckets;
    uint64_t sum_micros;
    for (size_t i = 0; i < table.size(); ++i) {
        sum_histogram(shards, field, i, buckets, sum_micros);
        append_histogram(out, name, Labels().add(key, table.name(static_cast<uint32_t>(i))), buckets,
                         sum_micros);
    }
}

}  // namespace

std::string Metrics::render() const {
    std::string out;
    out.reserve(64 * 1024);
    const Shards& shards = shards_;

    append_family(out, "edgeguard_build_info", "edgeguard version.", "gauge");
    append_line(out, "edgeguard_build_info", Labels().add("version", EDGEGUARD_VERSION), uint64_t{1});

    append_family(out, "edgeguard_requests_total", "Requests answered, by route and status class.",
                  "counter");
    for (size_t r = 0; r < routes_.size(); ++r) {
        for (size_t c = 0; c < kStatusClassNames.size(); ++c) {
            uint64_t v = 0;
            for (const auto& s : shards) v += load(s->requests[r][c]);
            append_line(out, "edgeguard_requests_total",
                        Labels()
                            .add("route", routes_.name(static_cast<uint32_t>(r)))
                            .add("code", kStatusClassNames[c]),
                        v);
        }
    }
    append_family(out, "edgeguard_responses_total",
                  "Requests answered, by route and status code (codes not tracked one by one: \"other\").",
                  "counter");
    for (size_t r = 0; r < routes_.size(); ++r) {
        for (size_t c = 0; c < kStatusCells; ++c) {
            uint64_t v = 0;
            for (const auto& s : shards) v += load(s->statuses[r][c]);
            if (v == 0) continue;  // sparse: an absent series reads as zero in PromQL
            char code[8];
            const int n = c < kTrackedStatuses.size()
                              ? std::snprintf(code, sizeof code, "%u", static_cast<unsigned>(kTrackedStatuses[c]))
                              : std::snprintf(code, sizeof code, "other");
            append_line(out, "edgeguard_responses_total",
                        Labels()
                            .add("route", routes_.name(static_cast<uint32_t>(r)))
                            .add("code", std::string_view(code, static_cast<size_t>(n))),
                        v);
        }
    }
    append_labelled_histogram(out, shards, "edgeguard_request_duration_seconds",
                              "Client-facing latency: request head received to response complete, by route.",
                              "route", routes_, &MetricsShard::request_duration);
    append_labelled_counter(out, shards, "edgeguard_received_bytes_total",
                            "Request bytes read from clients, by route.", "route", routes_,
                            &MetricsShard::bytes_in);
    append_labelled_counter(out, shards, "edgeguard_sent_bytes_total",
                            "Response bytes written to clients, by route.", "route", routes_,
                            &MetricsShard::bytes_out);

    append_labelled_histogram(out, shards, "edgeguard_upstream_duration_seconds",
                              "Upstream latency: request sent to response headers received, by upstream.",
                              "upstream", upstreams_, &MetricsShard::upstream_duration);
    append_labelled_counter(out, shards, "edgeguard_upstream_connect_errors_total",
                            "Failed upstream connection attempts.", "upstream", upstreams_,
                            &MetricsShard::upstream_connect_errors);
    append_labelled_counter(out, shards, "edgeguard_upstream_timeouts_total",
                            "Upstream connect, header or body timeouts.", "upstream", upstreams_,
                            &MetricsShard::upstream_timeouts);
    append_labelled_counter(out, shards, "edgeguard_upstream_retries_total",
                            "Requests retried on another upstream connection.", "upstream", upstreams_,
                            &MetricsShard::upstream_retries);
    append_family(out, "edgeguard_upstream_pool_connections", "Upstream connections held, by state.",
                  "gauge");
    for (size_t u = 0; u < upstreams_.size(); ++u) {
        const std::string_view upstream = upstreams_.name(static_cast<uint32_t>(u));
        append_line(out, "edgeguard_upstream_pool_connections",
                    Labels().add("upstream", upstream).add("state", "idle"),
                    sum_cells(shards, &MetricsShard::pool_idle, u));
        append_line(out, "edgeguard_upstream_pool_connections",
                    Labels().add("upstream", upstream).add("state", "active"),
                    sum_cells(shards, &MetricsShard::pool_active, u));
    }

    append_scalar_family(out, "edgeguard_active_connections", "Client connections open now.", "gauge",
                         sum_scalar(shards, &MetricsShard::active_connections));
    append_scalar_family(out, "edgeguard_active_streams", "WebSocket tunnels and event streams open now.",
                         "gauge", sum_scalar(shards, &MetricsShard::active_streams));
    append_scalar_family(out, "edgeguard_connections_accepted_total", "Client connections accepted.",
                         "counter", sum_scalar(shards, &MetricsShard::connections_accepted));

    append_scalar_family(out, "edgeguard_http2_connections_total", "Client connections that chose HTTP/2.",
                         "counter", sum_scalar(shards, &MetricsShard::http2_connections));
    append_scalar_family(out, "edgeguard_http2_streams_total", "Requests carried by HTTP/2 streams.", "counter",
                         sum_scalar(shards, &MetricsShard::http2_streams));
    append_family(out, "edgeguard_http2_goaways_total",
                  "HTTP/2 connections edgeguard ended with GOAWAY, by reason.", "counter");
    for (size_t i = 0; i < kHttp2GoawayCount; ++i)
        append_line(out, "edgeguard_http2_goaways_total",
                    Labels().add("reason", http2_goaway_name(static_cast<Http2Goaway>(i))),
                    sum_cells(shards, &MetricsShard::http2_goaways, i));

    append_family(out, "edgeguard_rejections_total",
                  "Requests or connections refused by edgeguard, by reason.", "counter");
    for (size_t i = 0; i < kRejectReasonCount; ++i)
        append_line(out, "edgeguard_rejections_total",
                    Labels().add("reason", reject_reason_name(static_cast<RejectReason>(i))),
                    sum_cells(shards, &MetricsShard::rejections, i));

    append_family(out, "edgeguard_privacy_requests_total",
                  "Bodies inspected by a privacy profile, by verdict.", "counter");
    for (size_t p = 0; p < profiles_.size(); ++p) {
        for (size_t v = 0; v < kPrivacyVerdictCount; ++v) {
            uint64_t n = 0;
            for (const auto& s : shards) n += load(s->privacy_verdicts[p][v]);
            append_line(out, "edgeguard_privacy_requests_total",
                        Labels()
                            .add("profile", profiles_.name(static_cast<uint32_t>(p)))
                            .add("verdict", privacy_verdict_name(static_cast<PrivacyVerdict>(v))),
                        n);
        }
    }
    render_privacy(out);

    append_scalar_family(
        out, "edgeguard_tls_handshake_failures_total",
        "Client connections that ended before their TLS handshake completed (all listeners).", "counter",
        sum_scalar(shards, &MetricsShard::tls_handshake_failures));
    append_scalar_family(out, "edgeguard_rate_limit_fallbacks_total",
                         "Rate-limit decisions taken locally because the shared backend was slow or down.",
                         "counter", sum_scalar(shards, &MetricsShard::rate_limit_fallbacks));

    append_scalar_family(out, "edgeguard_config_reloads_total",
                         "Configurations loaded successfully (start included).", "counter",
                         config_reloads_.load(std::memory_order_relaxed));
    append_scalar_family(out, "edgeguard_config_reload_failures_total",
                         "Reloads rejected (the previous configuration kept running).", "counter",
                         config_reload_failures_.load(std::memory_order_relaxed));
    append_scalar_family(out, "edgeguard_config_last_reload_success_timestamp_seconds",
                         "Unix time of the last successful configuration load.", "gauge",
                         config_last_reload_unix_.load(std::memory_order_relaxed));

    append_process_metrics(out, start_time_unix_);

    std::lock_guard lock(slow_mutex_);
    append_family(out, "edgeguard_config_info", "The running configuration, by content hash.", "gauge");
    append_line(out, "edgeguard_config_info", Labels().add("hash", config_hash_),
                uint64_t{config_reloads_.load(std::memory_order_relaxed) ? 1u : 0u});
    for (const auto& e : externals_) {
        append_family(out, e.name, e.help, e.type);
        out += e.name;
        out += ' ';
        append_double(out, e.read());
        out += '\n';
    }
    for (const auto& render_collector : collectors_) render_collector(out);
    return out;
}

void Metrics::render_privacy(std::string& out) const {
    append_family(
        out, "edgeguard_privacy_decisions_total",
        "Values acted on by privacy rules, by profile, rule and action (report = would have acted).",
        "counter");
    const size_t nprofiles = profiles_.size();
    const size_t nrules = rules_.size();
    for (size_t p = 0; p < nprofiles; ++p) {
        for (size_t r = 0; r < nrules; ++r) {
            for (size_t a = 0; a < kPrivacyActionCount; ++a) {
                const uint64_t v =
                    load(privacy_decisions_[(p * kMaxRuleLabels + r) * kPrivacyActionCount + a]);
                if (v == 0) continue;  // the matrix is sparse; absent series read as zero in PromQL
                append_sample(out, "edgeguard_privacy_decisions_total", "",
                              Labels()
                                  .add("profile", profiles_.name(static_cast<uint32_t>(p)))
                                  .add("rule", rules_.name(static_cast<uint32_t>(r)))
                                  .add("action", privacy_action_name(static_cast<PrivacyAction>(a))));
                append_uint(out, v);
                out += '\n';
            }
        }
    }
}

void append_metric_family(std::string& out, std::string_view name, std::string_view help,
                          std::string_view type) {
    append_family(out, name, help, type);
}

void append_metric_sample(std::string& out, std::string_view name, std::initializer_list<MetricLabel> labels,
                          uint64_t value) {
    Labels l;
    for (const auto& [key, label_value] : labels) l.add(key, label_value);
    append_line(out, name, l, value);
}

void append_label_value_escaped(std::string& out, std::string_view value) {
    for (char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
}

void append_help_escaped(std::string& out, std::string_view help) {
    for (char c : help) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
}

}  // namespace edgeguard
