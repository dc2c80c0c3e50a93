#include "proxy/tls/tls_bufferevent.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_upstream.h"

namespace edgeguard {
namespace {

bufferevent* wrap_ssl(event_base* base, evutil_socket_t fd, SSL* ssl, bufferevent_ssl_state state,
                      int options) {
    if (ssl == nullptr) return nullptr;
    bufferevent* bev = bufferevent_openssl_socket_new(base, fd, ssl, state, options | BEV_OPT_CLOSE_ON_FREE);
    if (bev == nullptr) {
        SSL_free(ssl);  // libevent 2.1 leaves the SSL to us when construction fails
        return nullptr;
    }
    // Many clients (and curl on keep-alive close) drop the TCP connection without close_notify; HTTP framing
    // tells us whether a message was complete, so an unclean TLS close is just EOF.
    bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

}  // namespace

bufferevent* new_client_bufferevent(event_base* base, evutil_socket_t fd, const ServerTlsContext* tls,
                                    int options) {
    if (tls == nullptr) return bufferevent_socket_new(base, fd, options | BEV_OPT_CLOSE_ON_FREE);
    return wrap_ssl(base, fd, tls->new_ssl(), BUFFEREVENT_SSL_ACCEPTING, options);
}

bufferevent* new_upstream_bufferevent(event_base* base, evutil_socket_t fd, const UpstreamTlsContext* tls,
                                      std::string_view host, int options) {
    if (tls == nullptr) return bufferevent_socket_new(base, fd, options | BEV_OPT_CLOSE_ON_FREE);
    return wrap_ssl(base, fd, tls->new_ssl(host), BUFFEREVENT_SSL_CONNECTING, options);
}

bool is_tls_bufferevent(bufferevent* bev) {
    return bufferevent_openssl_get_ssl(bev) != nullptr;
}

void shutdown_write(bufferevent* bev) {
    if (SSL* ssl = bufferevent_openssl_get_ssl(bev); ssl != nullptr && SSL_is_init_finished(ssl)) {
        // Best effort: the alert is 24 bytes into an emptied socket buffer. If it cannot be written now the
        // peer sees a truncated close, as it would without it.
        SSL_shutdown(ssl);
        ERR_clear_error();
    }
    ::shutdown(bufferevent_getfd(bev), SHUT_WR);
}

bool tls_handshake_incomplete(bufferevent* bev) {
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    return ssl != nullptr && !SSL_is_init_finished(ssl);
}

}  // namespace edgeguard
