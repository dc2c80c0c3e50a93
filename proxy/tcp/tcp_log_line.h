// The access-log line of one TCP connection: JSON on one line, like the HTTP exchanges' lines, with
// "kind":"tcp" so a reader can tell them apart.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/access/cidr.h"

namespace edgeguard {

struct TcpLogEntry {
    int64_t start_unix_micros = 0;
    IpAddress client;
    uint16_t client_port = 0;
    std::string_view listener;
    std::string_view upstream;  // upstream name; empty when refused before choosing one
    std::string_view server;    // "host:port" of the server connected to; empty when none was reached
    uint64_t bytes_in = 0;      // from the client, relayed to the upstream
    uint64_t bytes_out = 0;     // from the upstream, relayed to the client
    uint64_t duration_micros = 0;
    std::string_view end;  // how it ended: "closed", "client_reset", "idle_timeout", "refused_allowlist", ...
};

void append_tcp_log_line(std::string& out, const TcpLogEntry& e);

}  // namespace edgeguard
