#include "proxy/core/worker.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "proxy/access/access_control.h"
#include "proxy/http1/client_connection.h"
#include "proxy/tcp/tcp_worker.h"

namespace edgeguard {

int open_listening_socket(const HostPort& address, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string port = std::to_string(address.port);
    const char* host = address.host.empty() ? nullptr : address.host.c_str();
    int rc = ::getaddrinfo(host, port.c_str(), &hints, &res);
    if (rc != 0) {
        error = "cannot resolve listen address " + address.str() + ": " + gai_strerror(rc);
        return -1;
    }
    int fd = -1;
    for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
        fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
        // Accepted sockets inherit TCP_NODELAY from their listener on Linux: one setsockopt here instead
        // of one per connection.
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && ::listen(fd, 4096) == 0) break;
        error = "cannot listen on " + address.str() + ": " + std::strerror(errno);
        ::close(fd);
        fd = -1;
    }
    ::freeaddrinfo(res);
    if (fd >= 0) error.clear();
    return fd;
}

bool listen_address_is_free(const HostPort& address, std::string& error) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    const std::string port = std::to_string(address.port);
    const int rc = ::getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(), port.c_str(), &hints, &res);
    if (rc != 0) {
        error = "cannot resolve listen address " + address.str() + ": " + gai_strerror(rc);
        return false;
    }
    bool free = true;
    for (addrinfo* ai = res; ai != nullptr && free; ai = ai->ai_next) {
        const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        // SO_REUSEADDR tolerates TIME_WAIT leftovers of a previous run; without SO_REUSEPORT the bind fails
        // while any other socket listens there, including another edgeguard's SO_REUSEPORT group.
        int one = 1;
        ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (::bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE) {
            error = "address in use: another process already listens on " + address.str();
            free = false;
        }
        ::close(fd);
    }
    ::freeaddrinfo(res);
    return free;
}

Worker::Worker(size_t id, SnapshotHolder& snapshots, Metrics* metrics, AccessLog* access_log,
               std::atomic<uint32_t>* total_connections)
    : id_(id),
      snapshots_(snapshots),
      metrics_(metrics),
      shard_(metrics != nullptr ? &metrics->shard(id) : nullptr),
      access_log_(access_log),
      total_connections_(total_connections) {}

