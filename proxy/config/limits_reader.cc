// ConfigLoader: reads `limits:` and every `timeouts:` block (global and per route).
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_limits(const YAML::Node& n) {
    Limits& l = cfg_.limits;
    auto u32 = [&](const YAML::Node& v, const char* what, uint64_t min, uint64_t max, uint32_t& out) {
        if (auto x = r_.unsigned_int(v, what, min, max)) out = static_cast<uint32_t>(*x);
    };
    auto size32 = [&](const YAML::Node& v, const char* what, uint64_t min, uint64_t max, uint32_t& out) {
        auto x = r_.size(v, what);
        if (!x) return;
        if (*x < min || *x > max) {
            r_.error(v, std::string(what) + ": must be between " + std::to_string(min) + " and " +
                            std::to_string(max) + " bytes");
            return;
        }
        out = static_cast<uint32_t>(*x);
    };
    r_.read_map(
        n, "limits",
        {{"max_header_bytes",
          [&](const YAML::Node& v) {
              size32(v, "limits.max_header_bytes", 1024, 1 << 20, l.max_header_bytes);
          }},
         {"max_uri_bytes",
          [&](const YAML::Node& v) { size32(v, "limits.max_uri_bytes", 256, 1 << 20, l.max_uri_bytes); }},
         {"max_headers",
          [&](const YAML::Node& v) { u32(v, "limits.max_headers", 1, 10'000, l.max_headers); }},
         {"max_body",
          [&](const YAML::Node& v) {
              if (auto x = r_.size(v, "limits.max_body")) l.max_body_bytes = *x;
          }},
         {"buffer_per_direction",
          [&](const YAML::Node& v) {
              size32(v, "limits.buffer_per_direction", 4096, 64u << 20, l.buffer_per_direction);
          }},
         {"max_connections",
          [&](const YAML::Node& v) {
              u32(v, "limits.max_connections", 1, 10'000'000, l.max_connections);
          }},
         {"max_connections_per_ip", [&](const YAML::Node& v) {
              u32(v, "limits.max_connections_per_ip", 0, 10'000'000, l.max_connections_per_ip);
          }}});
}

void ConfigLoader::read_timeouts(const YAML::Node& n, const std::string& what, Timeouts& t) {
    auto field = [&](std::string_view key, Millis& out) {
        return YamlReader::Field{key, [this, &out, what, key](const YAML::Node& v) {
                                     auto d = r_.duration(v, what + "." + std::string(key));
                                     if (!d) return;
                                     if (d->count() == 0) {
                                         r_.error(v, what + "." + std::string(key) + ": must be above 0");
                                         return;
                                     }
                                     out = *d;
                                 }};
    };
    r_.read_map(
        n, what,
        {field("client_header", t.client_header), field("client_keepalive", t.client_keepalive),
         field("client_body_idle", t.client_body_idle), field("upstream_connect", t.upstream_connect),
         field("upstream_response_header", t.upstream_response_header),
         field("upstream_body_idle", t.upstream_body_idle), field("stream_idle", t.stream_idle)});
}

}  // namespace edgeguard
