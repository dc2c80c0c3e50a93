#include "proxy/ops/check.h"

#include <iostream>

#include "filters/filter_api.h"
#include "proxy/config/config.h"

namespace edgeguard {

int run_check(const std::string& config_path, std::ostream& out, std::ostream& err) {
    ConfigLoadOptions options;
    options.create_missing_hash_key = false;  // check changes nothing on the machine
    const ConfigLoadResult result = load_config(config_path, options);
    for (const ConfigError& e : result.errors) err << e.str() << "\n";
    for (ConfigError w : result.warnings) {
        w.message = "warning: " + w.message;
        err << w.str() << "\n";
    }
    if (!result.config) {
        err << "edgeguard: " << config_path << ": " << result.errors.size()
            << (result.errors.size() == 1 ? " error" : " errors") << "\n";
        return 1;
    }
    const Config& c = *result.config;
    out << "edgeguard: " << config_path << " OK: " << c.listeners.size()
        << (c.listeners.size() == 1 ? " listener, " : " listeners, ") << c.upstreams.size()
        << (c.upstreams.size() == 1 ? " upstream, " : " upstreams, ") << c.routes.size()
        << (c.routes.size() == 1 ? " route" : " routes");
    if (c.privacy) {
        const size_t profiles = c.privacy->profile_names().size();
        out << ", privacy rules " << c.privacy_rules_file << " (" << profiles
            << (profiles == 1 ? " profile)" : " profiles)");
    } else {
        out << ", no privacy rules";
    }
    if (!result.warnings.empty()) {
        out << ", " << result.warnings.size() << (result.warnings.size() == 1 ? " warning" : " warnings");
    }
    out << "\n";
    return 0;
}

int run_check(const std::string& config_path) {
    return run_check(config_path, std::cout, std::cerr);
}

}  // namespace edgeguard
