// The config file reader behind load_config (config.h), private to proxy/config/: one ConfigLoader per load,
// its member functions one per section of the file, each section in its own *_reader.cc.
#pragma once

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "filters/filter_api.h"
#include "proxy/config/config.h"
#include "proxy/config/config_values.h"
#include "proxy/pipeline/router.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_upstream.h"
#include "proxy/config/yaml_reader.h"

namespace edgeguard {

namespace config_files {
// A path relative to the config file's directory; absolute paths are kept.
std::string resolve_path(const std::string& base_dir, const std::string& path);
// Empty string when `path` is a readable regular file, else why not.
std::string unreadable_reason(const std::string& path);
std::optional<std::string> read_file(const std::string& path);
}  // namespace config_files

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

class ConfigLoader {
  public:
    ConfigLoader(const std::string& path, const ConfigLoadOptions& options);

    ConfigLoadResult load(const std::string& text);

  private:
    void read_document(const YAML::Node& root);
    void read_limits(const YAML::Node& n);
    void read_timeouts(const YAML::Node& n, const std::string& what, Timeouts& t);
    void read_http2(const YAML::Node& n);
    void read_upstreams(const YAML::Node& n);
    void read_rate_limits(const YAML::Node& n);
    void read_shared_limits(const YAML::Node& n);
    void read_privacy(const YAML::Node& n);
    void read_access_log(const YAML::Node& n);
    void read_admin(const YAML::Node& n);
    void read_tls(const YAML::Node& n, const std::string& what, TlsConfig& tls);
    void read_checked_tls(const YAML::Node& v, const std::string& what, TlsConfig& tls);
    void read_listeners(const YAML::Node& n);
    void read_routes(const YAML::Node& n);
    void read_response_headers(const YAML::Node& n, const std::string& what,
                               std::vector<ResponseHeaderConfig>& out);
    // Returns the rules file bytes (for the config hash).
    std::string load_privacy();
    void check_routes();
    void check_references();
    ConfigLoadResult finish(const std::string& text, const std::string& rules_bytes);

    YamlReader r_;
    std::string dir_;
    ConfigLoadOptions options_;
    Config cfg_;
    std::vector<RouteNodes> route_nodes_;
    std::map<std::string, YAML::Node> upstream_nodes_;
    std::set<std::string> rate_limit_names_;
    YAML::Node privacy_rules_node_;
};

}  // namespace edgeguard
