// The client side of optional TLS to an upstream: one immutable SSL_CTX per upstream that verifies the
// server's chain against a CA file (or the system store) and its name, and offers ALPN "http/1.1" only.
// Pooled keep-alive connections make handshakes to upstreams rare, so sessions are not cached.
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"

namespace edgeguard {

class UpstreamTlsContext {
public:
    ~UpstreamTlsContext();
    UpstreamTlsContext(const UpstreamTlsContext&) = delete;
    UpstreamTlsContext& operator=(const UpstreamTlsContext&) = delete;

    // A client SSL for a connection to `host` (the configured server's host). SNI and the verified name are
    // the configured server_name, else `host`; an IP literal is verified as an IP SAN and sends no SNI.
    // Null only when OpenSSL cannot allocate.
    SSL* new_ssl(std::string_view host) const;
    bool verifies_peer() const { return verify_; }
    const std::string& server_name() const { return server_name_; }

private:
    friend struct UpstreamTlsBuilder;
    UpstreamTlsContext() = default;

    SSL_CTX* ctx_ = nullptr;
    std::string server_name_;
    bool verify_ = true;
};

struct UpstreamTlsBuildResult {
    std::shared_ptr<const UpstreamTlsContext> context;  // null when errors is non-empty
    std::vector<std::string> errors;
};

UpstreamTlsBuildResult build_upstream_tls_context(const UpstreamTlsConfig& config);

// For the config loader and `edgeguard check`.
std::vector<std::string> validate_upstream_tls_config(const UpstreamTlsConfig& config);

}  // namespace edgeguard
