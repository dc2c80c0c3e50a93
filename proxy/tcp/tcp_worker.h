// A worker's TCP listeners and the connections they relay. Each worker binds its own SO_REUSEPORT socket
// per TCP listener, like the HTTP listeners, and judges every accept by the worker's current snapshot: the
// listener's config is found by the address its socket is bound to, so a reload that changes allow/deny or
// the limits applies to the very next connection, and one that removes the listener admits nobody. A reload
// that adds or removes a TCP listener binds or closes its sockets; open connections keep going either way.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "proxy/core/snapshot.h"
#include "proxy/tcp/relay_buffer_pool.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/tcp/tcp_listener_stats.h"
#include "proxy/tcp/tcp_log_line.h"

namespace edgeguard {

class AccessLog;
class TcpRelay;
class Worker;

class TcpWorker {
  public:
    // `drained` is called when the last relay closes (the worker may be waiting for it to stop).
    TcpWorker(Worker& worker, evdns_base* dns, TcpListenerRegistry& registry, std::function<void()> drained);
    ~TcpWorker();  // closes the listeners, then every relay still open
    TcpWorker(const TcpWorker&) = delete;
    TcpWorker& operator=(const TcpWorker&) = delete;

    // Startup: binds every TCP listener of `snapshot`; false with a reason when one cannot be bound.
    bool bind_all(const Snapshot& snapshot, std::string& error);
    // A published snapshot: binds the listeners it adds, closes those it removes. A listener that cannot be
    // bound is reported on stderr and left out (/readyz then says so); the rest goes on.
    void sync(const Snapshot& snapshot);
    // Graceful stop: no new connections; open ones go on until they end or the worker's grace runs out.
    void begin_stop();
    size_t open_connections() const { return relay_count_; }

    // --- for relays, on this worker's thread ---
    event_base* base() const;
    evdns_base* dns() const { return dns_; }
    RelayBufferPool& buffers() { return buffers_; }
    void relay_opened(TcpRelay* relay);
    void relay_closed(TcpRelay* relay);  // unlinks and deletes it
    void log(const TcpLogEntry& entry);

  private:
    struct Listener {
        ~Listener();
        evconnlistener* listener = nullptr;
        HostPort address;
        TcpListenerStats* stats = nullptr;  // of the name it was bound under (counts bound_workers)
        TcpWorker* owner = nullptr;
    };

    bool bind(const TcpListenerConfig& config, std::string& error);
    // The stats of `snapshot`'s TCP listener `index`, resolved once per snapshot generation.
    TcpListenerStats& stats_for(const Snapshot& snapshot, size_t index);
    void refuse(evutil_socket_t fd, const sockaddr* peer, const std::string& listener,
                TcpListenerStats& stats, TcpRefusal reason);
    static void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr* addr, int len, void* arg);

    Worker& worker_;
    evdns_base* dns_;
    TcpListenerRegistry& registry_;
    std::function<void()> drained_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    uint64_t synced_generation_ = 0;
    uint64_t stats_generation_ = 0;
    std::vector<TcpListenerStats*> stats_by_index_;
    RelayBufferPool buffers_;     // declared before the relays' list: they give buffers back when closed
    TcpRelay* relays_ = nullptr;  // intrusive list head
    size_t relay_count_ = 0;
    size_t next_server_ = 0;  // round-robin over an upstream's servers
    bool stopping_ = false;
    std::string log_scratch_;
};

}  // namespace edgeguard
