// The TLS contexts of one config snapshot: a server context per listener with `tls`, a client context per
// upstream with `tls`. Built off the workers when a snapshot is made; workers only look contexts up.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proxy/config.h"
#include "proxy/tls_context.h"
#include "proxy/tls_upstream.h"

namespace edgeguard {

class TlsContextSet {
public:
    // Null for a plain listener (or a name this snapshot does not have).
    const ServerTlsContext* for_listener(std::string_view listener_name) const;
    // Null for a plain upstream. `upstream_index` indexes Config::upstreams. Null for an upstream whose
    // config has `tls` means its context failed to build: fail those requests (502), never fall back to plain.
    const UpstreamTlsContext* for_upstream(size_t upstream_index) const;
    // Counter summed over this snapshot's listeners (monotonic across reloads: runtimes are carried over).
    uint64_t total(std::atomic<uint64_t> TlsCounters::*counter) const;
    bool empty() const { return listeners_.empty() && upstreams_.empty(); }

private:
    friend struct TlsContextSetBuilder;
    std::vector<std::pair<std::string, std::shared_ptr<const ServerTlsContext>>> listeners_;
    std::vector<std::shared_ptr<const UpstreamTlsContext>> upstreams_;  // by upstream index, null = plain
};

struct TlsContextSetResult {
    std::shared_ptr<const TlsContextSet> set;  // never null; on a listener error see below
    std::vector<std::string> errors;
    std::vector<std::string> warnings;
};

// Builds every context `config` needs. With `previous` (the snapshot being replaced), a listener with the
// same name keeps its counters and ticket keys, and a listener whose files no longer load keeps previous's
// context, so a botched certificate swap never takes HTTPS down; the failure is reported in `errors`.
// A TLS listener with no usable context at all is left out (connections to it are then refused by the
// caller), also reported. The config loader runs the same checks first (validate_tls_config), so errors
// here mean the files changed between validation and use.
TlsContextSetResult build_tls_context_set(const Config& config, const TlsContextSet* previous);

}  // namespace edgeguard
