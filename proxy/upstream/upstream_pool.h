// Per-worker keep-alive pool for one named upstream: round-robin over its servers, addresses resolved
// asynchronously with evdns (re-resolved every dns_refresh and after a connect failure, because Docker
// service IPs change when a container restarts), idle connections closed before the upstream's own
// keep-alive timeout. Used by one worker thread only, so nothing here is locked.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/ops/metrics.h"
#include "proxy/upstream/upstream_connection.h"

namespace edgeguard {

// Someone waiting for an upstream's addresses (the first requests after start-up or after a failure).
class UpstreamWaiter {
public:
    virtual void upstream_addresses_ready() = 0;

protected:
    ~UpstreamWaiter() = default;
};

class UpstreamPool final : public UpstreamOwner {
public:
    UpstreamPool(event_base* base, evdns_base* dns, const UpstreamConfig& config, uint32_t buffer_limit);
    ~UpstreamPool();
    UpstreamPool(const UpstreamPool&) = delete;
    UpstreamPool& operator=(const UpstreamPool&) = delete;

    // A reload changed this upstream's settings or servers: idle connections to removed servers close.
    void update(const UpstreamConfig& config);
    const UpstreamConfig& config() const { return config_; }
    // Where the pool's idle/active gauges go (this worker's shard, the upstream's label); null = nowhere.
    // Client-side TLS toward this upstream's servers (from the current snapshot); null = plain.
    void set_tls(std::shared_ptr<const UpstreamTlsContext> tls) { tls_ = std::move(tls); }
    void set_metrics(MetricsShard* shard, uint32_t label) {
        shard_ = shard;
        label_ = label;
    }

    enum class Acquire { Ready, Pending, Unavailable };
    // Ready: `conn` is an idle pooled connection (reused()) or a new one still connecting (!connected()),
    // owned by `owner` from now on. Pending: no address known yet; `waiter` is called once there is news.
    // Unavailable: every server failed to resolve.
    Acquire acquire(UpstreamOwner* owner, UpstreamWaiter* waiter, bool fresh_only, UpstreamConnection*& conn);
    void cancel_wait(UpstreamWaiter* waiter);
    // Returns a healthy connection whose last response was complete and fully read.
    void release(UpstreamConnection* conn);
    // Closes a connection that must not be reused.
    void discard(UpstreamConnection* conn);
    // A connect was refused or timed out: close it and re-resolve that server's name.
    void connect_failed(UpstreamConnection* conn);
    void close_idle();
    size_t server_count() const { return servers_.size(); }
    // "host:port" as configured, for logs that name the server a failure came from.
    std::string_view server_text(size_t index) const {
        return index < servers_.size() ? std::string_view(servers_[index].text) : std::string_view();
    }
    size_t idle_count() const { return idle_.size(); }

private:
    struct Server {
        HostPort address;
        std::string text;               // address.str(), made once
        bool literal = false;           // an IP literal never needs DNS
        std::vector<sockaddr_storage> addrs;
        std::vector<socklen_t> addr_lens;
        size_t next_addr = 0;
        evdns_getaddrinfo_request* pending = nullptr;
        bool resolving = false;
        bool failed = false;            // last resolution failed
    };
    struct ResolveRequest {
        UpstreamPool* pool;
        size_t server;
    };

    void upstream_connected(UpstreamConnection& conn) override;
    void upstream_readable(UpstreamConnection& conn) override;
    void upstream_writable(UpstreamConnection& conn) override;
    void upstream_closed(UpstreamConnection& conn, short events) override;
    void upstream_timer_fired(UpstreamConnection& conn) override;

    void set_servers();
    void resolve(size_t server);
    void resolve_all();
    void notify_waiters();
    void drop_idle(UpstreamConnection* conn);
    static void on_resolved(int result, evutil_addrinfo* res, void* arg);
    static void on_refresh(evutil_socket_t, short, void* arg);

    event_base* base_;
    evdns_base* dns_;
    UpstreamConfig config_;
    uint32_t buffer_limit_;
    std::vector<Server> servers_;
    size_t next_server_ = 0;
    std::vector<UpstreamConnection*> idle_;
    std::vector<UpstreamWaiter*> waiters_;
    event* refresh_timer_ = nullptr;
    std::shared_ptr<const UpstreamTlsContext> tls_;
    MetricsShard* shard_ = nullptr;
    uint32_t label_ = kOtherLabel;
    void gauge_idle(int64_t d) {
        if (shard_ != nullptr) shard_->pool_idle_delta(label_, d);
    }
    void gauge_active(int64_t d) {
        if (shard_ != nullptr) shard_->pool_active_delta(label_, d);
    }
};

}  // namespace edgeguard
