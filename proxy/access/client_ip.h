// The real client address behind trusted proxies, Caddy's `trusted_proxies_strict` way: only a trusted peer's
// X-Forwarded-For is read, right to left, and the first hop that is not a trusted proxy is the client.
#pragma once

#include <string_view>

#include "proxy/access/cidr.h"

namespace edgeguard {

struct ClientIp {
    IpAddress ip;
    bool from_forwarded = false;  // true when taken from X-Forwarded-For rather than the TCP peer
};

// `x_forwarded_for` is every X-Forwarded-For field line of the request joined with ',' in arrival order (an
// empty view when there is none). Untrusted peers' headers are never read, so a spoofed X-Forwarded-For from
// an ordinary client changes nothing. Entries may carry a port ("1.2.3.4:5678", "[2001:db8::1]:443").
// When the walk meets an entry it cannot parse, the hop that handed it to us is the client: it is the last
// address a trusted proxy vouched for. When every entry is trusted, the left-most one is the client.
ClientIp resolve_client_ip(const IpAddress& peer, std::string_view x_forwarded_for,
                           const CidrSet& trusted_proxies);

}  // namespace edgeguard
