// ConfigLoader: reads `upstreams:`: servers, DNS refresh and upstream TLS.
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_upstreams(const YAML::Node& n) {
    r_.read_named_map(n, "upstreams", [&](const YAML::Node& key, const YAML::Node& value) {
        UpstreamConfig u;
        u.name = key.Scalar();
        const std::string what = "upstream '" + u.name + "'";
        const size_t errors_before_tls = r_.errors().size();
        std::optional<YAML::Node> keepalive_node;
        std::optional<YAML::Node> tls_node;
        r_.read_map(
            value, what,
            {{"servers",
              [&](const YAML::Node& v) {
                  r_.read_list(v, what + " servers", [&](const YAML::Node& s) {
                      if (auto a = r_.address(s, what + " server")) u.servers.push_back(*a);
                  });
                  if (v.IsSequence() && v.size() == 0) r_.error(v, what + ": needs at least one server");
              },
              true},
             {"keepalive_idle",
              [&](const YAML::Node& v) {
                  keepalive_node.emplace(v);
                  if (auto d = r_.duration(v, what + " keepalive_idle")) u.keepalive_idle = *d;
              }},
             {"max_idle_per_worker",
              [&](const YAML::Node& v) {
                  if (auto x = r_.unsigned_int(v, what + " max_idle_per_worker", 0, 100'000)) {
                      u.max_idle_per_worker = static_cast<uint32_t>(*x);
                  }
              }},
             {"tls",
              [&](const YAML::Node& v) {
                  UpstreamTlsConfig tls;
                  r_.read_map(v, what + " tls",
                              {{"ca_file",
                                [&](const YAML::Node& f) {
                                    auto file = r_.string(f, what + " tls.ca_file");
                                    if (!file) return;
                                    tls.ca_file = config_files::resolve_path(dir_, *file);
                                    const std::string why = config_files::unreadable_reason(tls.ca_file);
                                    if (!why.empty()) {
                                        r_.error(
                                            f, what + " tls.ca_file: file '" + tls.ca_file + "' " + why);
                                    }
                                }},
                               {"server_name",
                                [&](const YAML::Node& f) {
                                    if (auto name = r_.string(f, what + " tls.server_name"))
                                        tls.server_name = *name;
                                }},
                               {"verify", [&](const YAML::Node& f) {
                                    if (auto b = r_.boolean(f, what + " tls.verify")) tls.verify = *b;
                                }}});
                  if (!tls.verify) {
                      r_.warning(
                          v, what + " tls.verify is false: the upstream's certificate is not checked");
                  }
                  u.tls = std::move(tls);
                  tls_node.emplace(v);
              }},
             {"dns_refresh", [&](const YAML::Node& v) {
                  auto d = r_.duration(v, what + " dns_refresh");
                  if (d && d->count() < 1000) {
                      r_.error(v, what + " dns_refresh: must be at least 1s");
                  } else if (d) {
                      u.dns_refresh = *d;
                  }
              }}});
        // Builds the TLS client context once, as serve will, so a bad CA bundle fails `check` too.
        if (tls_node && errors_before_tls == r_.errors().size()) {
            for (const std::string& e : validate_upstream_tls_config(*u.tls))
                r_.error(*tls_node, what + " tls: " + e);
        }
        if (keepalive_node && u.keepalive_idle >= Millis(5000)) {
            r_.warning(*keepalive_node,
                       what + " keepalive_idle " + std::to_string(u.keepalive_idle.count()) +
                           "ms: Node and Go services close idle connections at 5s; a pooled "
                           "connection may be reused just as the upstream closes it");
        }
        upstream_nodes_.emplace(u.name, key);
        cfg_.upstreams.push_back(std::move(u));
    });
}

}  // namespace edgeguard
