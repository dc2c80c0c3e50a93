#include "proxy/tcp/tcp_listener_stats.h"

#include <cstdio>

#include "proxy/ops/metrics.h"

namespace edgeguard {

std::string_view tcp_refusal_name(TcpRefusal r) {
    switch (r) {
        case TcpRefusal::Allowlist:
            return "allowlist";
        case TcpRefusal::ConnectionLimit:
            return "connection_limit";
        case TcpRefusal::PerIpLimit:
            return "per_ip_limit";
        case TcpRefusal::Unconfigured:
            return "unconfigured";
    }
    return "unknown";
}

void TcpListenerStats::observe_duration(uint64_t micros) {
    size_t i = 0;
    while (i < kTcpDurationBucketsSeconds.size() &&
           static_cast<double>(micros) > kTcpDurationBucketsSeconds[i] * 1e6)
        ++i;
    duration_buckets[i].fetch_add(1, std::memory_order_relaxed);
    duration_sum_micros.fetch_add(micros, std::memory_order_relaxed);
}

TcpListenerStats& TcpListenerRegistry::get(const std::string& name) {
    std::lock_guard lock(mutex_);
    auto& slot = by_name_[name];
    if (!slot) slot = std::make_unique<TcpListenerStats>();
    return *slot;
}

const TcpListenerStats* TcpListenerRegistry::find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second.get();
}

std::string TcpListenerRegistry::unready_reason(const TcpConfig* config, size_t workers) const {
    if (config == nullptr) return "";
    for (const TcpListenerConfig& l : config->listeners) {
        const TcpListenerStats* stats = find(l.name);
        const uint32_t bound = stats != nullptr ? stats->bound_workers.load(std::memory_order_relaxed) : 0;
        if (bound < workers)
            return "tcp listener " + l.name + " is not listening on " + l.address.str() + " (" +
                   std::to_string(bound) + " of " + std::to_string(workers) + " workers)";
    }
    return "";
}

void TcpListenerRegistry::render(std::string& out) const {
    std::lock_guard lock(mutex_);
    if (by_name_.empty()) return;
    auto load = [](const auto& a) { return static_cast<uint64_t>(a.load(std::memory_order_relaxed)); };
    append_metric_family(out, "edgeguard_tcp_connections_open", "TCP connections open, by listener.",
                         "gauge");
    for (const auto& [name, s] : by_name_) {
        const int64_t open = s->open.load(std::memory_order_relaxed);
        append_metric_sample(out, "edgeguard_tcp_connections_open", {{"listener", name}},
                             static_cast<uint64_t>(open < 0 ? 0 : open));
    }
    append_metric_family(out, "edgeguard_tcp_connections_total", "TCP connections admitted, by listener.",
                         "counter");
    for (const auto& [name, s] : by_name_)
        append_metric_sample(out, "edgeguard_tcp_connections_total", {{"listener", name}}, load(s->accepted));
    append_metric_family(out, "edgeguard_tcp_refused_total",
                         "TCP connections closed at accept, by listener and reason.", "counter");
    for (const auto& [name, s] : by_name_)
        for (size_t r = 0; r < kTcpRefusalCount; ++r)
            append_metric_sample(
                out, "edgeguard_tcp_refused_total",
                {{"listener", name}, {"reason", tcp_refusal_name(static_cast<TcpRefusal>(r))}},
                load(s->refused[r]));
    append_metric_family(
        out, "edgeguard_tcp_bytes_total",
        "Bytes relayed by TCP listeners; direction upstream = from the client to the upstream.", "counter");
    for (const auto& [name, s] : by_name_) {
        append_metric_sample(out, "edgeguard_tcp_bytes_total",
                             {{"listener", name}, {"direction", "upstream"}}, load(s->bytes_from_client));
        append_metric_sample(out, "edgeguard_tcp_bytes_total",
                             {{"listener", name}, {"direction", "downstream"}}, load(s->bytes_to_client));
    }
    append_metric_family(
        out, "edgeguard_tcp_upstream_connect_errors_total",
        "Failed connects (refused, reset, timed out, unresolvable) to a TCP listener's upstream.", "counter");
    for (const auto& [name, s] : by_name_)
        append_metric_sample(out, "edgeguard_tcp_upstream_connect_errors_total", {{"listener", name}},
                             load(s->connect_errors));
    append_metric_family(out, "edgeguard_tcp_connection_duration_seconds",
                         "How long admitted TCP connections lasted, by listener.", "histogram");
    for (const auto& [name, s] : by_name_) {
        uint64_t cumulative = 0;
        char le[32];
        for (size_t i = 0; i <= kTcpDurationBucketsSeconds.size(); ++i) {
            cumulative += load(s->duration_buckets[i]);
            if (i < kTcpDurationBucketsSeconds.size())
                std::snprintf(le, sizeof le, "%g", kTcpDurationBucketsSeconds[i]);
            else
                std::snprintf(le, sizeof le, "+Inf");
            append_metric_sample(out, "edgeguard_tcp_connection_duration_seconds_bucket",
                                 {{"listener", name}, {"le", le}}, cumulative);
        }
        out += "edgeguard_tcp_connection_duration_seconds_sum{listener=\"";
        append_label_value_escaped(out, name);
        char sum[48];
        std::snprintf(sum, sizeof sum, "\"} %.6f\n", static_cast<double>(load(s->duration_sum_micros)) / 1e6);
        out += sum;
        append_metric_sample(out, "edgeguard_tcp_connection_duration_seconds_count", {{"listener", name}},
                             cumulative);
    }
}

}  // namespace edgeguard
