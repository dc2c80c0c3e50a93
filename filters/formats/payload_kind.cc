#include "filters/formats/payload_kind.h"

namespace edgeguard::privacy {

namespace {

// `path` is `prefix` or `prefix/` (the services route both; anything longer is another endpoint).
bool is_endpoint(std::string_view path, std::string_view prefix) {
    if (path.substr(0, prefix.size()) != prefix) return false;
    const std::string_view rest = path.substr(prefix.size());
    return rest.empty() || rest == "/";
}

// `path` is `prefix` or below it on a segment boundary.
bool is_under(std::string_view path, std::string_view prefix) {
    if (path.substr(0, prefix.size()) != prefix) return false;
    return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

PayloadKind payload_kind_for_path(std::string_view path) {
    if (is_endpoint(path, "/i/v0/ai")) return PayloadKind::AiMultipart;
    // Below an OTLP endpoint the body is still OTLP (the service answers 404, but it is inspected as what
    // it claims to be rather than as events).
    if (is_under(path, "/i/v0/ai/otel")) return PayloadKind::OtlpTraces;
    if (is_under(path, "/i/v1/logs")) return PayloadKind::OtlpLogs;
    if (is_under(path, "/i/v1/traces")) return PayloadKind::OtlpTraces;
    if (is_under(path, "/i/v1/metrics")) return PayloadKind::OtlpMetrics;
    // /i/v0/ai/batch is posthog-python's JSON batch, read like capture's /batch.
    return PayloadKind::PostHogJson;
}

}  // namespace edgeguard::privacy
