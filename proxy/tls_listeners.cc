#include "proxy/tls_listeners.h"

namespace edgeguard {

const ServerTlsContext* TlsContextSet::for_listener(std::string_view listener_name) const {
    for (const auto& [name, ctx] : listeners_) {
        if (name == listener_name) return ctx.get();
    }
    return nullptr;
}

const UpstreamTlsContext* TlsContextSet::for_upstream(size_t upstream_index) const {
    return upstream_index < upstreams_.size() ? upstreams_[upstream_index].get() : nullptr;
}

uint64_t TlsContextSet::total(std::atomic<uint64_t> TlsCounters::*counter) const {
    uint64_t sum = 0;
    for (const auto& entry : listeners_) sum += (entry.second->runtime()->counters.*counter).load(std::memory_order_relaxed);
    return sum;
}

struct TlsContextSetBuilder {
    static TlsContextSetResult build(const Config& config, const TlsContextSet* previous) {
        auto set = std::make_shared<TlsContextSet>();
        TlsContextSetResult result;
        for (const ListenerConfig& listener : config.listeners) {
            if (!listener.tls) continue;
            const ServerTlsContext* old = previous != nullptr ? previous->for_listener(listener.name) : nullptr;
            ServerTlsBuildResult built;
            if (old != nullptr) {
                built = rebuild_server_tls_context(*listener.tls, *old);
            } else {
                ServerTlsOptions options;
                options.listener_name = listener.name;
                built = build_server_tls_context(*listener.tls, options);
            }
            for (std::string& w : built.warnings) result.warnings.push_back("listener " + listener.name + ": " + w);
            for (std::string& e : built.errors) result.errors.push_back("listener " + listener.name + ": " + e);
            if (built.context) {
                set->listeners_.emplace_back(listener.name, std::move(built.context));
            } else if (old != nullptr) {
                result.errors.push_back("listener " + listener.name + ": keeping the previous certificates");
                for (const auto& entry : previous->listeners_) {
                    if (entry.first == listener.name) set->listeners_.push_back(entry);
                }
            } else {
                result.errors.push_back("listener " + listener.name + ": no usable TLS context");
            }
        }
        set->upstreams_.resize(config.upstreams.size());
        for (size_t i = 0; i < config.upstreams.size(); ++i) {
            const UpstreamConfig& upstream = config.upstreams[i];
            if (!upstream.tls) continue;
            UpstreamTlsBuildResult built = build_upstream_tls_context(*upstream.tls);
            for (std::string& e : built.errors) result.errors.push_back("upstream " + upstream.name + ": " + e);
            set->upstreams_[i] = std::move(built.context);
        }
        result.set = std::move(set);
        return result;
    }
};

TlsContextSetResult build_tls_context_set(const Config& config, const TlsContextSet* previous) {
    return TlsContextSetBuilder::build(config, previous);
}

}  // namespace edgeguard
