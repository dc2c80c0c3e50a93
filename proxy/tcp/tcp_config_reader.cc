#include "proxy/tcp/tcp_config_reader.h"

#include <map>
#include <optional>
#include <string>

namespace edgeguard {

namespace {

void read_timeouts(YamlReader& r, const YAML::Node& n, const std::string& what, TcpTimeouts& t) {
    auto field = [&](std::string_view key, Millis& out, bool zero_allowed) {
        return YamlReader::Field{key, [&r, &out, what, key, zero_allowed](const YAML::Node& v) {
                                     const std::string name = what + "." + std::string(key);
                                     auto d = r.duration(v, name);
                                     if (!d) return;
                                     if (d->count() == 0 && !zero_allowed) {
                                         r.error(v, name + ": must be above 0");
                                         return;
                                     }
                                     out = *d;
                                 }};
    };
    r.read_map(n, what,
               {field("connect", t.connect, false), field("idle", t.idle, false),
                field("lifetime", t.lifetime, true)});
}

std::optional<ProxyProtocol> parse_proxy_protocol(std::string_view s) {
    if (s == "off") return ProxyProtocol::Off;
    if (s == "v1") return ProxyProtocol::V1;
    if (s == "v2") return ProxyProtocol::V2;
    return std::nullopt;
}

}  // namespace

TcpConfig read_tcp_section(YamlReader& r, const YAML::Node& node, const Config& config,
                           const TlsSectionReader& read_tls) {
    TcpConfig out;
    std::map<std::string, size_t> upstream_index;
    for (size_t i = 0; i < config.upstreams.size(); ++i) upstream_index[config.upstreams[i].name] = i;
    // Addresses already taken: by HTTP listeners and the admin listener, then by earlier TCP listeners.
    std::map<std::string, std::string> taken;
    for (const ListenerConfig& l : config.listeners)
        taken.emplace(l.address.str(), "listener '" + l.name + "'");
    taken.emplace(config.admin.address.str(), "the admin listener");
    std::map<std::string, bool> names;
    for (const ListenerConfig& l : config.listeners) names.emplace(l.name, true);

    r.read_list(node, "tcp", [&](const YAML::Node& item) {
        TcpListenerConfig l;
        l.name = "tcp-" + std::to_string(out.listeners.size() + 1);
        l.buffer_bytes = config.limits.buffer_per_direction;
        std::string what = "tcp listener " + std::to_string(out.listeners.size() + 1);
        if (item.IsMap() && item["name"] && item["name"].IsScalar())
            what = "tcp listener '" + item["name"].Scalar() + "'";
        YAML::Node name_node = item;
        std::optional<YAML::Node> address_node, upstream_node, alpn_node;
        r.read_map(
            item, what,
            {{"name",
              [&](const YAML::Node& v) {
                  name_node.reset(v);
                  if (auto s = r.string(v, what + " name")) l.name = *s;
              }},
             {"address",
              [&](const YAML::Node& v) {
                  address_node.emplace(v);
                  if (auto a = r.address(v, what + " address")) l.address = *a;
              },
              true},
             {"upstream",
              [&](const YAML::Node& v) {
                  upstream_node.emplace(v);
                  if (auto s = r.string(v, what + " upstream")) l.upstream = *s;
              },
              true},
             {"allow", [&](const YAML::Node& v) { r.cidr_list(v, what + " allow", l.allow); }},
             {"deny", [&](const YAML::Node& v) { r.cidr_list(v, what + " deny", l.deny); }},
             {"max_connections",
              [&](const YAML::Node& v) {
                  if (auto x = r.unsigned_int(v, what + " max_connections", 1, 10'000'000))
                      l.max_connections = static_cast<uint32_t>(*x);
              }},
             {"max_connections_per_ip",
              [&](const YAML::Node& v) {
                  if (auto x = r.unsigned_int(v, what + " max_connections_per_ip", 0, 10'000'000))
                      l.max_connections_per_ip = static_cast<uint32_t>(*x);
              }},
             {"timeouts", [&](const YAML::Node& v) { read_timeouts(r, v, what + " timeouts", l.timeouts); }},
             {"proxy_protocol",
              [&](const YAML::Node& v) {
                  auto s = r.string(v, what + " proxy_protocol");
                  if (!s) return;
                  if (auto p = parse_proxy_protocol(*s)) {
                      l.proxy_protocol = *p;
                  } else {
                      r.error(v, what + " proxy_protocol: expected off, v1 or v2, got '" + *s + "'");
                  }
              }},
             {"tls",
              [&](const YAML::Node& v) {
                  l.tls.emplace();
                  read_tls(v, what + " tls", *l.tls);
              }},
             {"alpn",
              [&](const YAML::Node& v) {
                  alpn_node.emplace(v);
                  r.read_list(v, what + " alpn", [&](const YAML::Node& p) {
                      auto s = r.string(p, what + " alpn");
                      if (!s) return;
                      if (s->empty() || s->size() > 255) {
                          r.error(p, what + " alpn: a protocol name is 1 to 255 bytes");
                          return;
                      }
                      l.alpn.push_back(*s);
                  });
              }},
             {"buffer", [&](const YAML::Node& v) {
                  auto x = r.size(v, what + " buffer");
                  if (!x) return;
                  if (*x < 4096 || *x > (64u << 20)) {
                      r.error(v, what + " buffer: must be between 4096 and " + std::to_string(64u << 20) +
                                     " bytes");
                      return;
                  }
                  l.buffer_bytes = static_cast<uint32_t>(*x);
              }}});
        if (alpn_node && !l.tls)
            r.error(*alpn_node, what + " alpn: needs tls (ALPN is part of the TLS handshake)");
        if (!names.emplace(l.name, true).second)
            r.error(name_node, "duplicate listener name '" + l.name + "'");
        if (address_node && l.address.port != 0) {
            auto [it, inserted] = taken.emplace(l.address.str(), what);
            if (!inserted)
                r.error(*address_node, what + ": " + l.address.str() + " is already used by " + it->second);
        }
        if (upstream_node && !l.upstream.empty()) {
            auto it = upstream_index.find(l.upstream);
            if (it == upstream_index.end()) {
                r.error(*upstream_node, what + ": unknown upstream '" + l.upstream + "'");
            } else {
                l.upstream_index = it->second;
                if (config.upstreams[it->second].tls)
                    r.error(*upstream_node,
                            what + ": upstream '" + l.upstream +
                                "' has tls, which TCP listeners do not speak (they relay bytes as "
                                "they come)");
            }
        }
        out.listeners.push_back(std::move(l));
    });
    return out;
}

}  // namespace edgeguard
