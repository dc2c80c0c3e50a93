#include "proxy/config/ingestion_routes.h"

#include <array>
#include <string_view>

namespace edgeguard {

namespace {

// PostHog's ingestion endpoints (capture, replay, flags, LLM analytics, OTLP, webhooks and email tracking).
constexpr std::array<std::string_view, 15> kIngestionPaths = {
    "/e", "/i/v0", "/batch", "/capture", "/track", "/engage", "/s", "/flags", "/decide",
    "/i/v1/logs", "/i/v1/traces", "/i/v1/metrics", "/public/webhooks", "/public/m", "/i/v0/ai"};

// The docker-compose service names of the hobby deployment that ingest data.
constexpr std::array<std::string_view, 7> kIngestionServices = {
    "capture", "capture-ai", "replay-capture", "feature-flags", "plugins", "capture-logs", "capture-metrics"};

bool at_or_below(std::string_view path, std::string_view prefix) {
    while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    if (path.substr(0, prefix.size()) != prefix) return false;
    return path.size() == prefix.size() || path[prefix.size()] == '/';
}

}  // namespace

std::string ingestion_reason(const RouteConfig& route) {
    for (const std::string& p : route.paths) {
        for (std::string_view known : kIngestionPaths) {
            if (at_or_below(p, known)) return "path " + p;
        }
    }
    for (std::string_view service : kIngestionServices) {
        if (route.upstream == service) return "upstream " + route.upstream;
    }
    return {};
}

}  // namespace edgeguard
