// The runtime snapshot: one immutable Config plus what workers derive from it once (the router), published
// to the workers as a whole. A request keeps the snapshot it started with, so a reload never changes the
// rules under a request in flight.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>

#include "proxy/config/config.h"
#include "proxy/ops/metrics.h"
#include "proxy/access/rate_limiter.h"
#include "proxy/pipeline/router.h"
#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_upstream.h"

namespace edgeguard {

struct Snapshot {
    Snapshot(std::shared_ptr<const Config> cfg, MetricsLabelIds label_ids);
    Snapshot(const Snapshot&) = delete;
    Snapshot& operator=(const Snapshot&) = delete;

    std::shared_ptr<const Config> config;
    Router router;  // points into config->routes, which this snapshot keeps alive
    uint64_t generation = 0;
    MetricsLabelIds labels;  // metric label indices of this config's routes, upstreams and profiles
    // Per listener (same index as config->listeners): the TLS contexts built from the certificate files when
    // this snapshot was made; null for plain listeners. A reload re-reads the files (certificate rotation).
    std::vector<std::shared_ptr<const ServerTlsContext>> listener_tls;
    // Per TCP listener (same index as config->tcp->listeners): its TLS contexts; null for plain ones.
    std::vector<std::shared_ptr<const ServerTlsContext>> tcp_listener_tls;
    // Per upstream (same index as config->upstreams): client-side TLS toward it; null = plain HTTP.
    std::vector<std::shared_ptr<const UpstreamTlsContext>> upstream_tls;
    // Per config->rate_limits entry: its table, owned by the process-wide RateLimiter so reloads keep counts.
    std::vector<std::shared_ptr<RateLimitTable>> rate_tables;
    // Per route (same index as config->routes): index into config->rate_limits, -1 for none.
    std::vector<int> route_rate_limit;

    // The route's rate limit index, or -1.
    int rate_limit_index(const RouteConfig& route) const {
        size_t i = static_cast<size_t>(&route - config->routes.data());
        return i < route_rate_limit.size() ? route_rate_limit[i] : -1;
    }

    uint32_t route_label(const RouteConfig& route) const {
        size_t i = static_cast<size_t>(&route - config->routes.data());
        return i < labels.routes.size() ? labels.routes[i] : kOtherLabel;
    }
    uint32_t upstream_label(size_t upstream_index) const {
        return upstream_index < labels.upstreams.size() ? labels.upstreams[upstream_index] : kOtherLabel;
    }

    // The route's body limit after defaults: 0 = unlimited.
    uint64_t body_limit(const RouteConfig& route) const {
        return route.max_body_bytes != 0 ? route.max_body_bytes : config->limits.max_body_bytes;
    }
};

// Builds the TLS contexts of every TLS listener and TLS upstream, reusing `previous`'s ticket keys and counters when given
// (reload). Returns false with every error in `errors` (each prefixed with the listener name).
bool build_listener_tls(Snapshot& snapshot, const Snapshot* previous, std::vector<std::string>& errors,
                        std::vector<std::string>& warnings);

// Fills rate_tables and route_rate_limit from `limiter` (existing limits keep their counters).
void build_rate_limits(Snapshot& snapshot, RateLimiter& limiter);

// Holds the current snapshot. Publishing happens on the reload thread; workers compare the cheap generation
// number on every new request and only when it moved take the lock to copy the shared_ptr, so the lock is
// touched once per reload per worker, never per request.
// Not std::atomic<std::shared_ptr>: libstdc++ 12's load() drops its internal lock with a relaxed store, so its
// read of the pointer is not ordered before the next publish's write (ThreadSanitizer reports it; on a weakly
// ordered CPU a reader could pair the new pointer with the old reference count).
class SnapshotHolder {
public:
    explicit SnapshotHolder(std::shared_ptr<Snapshot> initial);
    void publish(std::shared_ptr<Snapshot> next);
    std::shared_ptr<const Snapshot> load() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return current_;
    }
    uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const Snapshot> current_;  // guarded by mutex_
    std::atomic<uint64_t> generation_{0};      // moves after current_, so a new number finds its snapshot
};

}  // namespace edgeguard
