#include "proxy/upstream/upstream_pool.h"
#include "proxy/ops/process_log.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace edgeguard {

namespace {

timeval to_timeval(Millis ms) {
    return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

bool parse_literal(const HostPort& hp, sockaddr_storage& out, socklen_t& len) {
    std::memset(&out, 0, sizeof out);
    auto* v4 = reinterpret_cast<sockaddr_in*>(&out);
    if (inet_pton(AF_INET, hp.host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(hp.port);
        len = sizeof(sockaddr_in);
        return true;
    }
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&out);
    if (inet_pton(AF_INET6, hp.host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(hp.port);
        len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}

}  // namespace

UpstreamPool::UpstreamPool(event_base* base, evdns_base* dns, const UpstreamConfig& config, uint32_t buffer_limit)
    : base_(base), dns_(dns), config_(config), buffer_limit_(buffer_limit) {
    refresh_timer_ = evtimer_new(base_, &UpstreamPool::on_refresh, this);
    set_servers();
}

UpstreamPool::~UpstreamPool() {
    close_idle();
    for (Server& s : servers_) {
        if (s.pending != nullptr) evdns_getaddrinfo_cancel(s.pending);
    }
    if (refresh_timer_ != nullptr) event_free(refresh_timer_);
}

void UpstreamPool::set_servers() {
    for (Server& s : servers_) {
        if (s.pending != nullptr) evdns_getaddrinfo_cancel(s.pending);
    }
    servers_.clear();
    servers_.resize(config_.servers.size());
    bool any_name = false;
    for (size_t i = 0; i < servers_.size(); ++i) {
        Server& s = servers_[i];
        s.address = config_.servers[i];
        s.text = s.address.str();
        sockaddr_storage ss;
        socklen_t len = 0;
        if (parse_literal(s.address, ss, len)) {
            s.literal = true;
            s.addrs.push_back(ss);
            s.addr_lens.push_back(len);
        } else {
            any_name = true;
            resolve(i);
        }
    }
    if (any_name && config_.dns_refresh.count() > 0) {
        timeval tv = to_timeval(config_.dns_refresh);
        event_del(refresh_timer_);
        event_assign(refresh_timer_, base_, -1, EV_PERSIST, &UpstreamPool::on_refresh, this);
        evtimer_add(refresh_timer_, &tv);
    }
}

void UpstreamPool::update(const UpstreamConfig& config) {
    bool same_servers = config.servers.size() == config_.servers.size();
    for (size_t i = 0; same_servers && i < config.servers.size(); ++i) {
        same_servers = config.servers[i].host == config_.servers[i].host &&
                       config.servers[i].port == config_.servers[i].port;
    }
    config_ = config;
    if (!same_servers) {
        close_idle();
        set_servers();
        notify_waiters();
    }
}

void UpstreamPool::resolve(size_t index) {
    Server& s = servers_[index];
    if (s.literal || s.resolving || dns_ == nullptr) return;
    evutil_addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    char port[8];
    std::snprintf(port, sizeof port, "%u", static_cast<unsigned>(s.address.port));
    s.resolving = true;
    auto* req = new ResolveRequest{this, index};
    evdns_getaddrinfo_request* handle =
        evdns_getaddrinfo(dns_, s.address.host.c_str(), port, &hints, &UpstreamPool::on_resolved, req);
    // The callback may already have run (hosts file, cached answer); only a still-running lookup is pending.
    if (servers_[index].resolving) servers_[index].pending = handle;
}

void UpstreamPool::resolve_all() {
    for (size_t i = 0; i < servers_.size(); ++i) resolve(i);
}

void UpstreamPool::on_resolved(int result, evutil_addrinfo* res, void* arg) {
    auto* req = static_cast<ResolveRequest*>(arg);
    if (result == EVUTIL_EAI_CANCEL) {
        if (res != nullptr) evutil_freeaddrinfo(res);
        delete req;
        return;
    }
    UpstreamPool* pool = req->pool;
    Server& s = pool->servers_[req->server];
    delete req;
    s.pending = nullptr;
    s.resolving = false;
    if (result == 0 && res != nullptr) {
        s.addrs.clear();
        s.addr_lens.clear();
        for (evutil_addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
            if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
            sockaddr_storage ss{};
            std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
            s.addrs.push_back(ss);
            s.addr_lens.push_back(static_cast<socklen_t>(ai->ai_addrlen));
        }
        s.failed = s.addrs.empty();
        s.next_addr = 0;
    } else {
        // Keep the last good addresses: a DNS hiccup must not take a healthy upstream away.
        s.failed = s.addrs.empty();
        log_process(LogLevel::Error, "edgeguard: upstream %s: cannot resolve %s: %s", pool->config_.name.c_str(),
                     s.address.host.c_str(), evutil_gai_strerror(result));
    }
    if (res != nullptr) evutil_freeaddrinfo(res);
    pool->notify_waiters();
}

void UpstreamPool::on_refresh(evutil_socket_t, short, void* arg) { static_cast<UpstreamPool*>(arg)->resolve_all(); }

void UpstreamPool::notify_waiters() {
    if (waiters_.empty()) return;
    std::vector<UpstreamWaiter*> waiting;
    waiting.swap(waiters_);
    for (UpstreamWaiter* w : waiting) w->upstream_addresses_ready();
}

void UpstreamPool::cancel_wait(UpstreamWaiter* waiter) {
    waiters_.erase(std::remove(waiters_.begin(), waiters_.end(), waiter), waiters_.end());
}

UpstreamPool::Acquire UpstreamPool::acquire(UpstreamOwner* owner, UpstreamWaiter* waiter, bool fresh_only,
                                            UpstreamConnection*& conn) {
    conn = nullptr;
    bool any_resolving = false;
    // Round-robin picks the server first; a warm idle connection to that server is preferred over a new one,
    // so keep-alive reuse never concentrates all traffic on whichever server answered first.
    for (size_t tried = 0; tried < servers_.size(); ++tried) {
        const size_t index = next_server_++ % servers_.size();
        Server& s = servers_[index];
        if (!fresh_only) {
            for (size_t i = idle_.size(); i-- > 0;) {
                if (idle_[i]->server_index() != index) continue;
                conn = idle_[i];
                idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
                conn->disarm_timer();
                conn->set_owner(owner);
                conn->mark_reused();
                gauge_idle(-1);
                gauge_active(1);
                return Acquire::Ready;
            }
        }
        if (s.addrs.empty()) {
            any_resolving = any_resolving || s.resolving;
            continue;
        }
        const size_t a = s.next_addr++ % s.addrs.size();
        bool error = false;
        auto* c = new UpstreamConnection(base_, reinterpret_cast<const sockaddr*>(&s.addrs[a]), s.addr_lens[a],
                                         index, owner, buffer_limit_, tls_.get(), s.address.host, error);
        if (error) {
            delete c;
            continue;
        }
        conn = c;
        gauge_active(1);
        return Acquire::Ready;
    }
    if (any_resolving && waiter != nullptr) {
        waiters_.push_back(waiter);
        return Acquire::Pending;
    }
    resolve_all();  // nothing usable: ask again so the next request may find the service back
    return Acquire::Unavailable;
}

void UpstreamPool::release(UpstreamConnection* conn) {
    gauge_active(-1);
    if (idle_.size() >= config_.max_idle_per_worker) {
        delete conn;
        return;
    }
    conn->set_owner(this);
    conn->arm_timer(config_.keepalive_idle);
    idle_.push_back(conn);
    gauge_idle(1);
}

void UpstreamPool::discard(UpstreamConnection* conn) {
    gauge_active(-1);
    delete conn;
}

void UpstreamPool::connect_failed(UpstreamConnection* conn) {
    size_t index = conn->server_index();
    gauge_active(-1);
    delete conn;
    if (index < servers_.size()) resolve(index);
}

void UpstreamPool::drop_idle(UpstreamConnection* conn) {
    idle_.erase(std::remove(idle_.begin(), idle_.end(), conn), idle_.end());
    gauge_idle(-1);
    delete conn;
}

void UpstreamPool::close_idle() {
    for (UpstreamConnection* c : idle_) delete c;
    gauge_idle(-static_cast<int64_t>(idle_.size()));
    idle_.clear();
}

// An idle connection that becomes readable was closed by the server (or sent bytes it should not have):
// either way it can never carry another request.
void UpstreamPool::upstream_connected(UpstreamConnection&) {}
void UpstreamPool::upstream_readable(UpstreamConnection& conn) { drop_idle(&conn); }
void UpstreamPool::upstream_writable(UpstreamConnection&) {}
void UpstreamPool::upstream_closed(UpstreamConnection& conn, short) { drop_idle(&conn); }
void UpstreamPool::upstream_timer_fired(UpstreamConnection& conn) { drop_idle(&conn); }

}  // namespace edgeguard
