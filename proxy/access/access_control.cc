#include "proxy/access/access_control.h"

namespace edgeguard {

bool cidr_lists_allow(const CidrSet& allow, const CidrSet& deny, const IpAddress& ip) {
    if (deny.contains(ip)) return false;
    return allow.empty() || allow.contains(ip);
}

bool decides_at_accept(const Config& config, const ListenerConfig& listener) {
    if (!config.trusted_proxies.empty()) return false;
    for (const RouteConfig& route : config.routes) {
        if (!route.allow.empty()) return false;
    }
    (void)listener;  // every route is reachable from every listener
    return true;
}

bool accept_allows(const ListenerConfig& listener, const IpAddress& peer) {
    return cidr_lists_allow(listener.allow, listener.deny, peer);
}

bool request_allows(const ListenerConfig& listener, const RouteConfig* route, const IpAddress& client) {
    if (listener.deny.contains(client)) return false;
    if (route == nullptr) return listener.allow.empty() || listener.allow.contains(client);
    if (route->deny.contains(client)) return false;
    const CidrSet& allow = route->allow.empty() ? listener.allow : route->allow;
    return allow.empty() || allow.contains(client);
}

}  // namespace edgeguard