Worker::~Worker() {
    join();
    // Connections left at the grace deadline close the ordinary way, so what they own (an upstream connection
    // mid-request, a Redis call or DNS wait in progress) goes back before the pools and the loop are freed.
    // close_now() unlinks the connection and deletes it (no callback is running).
    while (connections_ != nullptr) connections_->close_now();
    tcp_.reset();  // its relays may be waiting for DNS: before the resolver goes
    listeners_.clear();
    redis_limiter_.reset();
    // DNS first: cancelling its lookups calls back into pools that must still exist.
    if (dns_ != nullptr) evdns_base_free(dns_, 1);
    pools_by_index_.clear();
    pools_by_name_.clear();
    if (wake_event_ != nullptr) event_free(wake_event_);
    if (grace_timer_ != nullptr) event_free(grace_timer_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (base_ != nullptr) event_base_free(base_);
}

bool Worker::init(std::string& error) {
    base_ = event_base_new();
    if (base_ == nullptr) {
        error = "cannot create event loop";
        return false;
    }
    // The resolver must not keep the loop alive when nothing else is happening (graceful stop).
    dns_ = evdns_base_new(base_, EVDNS_BASE_INITIALIZE_NAMESERVERS | EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    if (dns_ == nullptr) dns_ = evdns_base_new(base_, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wake_fd_ < 0) {
        error = std::string("eventfd: ") + std::strerror(errno);
        return false;
    }
    wake_event_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Worker::on_wake_event, this);
    grace_timer_ = evtimer_new(base_, &Worker::on_grace_expired, this);
    event_add(wake_event_, nullptr);

    snapshot_ = snapshots_.load();
    apply_snapshot(snapshot_);
    // Shared limits are read at start only: a reload that changes shared_limits needs a restart.
    const SharedLimitsConfig& shared = snapshot_->config->shared_limits;
    if (!shared.redis_url.empty() && redis_counters_ != nullptr) {
        redis_limiter_ = std::make_unique<RedisLimiter>(base_, shared, redis_counters_);
        redis_limiter_->start();
    }
    for (const ListenerConfig& lc : snapshot_->config->listeners) {
        int fd = open_listening_socket(lc.address, error);
        if (fd < 0) return false;
        auto l = std::make_unique<Listener>();
        l->address = lc.address;
        l->index = listeners_.size();
        l->worker = this;
        l->listener = evconnlistener_new(base_, &Worker::on_accept, l.get(),
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
        if (l->listener == nullptr) {
            ::close(fd);
            error = "cannot listen on " + lc.address.str();
            return false;
        }
        listeners_.push_back(std::move(l));
    }
    if (tcp_registry_ != nullptr) {
        tcp_ = std::make_unique<TcpWorker>(*this, dns_, *tcp_registry_, [this] {
            if (stopping_) maybe_finish_stop();
        });
        if (!tcp_->bind_all(*snapshot_, error)) return false;
    }
    return true;
}

void Worker::set_limits(ConnectionLimits* connection_limits, std::shared_ptr<RedisLimiterCounters> redis_counters) {
    connection_limits_ = connection_limits;
    redis_counters_ = std::move(redis_counters);
}

void Worker::start() {
    thread_ = std::thread([this] { run(); });
}

void Worker::join() {
    if (thread_.joinable()) thread_.join();
}

void Worker::run() {
    // Named so `top -H`, perf and /proc/<pid>/task tell the workers apart ("edgeguard-w0", ...).
    const std::string name = "edgeguard-w" + std::to_string(id_);
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    event_base_dispatch(base_);
}

void Worker::request_stop(Millis grace) {
    grace_ms_.store(grace.count(), std::memory_order_relaxed);
    stop_requested_.store(true, std::memory_order_release);
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Worker::notify_new_snapshot() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
}

void Worker::on_wake_event(evutil_socket_t fd, short, void* arg) {
    uint64_t value;
    [[maybe_unused]] ssize_t n = ::read(fd, &value, sizeof value);
    static_cast<Worker*>(arg)->on_wake();
}

void Worker::on_wake() {
    current_snapshot();
    // Listeners are bound and closed here, never from inside an accept callback that may run on one of them.
    if (tcp_ != nullptr) tcp_->sync(*snapshot_);
    if (stop_requested_.load(std::memory_order_acquire) && !stopping_) begin_stop();
}

const std::shared_ptr<const Snapshot>& Worker::current_snapshot() {
    if (snapshots_.generation() != snapshot_->generation) apply_snapshot(snapshots_.load());
    return snapshot_;
}

namespace {

// Every connection and HTTP/2 stream copies the worker's snapshot pointer. Copies of the published pointer
// would all count on the one control block every worker shares, an atomic write to a common cache line per
// connection and per stream. Each worker instead counts on a control block of its own (cache-line sized, so
// no neighbour shares it) that holds one reference to the published snapshot.
std::shared_ptr<const Snapshot> worker_local_reference(std::shared_ptr<const Snapshot> published) {
    struct alignas(64) Holder {
        std::shared_ptr<const Snapshot> published;
    };
    const Snapshot* raw = published.get();
    return std::shared_ptr<const Snapshot>(std::make_shared<Holder>(Holder{std::move(published)}), raw);
}

}  // namespace

void Worker::apply_snapshot(const std::shared_ptr<const Snapshot>& published) {
    const std::shared_ptr<const Snapshot> snap = worker_local_reference(published);
    snapshot_ = snap;
    const Config& cfg = *snap->config;
    pools_by_index_.assign(cfg.upstreams.size(), nullptr);
    for (size_t i = 0; i < cfg.upstreams.size(); ++i) {
        const UpstreamConfig& uc = cfg.upstreams[i];
        auto it = pools_by_name_.find(uc.name);
        if (it == pools_by_name_.end()) {
            it = pools_by_name_
                     .emplace(uc.name, std::make_unique<UpstreamPool>(base_, dns_, uc, cfg.limits.buffer_per_direction))
                     .first;
        } else {
            it->second->update(uc);
        }
        it->second->set_metrics(shard_, snap->upstream_label(i));
        it->second->set_tls(i < snap->upstream_tls.size() ? snap->upstream_tls[i] : nullptr);
        pools_by_index_[i] = it->second.get();
    }
}

UpstreamPool* Worker::pool_for(const Snapshot& snapshot, const RouteConfig& route) {
    if (&snapshot == snapshot_.get()) {
        return route.upstream_index < pools_by_index_.size() ? pools_by_index_[route.upstream_index] : nullptr;
    }
    // A request still on an older snapshot: find its upstream by name.
    const auto& ups = snapshot.config->upstreams;
    if (route.upstream_index >= ups.size()) return nullptr;
    auto it = pools_by_name_.find(ups[route.upstream_index].name);
    return it == pools_by_name_.end() ? nullptr : it->second.get();
}

void Worker::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr* addr, int len, void* arg) {
    auto* l = static_cast<Listener*>(arg);
    Worker* self = l->worker;
    const Limits& limits = self->current_snapshot()->config->limits;
    // Connection limits, total and per IP, before anything else: ConnectionLimits reserves a slot and then
    // checks it in one step, so workers accepting at once can never overshoot max_connections together.
    ConnectionLimits::Ticket ticket;
    const std::optional<IpAddress> ip = IpAddress::from_sockaddr(addr);
    if (self->connection_limits_ != nullptr) {
        // A peer that is not IPv4/IPv6 (no TCP listener yields one) still holds a slot of the total.
        const ConnectionLimits::Verdict verdict = self->connection_limits_->try_admit(
            ip.value_or(IpAddress{}), limits.max_connections, ip ? limits.max_connections_per_ip : 0, ticket);
        if (verdict != ConnectionLimits::Verdict::Admitted) {
            if (self->shard_ != nullptr) self->shard_->rejected(RejectReason::ConnectionLimit);
            self->refusal_log_.refused("connection_limit", addr, l->address);
            ::close(fd);
            return;
        }
    } else if (limits.max_connections != 0 && self->open_connections() >= limits.max_connections) {
        // Without shared limits (tests): the process-wide counter, read here and raised in connection_opened.
        if (self->shard_ != nullptr) self->shard_->rejected(RejectReason::ConnectionLimit);
        self->refusal_log_.refused("connection_limit", addr, l->address);
        ::close(fd);
        return;
    }
    // Every accept is judged by the current snapshot: a reload that narrows allow/deny applies to the very
    // next connection. A listener that the running config no longer names admits nobody.
    const Snapshot& snap = *self->snapshot_;
    const ListenerConfig* lc = self->listener_config(snap, l->index);
    if (lc == nullptr) {
        if (self->connection_limits_ != nullptr) self->connection_limits_->release(ticket);
        if (self->shard_ != nullptr) self->shard_->rejected(RejectReason::Allowlist);
        self->refusal_log_.refused("allowlist", addr, l->address);
        ::close(fd);
        return;
    }
    // Listener allow/deny at accept time when nothing read later can change the answer: the connection is
    // closed before any parsing.
    if (ip && decides_at_accept(*snap.config, *lc) && !accept_allows(*lc, *ip)) {
        if (self->connection_limits_ != nullptr) self->connection_limits_->release(ticket);
        if (self->shard_ != nullptr) self->shard_->rejected(RejectReason::Allowlist);
        self->refusal_log_.refused("allowlist", addr, l->address);
        ::close(fd);
        return;
    }
    // TLS contexts come from the current snapshot, so a reload rotates certificates for new connections while
    // established ones keep theirs.
    const ServerTlsContext* tls = nullptr;
    if (lc->tls) {
        const size_t config_index = static_cast<size_t>(lc - snap.config->listeners.data());
        tls = config_index < snap.listener_tls.size() ? snap.listener_tls[config_index].get() : nullptr;
        if (tls == nullptr) {
            if (self->connection_limits_ != nullptr) self->connection_limits_->release(ticket);
            ::close(fd);
            return;
        }
    }
    ClientConnection::accept(*self, fd, addr, static_cast<socklen_t>(len), l->index, tls, ticket);
}

const ListenerConfig* Worker::listener_config(const Snapshot& snapshot, size_t listener_index) const {
    if (listener_index >= listeners_.size()) return nullptr;
    const HostPort& bound = listeners_[listener_index]->address;
    const auto& configured = snapshot.config->listeners;
    if (listener_index < configured.size() && configured[listener_index].address == bound)
        return &configured[listener_index];
    for (const ListenerConfig& lc : configured)
        if (lc.address == bound) return &lc;
    return nullptr;
}

uint32_t Worker::open_connections() const {
    return total_connections_ != nullptr ? total_connections_->load(std::memory_order_relaxed)
                                         : static_cast<uint32_t>(connection_count_);
}

void Worker::connection_opened(DownstreamConnection* conn) {
    conn->prev = nullptr;
    conn->next = connections_;
    if (connections_ != nullptr) connections_->prev = conn;
    connections_ = conn;
    ++connection_count_;
    if (total_connections_ != nullptr) total_connections_->fetch_add(1, std::memory_order_relaxed);
    if (shard_ != nullptr) shard_->connection_opened();
}

void Worker::connection_replaced(DownstreamConnection* prev, DownstreamConnection* next) {
    next->prev = prev->prev;
    next->next = prev->next;
    if (prev->prev != nullptr) prev->prev->next = next;
    if (prev->next != nullptr) prev->next->prev = next;
    if (connections_ == prev) connections_ = next;
    prev->prev = prev->next = nullptr;
}

void Worker::connection_closed(DownstreamConnection* conn) {
    if (conn->prev != nullptr) conn->prev->next = conn->next;
    if (conn->next != nullptr) conn->next->prev = conn->prev;
    if (connections_ == conn) connections_ = conn->next;
    conn->prev = conn->next = nullptr;
    --connection_count_;
    if (total_connections_ != nullptr) total_connections_->fetch_sub(1, std::memory_order_relaxed);
    if (shard_ != nullptr) shard_->connection_closed();
    if (stopping_) maybe_finish_stop();
}

// Graceful stop: close the listeners (the kernel hands new connections to no one), close idle keep-alive
// connections, let requests in flight finish, and leave the loop when none remain or the grace ends.
void Worker::begin_stop() {
    stopping_ = true;
    listeners_.clear();
    if (tcp_ != nullptr) tcp_->begin_stop();
    const int64_t grace = grace_ms_.load(std::memory_order_relaxed);
    const timeval tv{static_cast<time_t>(grace / 1000), static_cast<suseconds_t>((grace % 1000) * 1000)};
    evtimer_add(grace_timer_, &tv);
    DownstreamConnection* c = connections_;
    while (c != nullptr) {
        DownstreamConnection* next = c->next;
        c->begin_drain();
        c = next;
    }
    maybe_finish_stop();
}

void Worker::maybe_finish_stop() {
    if (connection_count_ != 0 || (tcp_ != nullptr && tcp_->open_connections() != 0)) return;
    for (auto& [name, pool] : pools_by_name_) pool->close_idle();
    event_base_loopexit(base_, nullptr);
}

void Worker::on_grace_expired(evutil_socket_t, short, void* arg) {
    event_base_loopbreak(static_cast<Worker*>(arg)->base_);
}

}  // namespace edgeguard
