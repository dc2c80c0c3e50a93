#include "proxy/tls/tls_metrics.h"

#include "proxy/ops/metrics.h"
#include "proxy/tls/tls_context.h"

namespace edgeguard {

namespace {

uint64_t load(const std::atomic<uint64_t>& c) {
    return c.load(std::memory_order_relaxed);
}

}  // namespace

void append_tls_listener_metrics(std::string& out,
                                 const std::vector<std::shared_ptr<const ServerTlsContext>>& listeners) {
    append_metric_family(
        out, "edgeguard_tls_handshakes_total",
        "TLS handshakes completed, by listener and protocol version (resumed ones included).", "counter");
    for (const auto& tls : listeners) {
        if (!tls) continue;
        for (size_t v = 0; v < kTlsVersionClassCount; ++v)
            append_metric_sample(out, "edgeguard_tls_handshakes_total",
                                 {{"listener", tls->runtime()->listener_name},
                                  {"version", tls_version_class_name(static_cast<TlsVersionClass>(v))}},
                                 load(tls->counters().handshakes_by_version[v]));
    }

    append_metric_family(out, "edgeguard_tls_resumed_handshakes_total",
                         "TLS handshakes that resumed a session from a ticket, by listener.", "counter");
    for (const auto& tls : listeners) {
        if (!tls) continue;
        append_metric_sample(out, "edgeguard_tls_resumed_handshakes_total",
                             {{"listener", tls->runtime()->listener_name}}, load(tls->counters().resumed));
    }

    append_metric_family(out, "edgeguard_tls_handshake_errors_total",
                         "TLS handshakes OpenSSL aborted, by listener and reason class.", "counter");
    for (const auto& tls : listeners) {
        if (!tls) continue;
        for (size_t c = 0; c < kTlsFailureClassCount; ++c)
            append_metric_sample(out, "edgeguard_tls_handshake_errors_total",
                                 {{"listener", tls->runtime()->listener_name},
                                  {"reason", tls_failure_class_name(static_cast<TlsFailureClass>(c))}},
                                 load(tls->counters().failures_by_class[c]));
    }
}

}  // namespace edgeguard
