#include "proxy/tcp/tcp_tls.h"

#include <openssl/ssl.h>

#include <string_view>

#include "proxy/core/snapshot.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/tls/listener_tls.h"

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
        auto context = build_listener_tls_context(*l.tls, l.name, prev, "tcp listener " + l.name, errors, warnings);
        if (!context) {
            ok = false;
            continue;
        }
        // Fresh contexts, not yet shared with any connection: safe to change their ALPN answer.
        for (const ServerTlsContext::Certificate& c : context->certificates())
            SSL_CTX_set_alpn_select_cb(c.ctx, &select_configured_alpn,
                                       const_cast<std::vector<std::string>*>(&l.alpn));
        snapshot.tcp_listener_tls[i] = std::move(context);
    }
    return ok;
}

}  // namespace edgeguard
