// One listener's server TLS context for a new snapshot, HTTP and TCP listeners alike.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/tls/tls_context.h"

namespace edgeguard {

// Builds from `config`'s files; with `previous` (the same listener, by name, in the running snapshot) its ticket
// keys and counters carry over. Every message goes to `errors`/`warnings` prefixed with `what` ("listener
// NAME"); expired certificates are warnings (serve still starts). Null when the context could not be built.
std::shared_ptr<const ServerTlsContext> build_listener_tls_context(const TlsConfig& config, const std::string& name,
                                                                   const ServerTlsContext* previous,
                                                                   std::string_view what,
                                                                   std::vector<std::string>& errors,
                                                                   std::vector<std::string>& warnings);

}  // namespace edgeguard
