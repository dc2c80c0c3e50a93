// TLS termination for TCP listeners: their server contexts, built from the same `tls:` settings as an HTTP
// listener's when a snapshot is made, with the listener's own ALPN answer instead of "http/1.1".
#pragma once

#include <string>
#include <vector>

namespace edgeguard {

struct Snapshot;

// Fills snapshot.tcp_listener_tls (same index as config->tcp->listeners; null for plain listeners). A
// listener of the same name in `previous` keeps its counters and ticket keys (reload). Returns false with
// every error (prefixed with the listener name) in `errors`.
bool build_tcp_listener_tls(Snapshot& snapshot, const Snapshot* previous, std::vector<std::string>& errors,
                            std::vector<std::string>& warnings);

}  // namespace edgeguard
