// ConfigLoader: reads `rate_limits:` and `shared_limits:` (Redis).
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_rate_limits(const YAML::Node& n) {
    r_.read_named_map(n, "rate_limits", [&](const YAML::Node& key, const YAML::Node& value) {
        RateLimitConfig rl;
        rl.name = key.Scalar();
        const std::string what = "rate limit '" + rl.name + "'";
        bool has_burst = false;
        r_.read_map(
            value, what,
            {{"rate",
              [&](const YAML::Node& v) {
                  if (auto x = r_.rate(v, what + " rate")) rl.rate_per_second = *x;
              },
              true},
             {"burst",
              [&](const YAML::Node& v) {
                  has_burst = true;
                  if (auto x = r_.unsigned_int(v, what + " burst", 1, 1'000'000'000)) {
                      rl.burst = static_cast<uint32_t>(*x);
                  }
              }},
             {"key",
              [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + " key");
                  if (!s) return;
                  if (*s == "client_ip") {
                      rl.key = RateLimitConfig::Key::ClientIp;
                  } else if (*s == "route") {
                      rl.key = RateLimitConfig::Key::Route;
                  } else if (s->rfind("header:", 0) == 0 && s->size() > 7) {
                      rl.key = RateLimitConfig::Key::Header;
                      rl.header = s->substr(7);
                  } else {
                      r_.error(
                          v, what + " key: expected client_ip, route or header:<Name>, got '" + *s + "'");
                  }
              }},
             {"exempt", [&](const YAML::Node& v) { r_.cidr_list(v, what + " exempt", rl.exempt); }}});
        // Without an explicit burst, allow one second's worth at once (at least one request).
        if (!has_burst && rl.rate_per_second > 0) {
            rl.burst = static_cast<uint32_t>(std::max(1.0, std::ceil(rl.rate_per_second)));
        }
        rate_limit_names_.insert(rl.name);
        cfg_.rate_limits.push_back(std::move(rl));
    });
}

void ConfigLoader::read_shared_limits(const YAML::Node& n) {
    SharedLimitsConfig& s = cfg_.shared_limits;
    r_.read_map(n, "shared_limits",
                {{"redis_url",
                  [&](const YAML::Node& v) {
                      auto url = r_.string(v, "shared_limits.redis_url");
                      if (!url) return;
                      std::string_view rest = *url;
                      constexpr std::string_view scheme = "redis://";
                      bool ok = rest.substr(0, scheme.size()) == scheme;
                      if (ok) rest.remove_prefix(scheme.size());
                      const size_t slash = rest.find('/');
                      std::optional<HostPort> addr;
                      if (ok) addr = parse_host_port(rest.substr(0, slash));
                      ok = ok && addr.has_value();
                      uint32_t db = 0;
                      if (ok && slash != std::string_view::npos) {
                          const std::string_view db_text = rest.substr(slash + 1);
                          ok = !db_text.empty() && db_text.size() <= 2;
                          for (char c : db_text) {
                              ok = ok && c >= '0' && c <= '9';
                              db = db * 10 + static_cast<uint32_t>(c - '0');
                          }
                      }
                      if (!ok) {
                          r_.error(v, "shared_limits.redis_url: expected redis://host:port[/db], got '" +
                                          *url + "'");
                          return;
                      }
                      s.redis_url = *url;
                      s.redis_address = *addr;
                      s.redis_db = db;
                  },
                  true},
                 {"timeout",
                  [&](const YAML::Node& v) {
                      auto d = r_.duration(v, "shared_limits.timeout");
                      if (d && (d->count() < 1 || d->count() > 10'000)) {
                          r_.error(v, "shared_limits.timeout: must be between 1ms and 10s");
                      } else if (d) {
                          s.timeout = *d;
                      }
                  }},
                 {"fail_open", [&](const YAML::Node& v) {
                      if (auto b = r_.boolean(v, "shared_limits.fail_open")) s.fail_open = *b;
                  }}});
}

}  // namespace edgeguard
