#include "proxy/tcp/tcp_worker.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "proxy/access/access_control.h"
#include "proxy/ops/access_log.h"
#include "proxy/tcp/tcp_relay.h"
#include "proxy/core/worker.h"

namespace edgeguard {

namespace {

const TcpListenerConfig* find_listener(const Snapshot& snapshot, const HostPort& bound, size_t& index) {
    if (!snapshot.config->tcp) return nullptr;
    const auto& listeners = snapshot.config->tcp->listeners;
    for (size_t i = 0; i < listeners.size(); ++i) {
        if (listeners[i].address == bound) {
            index = i;
            return &listeners[i];
        }
    }
    return nullptr;
}

}  // namespace

TcpWorker::Listener::~Listener() {
    if (listener != nullptr) evconnlistener_free(listener);
    if (stats != nullptr) stats->bound_workers.fetch_sub(1, std::memory_order_relaxed);
}

TcpWorker::TcpWorker(Worker& worker, evdns_base* dns, TcpListenerRegistry& registry,
                     std::function<void()> drained)
    : worker_(worker), dns_(dns), registry_(registry), drained_(std::move(drained)) {
    log_scratch_.reserve(512);
}

TcpWorker::~TcpWorker() {
    drained_ = nullptr;  // the worker is being destroyed, not waiting for a graceful stop
    listeners_.clear();
    while (relays_ != nullptr) relays_->close_for_shutdown();
}

event_base* TcpWorker::base() const {
    return worker_.base();
}

bool TcpWorker::bind_all(const Snapshot& snapshot, std::string& error) {
    synced_generation_ = snapshot.generation;
    if (!snapshot.config->tcp) return true;
    for (const TcpListenerConfig& lc : snapshot.config->tcp->listeners)
        if (!bind(lc, error)) return false;
    return true;
}

bool TcpWorker::bind(const TcpListenerConfig& config, std::string& error) {
    const int fd = open_listening_socket(config.address, error);
    if (fd < 0) {
        error = "tcp listener " + config.name + ": " + error;
        return false;
    }
    auto l = std::make_unique<Listener>();
    l->address = config.address;
    l->owner = this;
    l->listener = evconnlistener_new(worker_.base(), &TcpWorker::on_accept, l.get(),
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (l->listener == nullptr) {
        ::close(fd);
        error = "tcp listener " + config.name + ": cannot listen on " + config.address.str();
        return false;
    }
    l->stats = &registry_.get(config.name);
    l->stats->bound_workers.fetch_add(1, std::memory_order_relaxed);
    listeners_.push_back(std::move(l));
    return true;
}

void TcpWorker::sync(const Snapshot& snapshot) {
    if (stopping_ || snapshot.generation == synced_generation_) return;
    synced_generation_ = snapshot.generation;
    // Close the sockets of listeners the snapshot no longer has; keep the others bound (no gap in accepts).
    for (size_t i = 0; i < listeners_.size();) {
        size_t index = 0;
        const TcpListenerConfig* lc = find_listener(snapshot, listeners_[i]->address, index);
        if (lc == nullptr) {
            listeners_.erase(listeners_.begin() + static_cast<std::ptrdiff_t>(i));
            continue;
        }
        TcpListenerStats* stats = &registry_.get(lc->name);
        if (stats != listeners_[i]->stats) {  // renamed: readiness follows the new name
            listeners_[i]->stats->bound_workers.fetch_sub(1, std::memory_order_relaxed);
            stats->bound_workers.fetch_add(1, std::memory_order_relaxed);
            listeners_[i]->stats = stats;
        }
        ++i;
    }
    if (!snapshot.config->tcp) return;
    for (const TcpListenerConfig& lc : snapshot.config->tcp->listeners) {
        bool bound = false;
        for (const auto& l : listeners_) bound = bound || l->address == lc.address;
        if (bound) continue;
        std::string error;
        if (!bind(lc, error)) {
            std::fprintf(stderr, "edgeguard: reload: %s\n", error.c_str());
        } else if (worker_.id() == 0) {
            std::fprintf(stderr, "edgeguard: listening on %s (tcp %s)\n", lc.address.str().c_str(),
                         lc.name.c_str());
        }
    }
}

void TcpWorker::begin_stop() {
    stopping_ = true;
    listeners_.clear();
}

TcpListenerStats& TcpWorker::stats_for(const Snapshot& snapshot, size_t index) {
    if (stats_generation_ != snapshot.generation) {
        stats_by_index_.clear();
        for (const TcpListenerConfig& lc : snapshot.config->tcp->listeners)
            stats_by_index_.push_back(&registry_.get(lc.name));
        stats_generation_ = snapshot.generation;
    }
    return *stats_by_index_[index];
}

void TcpWorker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg) {
    auto* l = static_cast<Listener*>(arg);
    TcpWorker& self = *l->owner;
    // The current snapshot, never the one the socket was bound under.
    std::shared_ptr<const Snapshot> snapshot = self.worker_.current_snapshot();
    size_t index = 0;
    const TcpListenerConfig* lc = find_listener(*snapshot, l->address, index);
    if (lc == nullptr) {
        self.refuse(fd, addr, "", *l->stats, TcpRefusal::Unconfigured);
        return;
    }
    TcpListenerStats& stats = self.stats_for(*snapshot, index);
    const std::optional<IpAddress> ip = IpAddress::from_sockaddr(addr);
    if (!ip || !cidr_lists_allow(lc->allow, lc->deny, *ip)) {
        self.refuse(fd, addr, lc->name, stats, TcpRefusal::Allowlist);
        return;
    }
    ConnectionLimits::Ticket ticket;
    switch (stats.limits.try_admit(*ip, lc->max_connections, lc->max_connections_per_ip, ticket)) {
        case ConnectionLimits::Verdict::TooManyTotal:
            self.refuse(fd, addr, lc->name, stats, TcpRefusal::ConnectionLimit);
            return;
        case ConnectionLimits::Verdict::TooManyFromIp:
            self.refuse(fd, addr, lc->name, stats, TcpRefusal::PerIpLimit);
            return;
        case ConnectionLimits::Verdict::Admitted:
            break;
    }
    const ServerTlsContext* tls = nullptr;
    if (lc->tls) {
        tls = index < snapshot->tcp_listener_tls.size() ? snapshot->tcp_listener_tls[index].get() : nullptr;
        if (tls == nullptr) {  // every snapshot builds it; never serve a TLS listener in clear
            stats.limits.release(ticket);
            ::close(fd);
            return;
        }
    }
    const size_t first_server = self.next_server_++;
    TcpRelay::start(self, std::move(snapshot), *lc, stats, ticket, fd, addr, static_cast<socklen_t>(len),
                    first_server, tls);
}

void TcpWorker::refuse(evutil_socket_t fd, const sockaddr* peer, const std::string& listener,
                       TcpListenerStats& stats, TcpRefusal reason) {
    ::close(fd);
    stats.refuse(reason);
    TcpLogEntry entry;
    entry.start_unix_micros = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count();
    entry.client = IpAddress::from_sockaddr(peer).value_or(IpAddress{});
    if (peer->sa_family == AF_INET)
        entry.client_port = ntohs(reinterpret_cast<const sockaddr_in*>(peer)->sin_port);
    else if (peer->sa_family == AF_INET6)
        entry.client_port = ntohs(reinterpret_cast<const sockaddr_in6*>(peer)->sin6_port);
    entry.listener = listener;
    char end[48];
    std::snprintf(end, sizeof end, "refused_%.*s", static_cast<int>(tcp_refusal_name(reason).size()),
                  tcp_refusal_name(reason).data());
    entry.end = end;
    log(entry);
}

void TcpWorker::relay_opened(TcpRelay* relay) {
    relay->prev = nullptr;
    relay->next = relays_;
    if (relays_ != nullptr) relays_->prev = relay;
    relays_ = relay;
    ++relay_count_;
}

void TcpWorker::relay_closed(TcpRelay* relay) {
    if (relay->prev != nullptr) relay->prev->next = relay->next;
    if (relay->next != nullptr) relay->next->prev = relay->prev;
    if (relays_ == relay) relays_ = relay->next;
    --relay_count_;
    delete relay;
    if (relay_count_ == 0 && stopping_ && drained_) drained_();
}

void TcpWorker::log(const TcpLogEntry& entry) {
    AccessLog* access_log = worker_.access_log();
    if (access_log == nullptr) return;
    log_scratch_.clear();
    append_tcp_log_line(log_scratch_, entry);
    access_log->log_line(worker_.id(), log_scratch_);
}

}  // namespace edgeguard
