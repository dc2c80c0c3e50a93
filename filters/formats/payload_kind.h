// Which wire format a request body has, from the (normalized) path it was sent to: PostHog's JSON events
// (capture, replay, flags — filters/decode), an LLM analytics multipart event (/i/v0/ai), or an OTLP/HTTP
// export (/i/v1/logs, /i/v1/traces, /i/v1/metrics, and /i/v0/ai/otel which takes traces).
#pragma once

#include <string_view>

namespace edgeguard::privacy {

enum class PayloadKind { PostHogJson, AiMultipart, OtlpLogs, OtlpTraces, OtlpMetrics };

PayloadKind payload_kind_for_path(std::string_view path);

}  // namespace edgeguard::privacy
