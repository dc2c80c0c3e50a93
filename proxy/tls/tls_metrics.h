// Per-listener TLS counters (TlsListenerRuntime::counters) as Prometheus families: handshakes by protocol
// version, resumed sessions, and failed handshakes by reason class. Labels are the listener's configured name
// and closed enums only, never a peer address or a server name a client sent.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace edgeguard {

class ServerTlsContext;

// Appends the families for every TLS listener in `listeners` (null entries are plain listeners). The families
// are written even with no TLS listener, so dashboards find them (empty) on any edgeguard.
void append_tls_listener_metrics(std::string& out,
                                 const std::vector<std::shared_ptr<const ServerTlsContext>>& listeners);

}  // namespace edgeguard
