// One worker: one thread, one event_base, its own SO_REUSEPORT listening sockets (the kernel spreads new
// connections over the workers), its own upstream pools and DNS resolver. A connection lives on one worker
// for its whole life, so nothing on the request path is shared or locked. Other threads talk to a worker
// only through wake() (an eventfd), after setting the atomic flags it reads.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "filters/learn/observation_store.h"
#include "proxy/ops/access_log.h"
#include "proxy/access/connection_limits.h"
#include "proxy/ops/metrics.h"
#include "proxy/ops/refusal_log.h"
#include "proxy/access/redis_limiter.h"
#include "proxy/core/downstream_connection.h"
#include "proxy/core/snapshot.h"
#include "proxy/upstream/upstream_pool.h"

namespace edgeguard {

class TcpListenerRegistry;
class TcpWorker;

class Worker {
public:
    // `metrics` and `access_log` may be null (tests); they outlive the worker.
    // `total_connections` is shared by every worker of the process (Limits::max_connections is per process).
    Worker(size_t id, SnapshotHolder& snapshots, Metrics* metrics, AccessLog* access_log,
           std::atomic<uint32_t>* total_connections = nullptr);
    ~Worker();
    Worker(const Worker&) = delete;
    Worker& operator=(const Worker&) = delete;

    // Creates the event loop and binds this worker's listeners. On failure returns false with a reason.
    bool init(std::string& error);
    void start();  // runs the loop on a new thread
    // Process-wide state; call before init(). Both may be null (tests): no per-IP connection limit,
    // and no shared (Redis) rate limits.
    void set_limits(ConnectionLimits* connection_limits, std::shared_ptr<RedisLimiterCounters> redis_counters);
    // This worker's shard of the server's observation store (profiles with `learn: true`); null: none.
    void set_observations(privacy::learn::ObservationShard* shard) { observations_ = shard; }
    privacy::learn::ObservationShard* observations() const { return observations_; }
    void join();
    // TCP listeners (proxy/tcp): their process-wide stats. Call before init(); null (tests) = no TCP listeners.
    void set_tcp_registry(TcpListenerRegistry* registry) { tcp_registry_ = registry; }

    // Thread-safe requests from the control thread.
    void request_stop(Millis grace);  // stop accepting, finish in-flight requests, exit by the deadline
    void notify_new_snapshot();

    // --- used by connections on this worker's thread ---
    event_base* base() const { return base_; }
    const std::shared_ptr<const Snapshot>& current_snapshot();
    UpstreamPool* pool_for(const Snapshot& snapshot, const RouteConfig& route);
    void connection_opened(DownstreamConnection* conn);
    void connection_closed(DownstreamConnection* conn);
    // `next` carries on what `prev` accepted (an HTTP/1.1 connection whose client chose HTTP/2): it takes
    // `prev`'s place in the list, and the connection is still counted once.
    void connection_replaced(DownstreamConnection* prev, DownstreamConnection* next);
    size_t id() const { return id_; }
    // The configuration of bound listener `listener_index` in `snapshot`: found by its bound address, since a
    // reload may reorder, change or remove listeners while the socket stays bound until a restart. Null when
    // the listener is no longer configured: its connections are then refused, never judged by the old rules.
    const ListenerConfig* listener_config(const Snapshot& snapshot, size_t listener_index) const;
    Metrics* metrics() const { return metrics_; }
    MetricsShard* metrics_shard() const { return shard_; }
    AccessLog* access_log() const { return access_log_; }
    evdns_base* dns() const { return dns_; }
    ConnectionLimits* connection_limits() const { return connection_limits_; }
    // This worker's client of the shared rate-limit Redis; null when shared_limits.redis_url is empty.
    RedisLimiter* redis_limiter() const { return redis_limiter_.get(); }
    size_t active_connections() const { return connection_count_; }

private:
    struct Listener {
        ~Listener() {
            if (listener != nullptr) evconnlistener_free(listener);
        }
        evconnlistener* listener = nullptr;
        HostPort address;  // what the socket is bound to, for finding its config in later snapshots
        size_t index = 0;  // in listeners_
        Worker* worker = nullptr;
    };

    uint32_t open_connections() const;  // this process's client connections (all workers when shared)
    void run();
    void on_wake();
    void apply_snapshot(const std::shared_ptr<const Snapshot>& snap);
    void begin_stop();
    void maybe_finish_stop();
    static void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);
    static void on_wake_event(evutil_socket_t fd, short what, void* arg);
    static void on_grace_expired(evutil_socket_t fd, short what, void* arg);

    size_t id_;
    SnapshotHolder& snapshots_;
    Metrics* metrics_;
    MetricsShard* shard_;
    privacy::learn::ObservationShard* observations_ = nullptr;
    AccessLog* access_log_;
    std::atomic<uint32_t>* total_connections_;
    std::shared_ptr<const Snapshot> snapshot_;     // this worker's view; refreshed when generation moves
    event_base* base_ = nullptr;
    evdns_base* dns_ = nullptr;
    int wake_fd_ = -1;
    event* wake_event_ = nullptr;
    event* grace_timer_ = nullptr;
    std::vector<std::unique_ptr<Listener>> listeners_;
    // Pools by upstream name, so a reload keeps warm connections of upstreams it did not change.
    std::unordered_map<std::string, std::unique_ptr<UpstreamPool>> pools_by_name_;
    std::vector<UpstreamPool*> pools_by_index_;  // for snapshot_'s upstream indices
    DownstreamConnection* connections_ = nullptr;  // intrusive list head
    size_t connection_count_ = 0;
    std::atomic<bool> stop_requested_{false};
    std::atomic<int64_t> grace_ms_{0};
    bool stopping_ = false;
    ConnectionLimits* connection_limits_ = nullptr;
    std::shared_ptr<RedisLimiterCounters> redis_counters_;
    AcceptRefusalLog refusal_log_;  // this worker's trace of connections closed at accept
    std::unique_ptr<RedisLimiter> redis_limiter_;  // on base_; destroyed after the connections, before base_
    TcpListenerRegistry* tcp_registry_ = nullptr;
    std::unique_ptr<TcpWorker> tcp_;  // this worker's TCP listeners and relays; null without a registry
    std::thread thread_;
};

// False (with "address in use: ...") when another socket already listens on `address`. Called before this
// process binds its own SO_REUSEPORT sockets, so a second edgeguard refuses to start instead of silently
// taking a share of the first one's connections.
bool listen_address_is_free(const HostPort& address, std::string& error);

// Creates a listening socket bound to `address` with SO_REUSEADDR and SO_REUSEPORT (one per worker).
// Returns -1 with a reason in `error`.
int open_listening_socket(const HostPort& address, std::string& error);

}  // namespace edgeguard
