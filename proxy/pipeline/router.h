// Route selection on the normalized path: first match in declared order, segment-aware.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"

namespace edgeguard {

// Normalizes an origin-form path (no query): percent-decodes unreserved characters (so "/%65" is "/e"),
// resolves "." and ".." segments (never above the root), collapses "//". Returns nullopt for a path that
// cannot be made safe (bad percent escape, NUL, control bytes, not starting with '/').
std::optional<std::string> normalize_path(std::string_view raw_path);

class Router {
public:
    explicit Router(const std::vector<RouteConfig>& routes);
    // `normalized_path` must come from normalize_path(). Returns null when no route matches.
    const RouteConfig* match(std::string_view normalized_path) const;

private:
    const std::vector<RouteConfig>* routes_;
};

// The path to send upstream: strip_prefix removed ("/livestream/events" -> "/events", "/livestream" -> "/").
std::string upstream_path(const RouteConfig& route, std::string_view normalized_path);
// The same without a copy: a view into `normalized_path` (or of a static "/").
std::string_view upstream_path_view(const RouteConfig& route, std::string_view normalized_path);

}  // namespace edgeguard
