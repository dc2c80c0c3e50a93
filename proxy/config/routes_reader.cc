// ConfigLoader: reads `routes:` and checks that every route path can be reached.
#include "proxy/config/config_loader.h"

namespace edgeguard {

namespace {

bool prefix_covers(std::string_view earlier, std::string_view later) {
    // `later` can never be reached when `earlier` already matches it as a path: everything under `later`
    // then lies under `earlier` too (matching is segment-aware).
    if (later.size() < earlier.size() || later.compare(0, earlier.size(), earlier) != 0) return false;
    if (earlier.back() == '/' || later.size() == earlier.size()) return true;
    return later[earlier.size()] == '/';
}

}  // namespace

void ConfigLoader::read_routes(const YAML::Node& n) {
    std::map<std::string, YAML::Node> names;
    r_.read_list(n, "routes", [&](const YAML::Node& item) {
        RouteConfig route;
        RouteNodes nodes;
        nodes.self.reset(item);
        std::string what = "route " + std::to_string(cfg_.routes.size() + 1);
        if (item.IsMap() && item["name"] && item["name"].IsScalar())
            what = "route '" + item["name"].Scalar() + "'";
        YAML::Node name_node = item;
        r_.read_map(
            item, what,
            {{"name",
              [&](const YAML::Node& v) {
                  name_node.reset(v);
                  if (auto s = r_.string(v, what + " name")) route.name = *s;
              },
              true},
             {"paths",
              [&](const YAML::Node& v) {
                  r_.read_list(v, what + " paths", [&](const YAML::Node& p) {
                      auto s = r_.string(p, what + " path");
                      if (!s) return;
                      if (s->empty() || s->front() != '/') {
                          r_.error(p, what + ": path '" + *s + "' must start with '/'");
                          return;
                      }
                      // Requests are matched after normalization, so a pattern that is not itself normal
                      // ("/a//b", "/%65", "/x/../y") could never match anything.
                      auto normal = normalize_path(*s);
                      if (!normal || *normal != *s) {
                          r_.error(p, what + ": path '" + *s + "' is not in normal form" +
                                          (normal ? " (write '" + *normal + "')" : std::string()));
                          return;
                      }
                      route.paths.push_back(*s);
                      nodes.paths.push_back(p);
                  });
                  if (v.IsSequence() && v.size() == 0) r_.error(v, what + ": needs at least one path");
              },
              true},
             {"upstream",
              [&](const YAML::Node& v) {
                  nodes.upstream.reset(v);
                  if (auto s = r_.string(v, what + " upstream")) route.upstream = *s;
              },
              true},
             {"strip_prefix",
              [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + " strip_prefix");
                  if (!s) return;
                  auto normal = normalize_path(*s);
                  if (s->empty() || s->front() != '/' || !normal || *normal != *s) {
                      r_.error(
                          v, what + " strip_prefix: expected a normalized path starting with '/', got '" +
                                 *s + "'");
                      return;
                  }
                  route.strip_prefix = *s;
              }},
             {"privacy",
              [&](const YAML::Node& v) {
                  nodes.privacy.reset(v);
                  if (auto s = r_.string(v, what + " privacy")) {
                      // `none` says an ingestion route is unfiltered on purpose (no profile is named so).
                      if (*s == "none") route.privacy_none = true;
                      else route.privacy_profile = *s;
                  }
              }},
             {"max_body",
              [&](const YAML::Node& v) {
                  nodes.has_max_body = true;
                  if (auto x = r_.size(v, what + " max_body")) route.max_body_bytes = *x;
              }},
             {"client_ip",
              [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + " client_ip");
                  if (!s) return;
                  if (*s == "forward") {
                      route.client_ip = ClientIpPolicy::Forward;
                  } else if (*s == "truncate") {
                      route.client_ip = ClientIpPolicy::Truncate;
                  } else if (*s == "drop") {
                      route.client_ip = ClientIpPolicy::Drop;
                  } else {
                      r_.error(v,
                               what + " client_ip: expected forward, truncate or drop, got '" + *s + "'");
                  }
              }},
             {"timeouts", [&](const YAML::Node& v) { nodes.timeouts.emplace(v); }},
             {"allow", [&](const YAML::Node& v) { r_.cidr_list(v, what + " allow", route.allow); }},
             {"response_headers",
              [&](const YAML::Node& v) { read_response_headers(v, what, route.response_headers); }},
             {"deny", [&](const YAML::Node& v) { r_.cidr_list(v, what + " deny", route.deny); }},
             {"rate_limit", [&](const YAML::Node& v) {
                  nodes.rate_limit.reset(v);
                  if (auto s = r_.string(v, what + " rate_limit")) route.rate_limit = *s;
              }}});
        if (!route.name.empty() && !names.emplace(route.name, name_node).second) {
            r_.error(name_node, "duplicate route name '" + route.name + "'");
        }
        // Route timeouts override the global ones key by key; globals are fully read by now.
        route.timeouts = cfg_.timeouts;
        if (nodes.timeouts) read_timeouts(*nodes.timeouts, what + " timeouts", route.timeouts);
        if (!nodes.has_max_body) route.max_body_bytes = cfg_.limits.max_body_bytes;
        cfg_.routes.push_back(std::move(route));
        route_nodes_.push_back(std::move(nodes));
    });
    if ((n.IsSequence() && n.size() == 0) || n.IsNull())
        r_.warning(n, "routes: empty, every request will get 404");
}

void ConfigLoader::check_routes() {
    // A path that an earlier path already takes can never be reached: usually a misordered table
    // (e.g. /i/v0 listed before /i/v0/ai).
    for (size_t i = 0; i < cfg_.routes.size(); ++i) {
        for (size_t p = 0; p < cfg_.routes[i].paths.size(); ++p) {
            const std::string& later = cfg_.routes[i].paths[p];
            bool reported = false;
            for (size_t j = 0; j <= i && !reported; ++j) {
                const size_t limit = j == i ? p : cfg_.routes[j].paths.size();
                for (size_t q = 0; q < limit && !reported; ++q) {
                    if (!prefix_covers(cfg_.routes[j].paths[q], later)) continue;
                    const YAML::Node& at = route_nodes_[i].paths[p];
                    r_.error(at, "route '" + cfg_.routes[i].name + "': path '" + later +
                                     "' can never match, route '" + cfg_.routes[j].name + "' path '" +
                                     cfg_.routes[j].paths[q] + "' (line " +
                                     std::to_string(route_nodes_[j].paths[q].Mark().line + 1) +
                                     ") takes it first");
                    reported = true;
                }
            }
        }
    }
}

}  // namespace edgeguard
