// The notAfter of every certificate a TLS listener serves, as the gauge
// edgeguard_tls_certificate_expiry_timestamp_seconds{listener,certificate} (certificate = the file as
// configured), so an alert can fire days before a renewal that did not happen turns into refused handshakes.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace edgeguard {

class ServerTlsContext;

// Appends the family for every TLS listener in `listeners` (null entries are plain listeners); the family
// header is written even with none.
void append_certificate_expiry_metrics(std::string& out,
                                       const std::vector<std::shared_ptr<const ServerTlsContext>>& listeners);

}  // namespace edgeguard
