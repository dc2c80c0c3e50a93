// Loads conf/edgeguard.yaml into an immutable Config snapshot. Reading is declarative (each mapping lists its
// keys, so unknown keys are errors) and keeps going after a mistake, so `edgeguard check` shows every problem
// at once. Cross-references (route -> upstream, privacy profile, rate limit) are checked after the whole
// document is read because YAML does not order top-level keys.
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "filters/filter_api.h"
#include "proxy/config.h"
#include "proxy/config_values.h"
#include "proxy/router.h"
#include "proxy/tcp/tcp_config_reader.h"
#include "proxy/tls_context.h"
#include "proxy/tls_upstream.h"
#include "proxy/yaml_reader.h"

namespace edgeguard {

std::string HostPort::str() const {
    if (host.find(':') != std::string::npos) return "[" + host + "]:" + std::to_string(port);
    return host + ":" + std::to_string(port);
}

std::string ConfigError::str() const {
    if (line <= 0) return file + ": " + message;
    return file + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + message;
}

namespace {

std::string directory_of(const std::string& path) {
    const size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

std::string resolve_path(const std::string& base_dir, const std::string& path) {
    if (path.empty() || path.front() == '/') return path;
    return base_dir + "/" + path;
}

// Empty string when `path` is a readable regular file, else why not.
std::string unreadable_reason(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return "does not exist";
    if (!S_ISREG(st.st_mode)) return "is not a regular file";
    if (access(path.c_str(), R_OK) != 0) return "is not readable";
    return "";
}

std::optional<std::string> read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return buf.str();
}

std::string sha256_hex(const std::vector<std::string_view>& parts) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_MD_CTX* ctx = EVP_MD_CTX_new();
    bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1;
    for (std::string_view p : parts) ok = ok && EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
    ok = ok && EVP_DigestFinal_ex(ctx, digest, &len) == 1;
    EVP_MD_CTX_free(ctx);
    if (!ok) return "";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    out.reserve(len * 2);
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xf]);
    }
    return out;
}

bool prefix_covers(std::string_view earlier, std::string_view later) {
    // `later` can never be reached when `earlier` already matches it as a path: everything under `later`
    // then lies under `earlier` too (matching is segment-aware).
    if (later.size() < earlier.size() || later.compare(0, earlier.size(), earlier) != 0) return false;
    if (earlier.back() == '/' || later.size() == earlier.size()) return true;
    return later[earlier.size()] == '/';
}

// Where each route's cross-references were written, for messages after the whole file is read.
struct RouteNodes {
    YAML::Node self;
    YAML::Node upstream;
    YAML::Node privacy;
    YAML::Node rate_limit;
    std::optional<YAML::Node> timeouts;
    std::vector<YAML::Node> paths;
    bool has_max_body = false;
};

class Loader {
  public:
    Loader(const std::string& path) : r_(path), dir_(directory_of(path)) { cfg_.source_path = path; }

