// The one place that decides how a socket becomes a bufferevent: plain, server-side TLS (accepted client
// connections on a TLS listener) or client-side TLS (connections to a TLS upstream). Callers set callbacks
// and enable events exactly as for a plain socket bufferevent; the TLS handshake runs inside libevent and
// application data only starts flowing once it has completed.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>

#include <string_view>

namespace edgeguard {

class ServerTlsContext;
class UpstreamTlsContext;

// For an accepted client socket. `tls` null = plain. BEV_OPT_CLOSE_ON_FREE is always added: freeing the
// bufferevent closes the socket (and frees the SSL). Returns null on failure; the socket is then still
// open and the caller closes it. A TLS handshake failure (including plain HTTP sent to the TLS port, which
// gets a short 400 first) reaches the event callback as BEV_EVENT_ERROR before any data: free it there.
bufferevent* new_client_bufferevent(event_base* base, evutil_socket_t fd, const ServerTlsContext* tls,
                                    int options = 0);

// For a connection to an upstream server: `fd` may be -1 (then bufferevent_socket_connect the result).
// `tls` null = plain; otherwise the handshake starts on connect and verifies `host` (or the configured
// server_name). Returns null on failure (an fd >= 0 is then still the caller's).
bufferevent* new_upstream_bufferevent(event_base* base, evutil_socket_t fd, const UpstreamTlsContext* tls,
                                      std::string_view host, int options = 0);

// True when `bev` is a TLS bufferevent (for X-Forwarded-Proto and the access log).
bool is_tls_bufferevent(bufferevent* bev);
// Half-closes a connection whose output has been flushed (lingering close): on TLS a close_notify alert goes
// out first, so the client can tell a complete response from a truncated one ("unexpected eof" otherwise),
// then the TCP write side is shut. Reading continues so unread request bytes can still be drained.
void shutdown_write(bufferevent* bev);

// True when `bev` is TLS and its handshake has not completed: an error event now is a handshake failure
// (for the edgeguard_tls_handshake_failures_total metric shard), not a dropped HTTP connection.
bool tls_handshake_incomplete(bufferevent* bev);

}  // namespace edgeguard
