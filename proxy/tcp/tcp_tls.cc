#include "proxy/tcp/tcp_tls.h"

#include <openssl/ssl.h>

#include <string_view>

#include "proxy/core/snapshot.h"
#include "proxy/tcp/tcp_config.h"

namespace edgeguard {

namespace {

// `arg` is the listener's alpn list, in the config the connection's snapshot keeps alive: every handshake
// on these contexts belongs to a relay that holds that snapshot.
int select_configured_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                           unsigned int inlen, void* arg) {
    const auto& wanted = *static_cast<const std::vector<std::string>*>(arg);
    if (wanted.empty()) return SSL_TLSEXT_ERR_NOACK;
    for (const std::string& protocol : wanted) {
        for (unsigned int i = 0; i < inlen;) {
            const unsigned int len = in[i];
            if (i + 1 + len > inlen) break;
            if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == protocol) {
                *out = in + i + 1;
                *outlen = static_cast<unsigned char>(len);
                return SSL_TLSEXT_ERR_OK;
            }
            i += 1 + len;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301 §3.2: none of the client's protocols is spoken here
}

}  // namespace

bool build_tcp_listener_tls(Snapshot& snapshot, const Snapshot* previous, std::vector<std::string>& errors,
                            std::vector<std::string>& warnings) {
    snapshot.tcp_listener_tls.clear();
    if (!snapshot.config->tcp) return true;
    const auto& listeners = snapshot.config->tcp->listeners;
    snapshot.tcp_listener_tls.assign(listeners.size(), nullptr);
    bool ok = true;
    for (size_t i = 0; i < listeners.size(); ++i) {
        const TcpListenerConfig& l = listeners[i];
        if (!l.tls) continue;
        const ServerTlsContext* prev = nullptr;
        if (previous != nullptr && previous->config->tcp) {
            const auto& old = previous->config->tcp->listeners;
            for (size_t j = 0; j < old.size() && j < previous->tcp_listener_tls.size(); ++j)
                if (old[j].name == l.name && previous->tcp_listener_tls[j])
                    prev = previous->tcp_listener_tls[j].get();
        }
        ServerTlsBuildResult built;
        if (prev != nullptr) {
            built = rebuild_server_tls_context(*l.tls, *prev);
        } else {
            ServerTlsOptions options;
            options.listener_name = l.name;
            built = build_server_tls_context(*l.tls, options);
        }
        for (const std::string& w : built.warnings) warnings.push_back("tcp listener " + l.name + ": " + w);
        for (const std::string& e : built.errors) errors.push_back("tcp listener " + l.name + ": " + e);
        if (!built.context) {
            ok = false;
            continue;
        }
        // Fresh contexts, not yet shared with any connection: safe to change their ALPN answer.
        for (const ServerTlsContext::Certificate& c : built.context->certificates())
            SSL_CTX_set_alpn_select_cb(c.ctx, &select_configured_alpn,
                                       const_cast<std::vector<std::string>*>(&l.alpn));
        snapshot.tcp_listener_tls[i] = std::move(built.context);
    }
    return ok;
}

}  // namespace edgeguard
