#include "proxy/core/snapshot.h"

#include <utility>

#include "proxy/tcp/tcp_tls.h"
#include "proxy/tls/listener_tls.h"

namespace edgeguard {

Snapshot::Snapshot(std::shared_ptr<const Config> cfg, MetricsLabelIds label_ids)
    : config(std::move(cfg)), router(config->routes), labels(std::move(label_ids)) {}

SnapshotHolder::SnapshotHolder(std::shared_ptr<Snapshot> initial) {
    initial->generation = 1;
    current_ = std::move(initial);
    generation_.store(1, std::memory_order_release);
}

void SnapshotHolder::publish(std::shared_ptr<Snapshot> next) {
    std::shared_ptr<const Snapshot> previous;  // released outside the lock: it may be the last reference
    uint64_t gen = 0;
    {
        std::lock_guard<std::mutex> lock(mutex_);
        next->generation = generation_.load(std::memory_order_relaxed) + 1;
        gen = next->generation;
        previous = std::exchange(current_, std::move(next));
    }
    generation_.store(gen, std::memory_order_release);
}

void build_rate_limits(Snapshot& snapshot, RateLimiter& limiter) {
    const Config& cfg = *snapshot.config;
    snapshot.rate_tables = limiter.tables_for(cfg);
    snapshot.route_rate_limit.assign(cfg.routes.size(), -1);
    for (size_t r = 0; r < cfg.routes.size(); ++r) {
        if (cfg.routes[r].rate_limit.empty()) continue;
        for (size_t i = 0; i < cfg.rate_limits.size(); ++i)
            if (cfg.rate_limits[i].name == cfg.routes[r].rate_limit) snapshot.route_rate_limit[r] = static_cast<int>(i);
    }
}

bool build_listener_tls(Snapshot& snapshot, const Snapshot* previous, std::vector<std::string>& errors,
                        std::vector<std::string>& warnings) {
    const auto& listeners = snapshot.config->listeners;
    snapshot.listener_tls.assign(listeners.size(), nullptr);
    bool ok = true;
    for (size_t i = 0; i < listeners.size(); ++i) {
        const ListenerConfig& l = listeners[i];
        if (!l.tls) continue;
        // The same listener (by name) in the running snapshot keeps its ticket keys and counters.
        const ServerTlsContext* prev = nullptr;
        if (previous != nullptr) {
            const auto& old = previous->config->listeners;
            for (size_t j = 0; j < old.size() && j < previous->listener_tls.size(); ++j)
                if (old[j].name == l.name && previous->listener_tls[j]) prev = previous->listener_tls[j].get();
        }
        auto context = build_listener_tls_context(*l.tls, l.name, prev, "listener " + l.name, errors, warnings);
        if (!context) {
            ok = false;
            continue;
        }
        snapshot.listener_tls[i] = std::move(context);
    }
    const auto& upstreams = snapshot.config->upstreams;
    snapshot.upstream_tls.assign(upstreams.size(), nullptr);
    for (size_t i = 0; i < upstreams.size(); ++i) {
        if (!upstreams[i].tls) continue;
        UpstreamTlsBuildResult built = build_upstream_tls_context(*upstreams[i].tls);
        for (const std::string& e : built.errors) errors.push_back("upstream " + upstreams[i].name + ": " + e);
        if (!built.context) {
            ok = false;
            continue;
        }
        snapshot.upstream_tls[i] = std::move(built.context);
    }
    if (!build_tcp_listener_tls(snapshot, previous, errors, warnings)) ok = false;
    return ok;
}

}  // namespace edgeguard
