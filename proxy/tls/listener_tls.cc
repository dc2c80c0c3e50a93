#include "proxy/tls/listener_tls.h"

namespace edgeguard {

std::shared_ptr<const ServerTlsContext> build_listener_tls_context(const TlsConfig& config, const std::string& name,
                                                                   const ServerTlsContext* previous,
                                                                   std::string_view what,
                                                                   std::vector<std::string>& errors,
                                                                   std::vector<std::string>& warnings) {
    ServerTlsBuildResult built;
    if (previous != nullptr) {
        built = rebuild_server_tls_context(config, *previous);
    } else {
        ServerTlsOptions options;
        options.listener_name = name;
        built = build_server_tls_context(config, options);
    }
    const std::string prefix = std::string(what) + ": ";
    for (const std::string& w : built.warnings) warnings.push_back(prefix + w);
    for (const std::string& w : built.expired) warnings.push_back(prefix + w);
    for (const std::string& e : built.errors) errors.push_back(prefix + e);
    return std::move(built.context);
}

}  // namespace edgeguard