    ConfigLoadResult load(const std::string& text) {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            // ParserException marks are 0-based like node marks.
            r_.error_at(e.mark.line >= 0 ? e.mark.line + 1 : 0, e.mark.column >= 0 ? e.mark.column + 1 : 0,
                        "YAML syntax error: " + e.msg);
            return finish(text, "");
        }
        if (!root.IsDefined() || root.IsNull()) {
            r_.error_at(0, 0, "config is empty");
            return finish(text, "");
        }
        read_document(root);
        std::string rules_bytes;
        if (!cfg_.privacy_rules_file.empty()) rules_bytes = load_privacy();
        check_routes();
        check_references();
        return finish(text, rules_bytes);
    }

  private:
    void read_document(const YAML::Node& root) {
        // Gather the top-level nodes first; sections are then read in dependency order.
        // std::optional, not YAML::Node: a default Node counts as defined, and assigning to a bound Node
        // rewrites the node it refers to instead of rebinding.
        std::optional<YAML::Node> listeners, admin, trusted, limits, timeouts, upstreams, routes, rate_limits,
            access_log, privacy, shared, tcp;
        r_.read_map(root, "config",
                    {{"workers",
                      [&](const YAML::Node& n) {
                          if (auto v = r_.unsigned_int(n, "workers", 0, 1024))
                              cfg_.workers = static_cast<uint32_t>(*v);
                      }},
                     {"graceful_shutdown",
                      [&](const YAML::Node& n) {
                          if (auto v = r_.duration(n, "graceful_shutdown")) cfg_.graceful_shutdown = *v;
                      }},
                     {"listeners", [&](const YAML::Node& n) { listeners.emplace(n); }, true},
                     {"admin", [&](const YAML::Node& n) { admin.emplace(n); }},
                     {"trusted_proxies", [&](const YAML::Node& n) { trusted.emplace(n); }},
                     {"limits", [&](const YAML::Node& n) { limits.emplace(n); }},
                     {"timeouts", [&](const YAML::Node& n) { timeouts.emplace(n); }},
                     {"upstreams", [&](const YAML::Node& n) { upstreams.emplace(n); }, true},
                     {"routes", [&](const YAML::Node& n) { routes.emplace(n); }, true},
                     {"rate_limits", [&](const YAML::Node& n) { rate_limits.emplace(n); }},
                     {"shared_limits", [&](const YAML::Node& n) { shared.emplace(n); }},
                     {"access_log", [&](const YAML::Node& n) { access_log.emplace(n); }},
                     {"privacy", [&](const YAML::Node& n) { privacy.emplace(n); }},
                     {"tcp", [&](const YAML::Node& n) { tcp.emplace(n); }}});
        if (limits) read_limits(*limits);
        if (timeouts) read_timeouts(*timeouts, "timeouts", cfg_.timeouts);
        if (trusted) r_.cidr_list(*trusted, "trusted_proxies", cfg_.trusted_proxies);
        if (upstreams) read_upstreams(*upstreams);
        if (rate_limits) read_rate_limits(*rate_limits);
        if (shared) read_shared_limits(*shared);
        if (privacy) read_privacy(*privacy);
        if (access_log) read_access_log(*access_log);
        if (admin) read_admin(*admin);
        if (listeners) read_listeners(*listeners);
        if (routes) read_routes(*routes);
        if (tcp)
            cfg_.tcp = std::make_shared<const TcpConfig>(read_tcp_section(
                r_, *tcp, cfg_, [this](const YAML::Node& v, const std::string& what, TlsConfig& tls) {
                    read_checked_tls(v, what, tls);
                }));
    }

    void read_limits(const YAML::Node& n) {
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

    void read_timeouts(const YAML::Node& n, const std::string& what, Timeouts& t) {
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

    void read_upstreams(const YAML::Node& n) {
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
                                        tls.ca_file = resolve_path(dir_, *file);
                                        const std::string why = unreadable_reason(tls.ca_file);
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

    void read_rate_limits(const YAML::Node& n) {
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

    void read_shared_limits(const YAML::Node& n) {
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

    void read_privacy(const YAML::Node& n) {
        r_.read_map(n, "privacy",
                    {{"rules",
                      [&](const YAML::Node& v) {
                          auto file = r_.string(v, "privacy.rules");
                          if (!file) return;
                          cfg_.privacy_rules_file = resolve_path(dir_, *file);
                          privacy_rules_node_.reset(v);
                      },
                      true}});
    }

    void read_access_log(const YAML::Node& n) {
        AccessLogConfig& a = cfg_.access_log;
        r_.read_map(n, "access_log",
                    {{"output",
                      [&](const YAML::Node& v) {
                          auto s = r_.string(v, "access_log.output");
                          if (!s) return;
                          if (s->empty()) {
                              r_.error(v, "access_log.output: expected stdout, off or a file path");
                          } else if (*s == "off") {
                              a.enabled = false;
                              a.output = "off";
                          } else if (*s == "stdout") {
                              a.output = "stdout";
                          } else {
                              a.output = resolve_path(dir_, *s);
                          }
                      }},
                     {"include_query", [&](const YAML::Node& v) {
                          if (auto b = r_.boolean(v, "access_log.include_query")) a.include_query = *b;
                      }}});
    }

    void read_admin(const YAML::Node& n) {
        r_.read_map(
            n, "admin",
            {{"address",
              [&](const YAML::Node& v) {
                  if (auto a = r_.address(v, "admin.address")) cfg_.admin.address = *a;
              }},
             {"allow", [&](const YAML::Node& v) { r_.cidr_list(v, "admin.allow", cfg_.admin.allow); }}});
    }

    // For TCP listeners' `tls:`, checked like an HTTP listener's (below).
    void read_checked_tls(const YAML::Node& v, const std::string& what, TlsConfig& tls) {
        const size_t errors_before = r_.errors().size();
        read_tls(v, what, tls);
        if (r_.errors().size() == errors_before) {
            for (const auto& e : validate_tls_config(tls)) r_.error(v, what + ": " + e);
        }
    }

    void read_tls(const YAML::Node& n, const std::string& what, TlsConfig& tls) {
        auto readable_file = [&](const YAML::Node& v, const std::string& field, std::string& out) {
            auto s = r_.string(v, field);
            if (!s) return;
            out = resolve_path(dir_, *s);
            const std::string why = unreadable_reason(out);
            if (!why.empty()) r_.error(v, field + ": file '" + out + "' " + why);
        };
        r_.read_map(
            n, what,
            {{"certificates",
              [&](const YAML::Node& v) {
                  r_.read_list(v, what + ".certificates", [&](const YAML::Node& item) {
                      TlsCertConfig c;
                      r_.read_map(
                          item, what + " certificate",
                          {{"cert",
                            [&](const YAML::Node& f) { readable_file(f, what + " cert", c.cert_file); },
                            true},
                           {"key", [&](const YAML::Node& f) { readable_file(f, what + " key", c.key_file); },
                            true}});
                      tls.certificates.push_back(std::move(c));
                  });
                  if (tls.certificates.empty()) r_.error(v, what + ".certificates: needs at least one");
              },
              true},
             {"min_version",
              [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + ".min_version");
                  if (!s) return;
                  if (*s != "1.2" && *s != "1.3") {
                      r_.error(v, what + ".min_version: expected \"1.2\" or \"1.3\", got '" + *s + "'");
                  } else {
                      tls.min_version = *s;
                  }
              }},
             {"client_ca",
              [&](const YAML::Node& v) { readable_file(v, what + ".client_ca", tls.client_ca_file); }}});
    }

    void read_listeners(const YAML::Node& n) {
        std::map<std::string, YAML::Node> names;
        std::map<std::string, YAML::Node> addresses;
        r_.read_list(n, "listeners", [&](const YAML::Node& item) {
            ListenerConfig l;
            l.name = "listener-" + std::to_string(cfg_.listeners.size() + 1);
            std::string what = "listener " + std::to_string(cfg_.listeners.size() + 1);
            YAML::Node name_node = item;
            std::optional<YAML::Node> address_node;
            if (item.IsMap() && item["name"] && item["name"].IsScalar()) {
                what = "listener '" + item["name"].Scalar() + "'";
            }
            r_.read_map(
                item, what,
                {{"name",
                  [&](const YAML::Node& v) {
                      name_node.reset(v);
                      if (auto s = r_.string(v, what + " name")) l.name = *s;
                  }},
                 {"address",
                  [&](const YAML::Node& v) {
                      address_node.emplace(v);
                      if (auto a = r_.address(v, what + " address")) l.address = *a;
                  },
                  true},
                 {"allow", [&](const YAML::Node& v) { r_.cidr_list(v, what + " allow", l.allow); }},
                 {"deny", [&](const YAML::Node& v) { r_.cidr_list(v, what + " deny", l.deny); }},
                 {"tls",
                  [&](const YAML::Node& v) {
                      l.tls.emplace();
                      const size_t errors_before = r_.errors().size();
                      read_tls(v, what + " tls", *l.tls);
                      // Only when the files were readable: then check loads them as serve would, so a key
                      // that does not match its certificate is a check error, not a startup failure.
                      if (r_.errors().size() == errors_before) {
                          for (const auto& e : validate_tls_config(*l.tls)) r_.error(v, what + " tls: " + e);
                      }
                  }},
                 {"redirect_https_to", [&](const YAML::Node& v) {
                      auto s = r_.string(v, what + " redirect_https_to");
                      if (!s) return;
                      if (!valid_redirect_target(*s)) {
                          r_.error(
                              v, what +
                                     " redirect_https_to: expected ':<port>' such as ':443' or a host[:port]"
                                     " such as 'posthog.example.com', got '" +
                                     *s + "'");
                      } else {
                          l.redirect_https_to = *s;
                      }
                  }}});
            if (!names.emplace(l.name, name_node).second) {
                r_.error(name_node, "duplicate listener name '" + l.name + "'");
            }
            if (address_node && l.address.port != 0 &&
                !addresses.emplace(l.address.str(), *address_node).second) {
                r_.error(*address_node, "two listeners on " + l.address.str());
            }
            cfg_.listeners.push_back(std::move(l));
        });
        if ((n.IsSequence() && n.size() == 0) || n.IsNull())
            r_.error(n, "listeners: needs at least one listener");
    }

    void read_routes(const YAML::Node& n) {
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
                      if (auto s = r_.string(v, what + " privacy")) route.privacy_profile = *s;
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

    // Returns the rules file bytes (for the config hash).
    std::string load_privacy() {
        const std::string why = unreadable_reason(cfg_.privacy_rules_file);
        if (!why.empty()) {
            r_.error(privacy_rules_node_, "privacy.rules: file '" + cfg_.privacy_rules_file + "' " + why);
            return "";
        }
        auto bytes = read_file(cfg_.privacy_rules_file);
        if (!bytes) {
            r_.error(privacy_rules_node_, "privacy.rules: cannot read '" + cfg_.privacy_rules_file + "'");
            return "";
        }
        std::vector<privacy::RuleError> rule_errors;
        auto rules = privacy::RuleSet::load_text(*bytes, cfg_.privacy_rules_file, rule_errors);
        for (const privacy::RuleError& e : rule_errors) {
            ConfigError ce{e.file.empty() ? cfg_.privacy_rules_file : e.file, e.line, e.col, e.message};
            (e.warning ? r_.warnings() : r_.errors()).push_back(std::move(ce));
        }
        if (!rules) {
            bool any_error = false;
            for (const auto& e : rule_errors) any_error = any_error || !e.warning;
            if (!any_error)
                r_.error(privacy_rules_node_,
                         "privacy.rules: '" + cfg_.privacy_rules_file + "' did not load");
        }
        cfg_.privacy = rules;
        return *bytes;
    }

    void check_routes() {
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

    void check_references() {
        std::map<std::string, size_t> upstream_index;
        for (size_t i = 0; i < cfg_.upstreams.size(); ++i) upstream_index[cfg_.upstreams[i].name] = i;
        std::vector<bool> used(cfg_.upstreams.size(), false);
        for (size_t i = 0; i < cfg_.routes.size(); ++i) {
            RouteConfig& route = cfg_.routes[i];
            const RouteNodes& nodes = route_nodes_[i];
            if (!route.upstream.empty()) {
                auto it = upstream_index.find(route.upstream);
                if (it == upstream_index.end()) {
                    r_.error(nodes.upstream,
                             "route '" + route.name + "': unknown upstream '" + route.upstream + "'");
                } else {
                    route.upstream_index = it->second;
                    used[it->second] = true;
                }
            }
            if (!route.rate_limit.empty() && rate_limit_names_.count(route.rate_limit) == 0) {
                r_.error(nodes.rate_limit,
                         "route '" + route.name + "': unknown rate limit '" + route.rate_limit + "'");
            }
            if (!route.privacy_profile.empty()) {
                if (cfg_.privacy_rules_file.empty()) {
                    r_.error(nodes.privacy, "route '" + route.name + "': privacy profile '" +
                                                route.privacy_profile + "' needs privacy.rules to be set");
                } else if (cfg_.privacy && !cfg_.privacy->has_profile(route.privacy_profile)) {
                    r_.error(nodes.privacy, "route '" + route.name + "': privacy profile '" +
                                                route.privacy_profile + "' is not defined in " +
                                                cfg_.privacy_rules_file);
                }
            }
        }
        if (cfg_.tcp)
            for (const TcpListenerConfig& l : cfg_.tcp->listeners)
                if (l.upstream_index < used.size() && !l.upstream.empty()) used[l.upstream_index] = true;
        for (size_t i = 0; i < cfg_.upstreams.size(); ++i) {
            if (!used[i]) {
                r_.warning(
                    upstream_nodes_.at(cfg_.upstreams[i].name),
                    "upstream '" + cfg_.upstreams[i].name + "' is not used by any route or tcp listener");
            }
        }
    }

    ConfigLoadResult finish(const std::string& text, const std::string& rules_bytes) {
        ConfigLoadResult result;
        result.errors = std::move(r_.errors());
        result.warnings = std::move(r_.warnings());
        if (result.errors.empty()) {
            cfg_.hash = sha256_hex({text, rules_bytes});
            result.config = std::make_shared<const Config>(std::move(cfg_));
        }
        return result;
    }

    YamlReader r_;
    std::string dir_;
    Config cfg_;
    std::vector<RouteNodes> route_nodes_;
    std::map<std::string, YAML::Node> upstream_nodes_;
    std::set<std::string> rate_limit_names_;
    YAML::Node privacy_rules_node_;
};

}  // namespace

ConfigLoadResult load_config_text(const std::string& text, const std::string& path) {
    try {
        return Loader(path).load(text);
    } catch (const std::exception& e) {
        // yaml-cpp can throw from accessors on malformed trees; the loader promises never to throw.
        ConfigLoadResult result;
        result.errors.push_back(
            ConfigError{path, 0, 0, std::string("internal error while reading: ") + e.what()});
        return result;
    }
}

ConfigLoadResult load_config(const std::string& path) {
    auto text = read_file(path);
    if (!text) {
        ConfigLoadResult result;
        result.errors.push_back(
            ConfigError{path, 0, 0, "cannot read config file: " + unreadable_reason(path)});
        return result;
    }
    return load_config_text(*text, path);
}

}  // namespace edgeguard
