// Allow/deny decisions by client address for listeners and routes.
//
// Rules: a deny list always wins; an empty allow list allows everyone. A route's own allow list replaces its
// listener's (so /public/webhooks can be opened to the internet while the rest stays on the LAN); deny lists
// add up. When nothing can change the answer after the request is read (no trusted proxies, no route with its
// own allow list), the listener decides at accept time and the connection is closed before any parsing.
#pragma once

#include "proxy/access/cidr.h"
#include "proxy/config/config.h"

namespace edgeguard {

bool cidr_lists_allow(const CidrSet& allow, const CidrSet& deny, const IpAddress& ip);

// True when `accept_allows` is the whole decision for connections on `listener`, so a refused peer can be
// closed without reading a byte. False when the client IP comes from X-Forwarded-For (trusted proxies) or a
// route may widen the listener's allow list: then only `request_allows` decides.
bool decides_at_accept(const Config& config, const ListenerConfig& listener);

// Accept-time check on the TCP peer; meaningful only when decides_at_accept() is true.
bool accept_allows(const ListenerConfig& listener, const IpAddress& peer);

// Request-time check on the resolved client IP (see client_ip.h). `route` may be null (no route matched).
bool request_allows(const ListenerConfig& listener, const RouteConfig* route, const IpAddress& client);

}  // namespace edgeguard
