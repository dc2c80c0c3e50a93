// PROXY protocol headers (HAProxy's spec, versions 1 and 2) that a TCP listener sends to its upstream before
// the client's first byte, so the upstream learns the client's address and the address it connected to.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "proxy/tcp/tcp_config.h"

namespace edgeguard {

// Longest header written: "PROXY TCP6 " + two 45-character addresses + two ports + CRLF (v1 caps at 107).
inline constexpr size_t kMaxProxyHeaderBytes = 108;

// Writes the header for a connection from `client` to `local` (edgeguard's own address) into `out`
// (kMaxProxyHeaderBytes) and returns its length; 0 for ProxyProtocol::Off. Two IPv4 (or IPv4-mapped)
// addresses give TCP4, anything else TCP6; a peer that is neither IPv4 nor IPv6 gives v1 "UNKNOWN" or a
// v2 LOCAL header, which tell the upstream to use the connection's own addresses.
size_t write_proxy_header(ProxyProtocol version, const sockaddr* client, const sockaddr* local, uint8_t* out);

}  // namespace edgeguard
