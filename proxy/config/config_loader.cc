// Loads conf/edgeguard.yaml into an immutable Config snapshot. Reading is declarative (each mapping lists its
// keys, so unknown keys are errors) and keeps going after a mistake, so `edgeguard check` shows every problem
// at once. Cross-references (route -> upstream, privacy profile, rate limit) are checked after the whole
// document is read because YAML does not order top-level keys.
#include "proxy/config/config_loader.h"

#include "proxy/config/ingestion_routes.h"
#include "proxy/tcp/tcp_config_reader.h"

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

}  // namespace

namespace config_files {

std::string resolve_path(const std::string& base_dir, const std::string& path) {
    if (path.empty() || path.front() == '/') return path;
    return base_dir + "/" + path;
}

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

}  // namespace config_files

ConfigLoader::ConfigLoader(const std::string& path, const ConfigLoadOptions& options)
    : r_(path), dir_(directory_of(path)), options_(options) {
    cfg_.source_path = path;
}

ConfigLoadResult ConfigLoader::load(const std::string& text) {
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

void ConfigLoader::read_document(const YAML::Node& root) {
    // Gather the top-level nodes first; sections are then read in dependency order.
    // std::optional, not YAML::Node: a default Node counts as defined, and assigning to a bound Node
    // rewrites the node it refers to instead of rebinding.
    std::optional<YAML::Node> listeners, admin, trusted, limits, timeouts, upstreams, routes, rate_limits,
        access_log, privacy, shared, tcp, http2;
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
                 {"http2", [&](const YAML::Node& n) { http2.emplace(n); }},
                 {"upstreams", [&](const YAML::Node& n) { upstreams.emplace(n); }, true},
                 {"routes", [&](const YAML::Node& n) { routes.emplace(n); }, true},
                 {"rate_limits", [&](const YAML::Node& n) { rate_limits.emplace(n); }},
                 {"shared_limits", [&](const YAML::Node& n) { shared.emplace(n); }},
                 {"access_log", [&](const YAML::Node& n) { access_log.emplace(n); }},
                 {"privacy", [&](const YAML::Node& n) { privacy.emplace(n); }},
                 {"tcp", [&](const YAML::Node& n) { tcp.emplace(n); }}});
    if (limits) read_limits(*limits);
    if (timeouts) read_timeouts(*timeouts, "timeouts", cfg_.timeouts);
    if (http2) read_http2(*http2);
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

void ConfigLoader::check_references() {
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
        if (route.privacy_profile.empty() && !route.privacy_none) {
            // No silent gaps: data sent to an ingestion service passes a profile or an explicit opt-out.
            if (const std::string why = ingestion_reason(route); !why.empty()) {
                r_.error(nodes.self, "route '" + route.name + "' goes to PostHog ingestion (" + why +
                                         ") without a privacy profile: name one (privacy: <profile>) or "
                                         "say `privacy: none` with a comment why");
            }
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
            r_.warning(upstream_nodes_.at(cfg_.upstreams[i].name),
                       "upstream '" + cfg_.upstreams[i].name + "' is not used by any route or tcp listener");
        }
    }
}

ConfigLoadResult ConfigLoader::finish(const std::string& text, const std::string& rules_bytes) {
    ConfigLoadResult result;
    result.errors = std::move(r_.errors());
    result.warnings = std::move(r_.warnings());
    if (result.errors.empty()) {
        cfg_.hash = sha256_hex({text, rules_bytes});
        result.config = std::make_shared<const Config>(std::move(cfg_));
    }
    return result;
}


ConfigLoadResult load_config_text(const std::string& text, const std::string& path,
                                  const ConfigLoadOptions& options) {
    try {
        return ConfigLoader(path, options).load(text);
    } catch (const std::exception& e) {
        // yaml-cpp can throw from accessors on malformed trees; the loader promises never to throw.
        ConfigLoadResult result;
        result.errors.push_back(
            ConfigError{path, 0, 0, std::string("internal error while reading: ") + e.what()});
        return result;
    }
}

ConfigLoadResult load_config(const std::string& path, const ConfigLoadOptions& options) {
    auto text = config_files::read_file(path);
    if (!text) {
        ConfigLoadResult result;
        result.errors.push_back(
            ConfigError{path, 0, 0, "cannot read config file: " + config_files::unreadable_reason(path)});
        return result;
    }
    return load_config_text(*text, path, options);
}

}  // namespace edgeguard
