#include "proxy/tls/certificate_metrics.h"

#include "proxy/ops/metrics.h"
#include "proxy/tls/tls_context.h"

namespace edgeguard {

void append_certificate_expiry_metrics(std::string& out,
                                       const std::vector<std::shared_ptr<const ServerTlsContext>>& listeners) {
    static constexpr std::string_view kName = "edgeguard_tls_certificate_expiry_timestamp_seconds";
    append_metric_family(out, kName,
                         "When each certificate a TLS listener serves expires (its notAfter), in Unix seconds.",
                         "gauge");
    for (const auto& tls : listeners) {
        if (!tls) continue;
        for (const ServerTlsContext::Certificate& cert : tls->certificates()) {
            append_metric_sample(out, kName,
                                 {{"listener", tls->runtime()->listener_name}, {"certificate", cert.cert_file}},
                                 static_cast<uint64_t>(cert.not_after < 0 ? 0 : cert.not_after));
        }
    }
}

}  // namespace edgeguard
