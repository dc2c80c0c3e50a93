// Configuration of TCP listeners (the `tcp:` section): byte relays to an upstream, judged by the same kind of
// allow/deny lists as HTTP listeners. Part of the immutable Config, swapped whole on reload.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "proxy/config/config.h"

namespace edgeguard {

// A PROXY protocol header sent to the upstream before the client's bytes, so the upstream sees the client's
// address. Off by default: an upstream that does not expect it would read it as garbage.
enum class ProxyProtocol : uint8_t { Off, V1, V2 };

struct TcpTimeouts {
    Millis connect{3'000};  // per upstream server tried
    Millis idle{600'000};   // no byte in either direction for this long: both sides are closed
    Millis lifetime{0};     // 0 = no limit on how long a connection may last
};

struct TcpListenerConfig {
    std::string name;
    HostPort address;
    std::string upstream;       // name in Config::upstreams
    size_t upstream_index = 0;  // resolved at load
    CidrSet allow;              // empty = allow all
    CidrSet deny;
    uint32_t max_connections = 10'000;    // open at once on this listener, all workers together
    uint32_t max_connections_per_ip = 0;  // 0 = unlimited
    TcpTimeouts timeouts;
    ProxyProtocol proxy_protocol = ProxyProtocol::Off;
    uint32_t buffer_bytes =
        64 * 1024;                 // per direction: a side whose peer has this much unsent stops being read
    std::optional<TlsConfig> tls;  // terminate TLS from clients (same keys as an HTTP listener's `tls`)
    // ALPN protocols the TLS listener agrees to, in preference order ("h2" for gRPC clients). Empty = it
    // answers no ALPN, whatever the client offers (the relayed protocol is not edgeguard's to name).
    std::vector<std::string> alpn;
};

struct TcpConfig {
    std::vector<TcpListenerConfig> listeners;
};

}  // namespace edgeguard
