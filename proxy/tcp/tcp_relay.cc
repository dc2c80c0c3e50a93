#include "proxy/tcp/tcp_relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "proxy/tcp/proxy_protocol.h"
#include "proxy/tcp/tcp_log_line.h"
#include "proxy/tcp/tcp_worker.h"

namespace edgeguard {

namespace {

using Clock = std::chrono::steady_clock;

timeval to_timeval(Clock::duration d) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    if (us <= 0) return timeval{0, 0};
    return timeval{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
}

// Closing with SO_LINGER 0 sends RST instead of FIN: how a reset on one side is passed to the other.
void close_socket(evutil_socket_t fd, bool reset) {
    if (reset) {
        const linger l{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    }
    ::close(fd);
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK; }

uint16_t port_of(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

}  // namespace

void TcpRelay::start(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
                     TcpListenerStats& stats, ConnectionLimits::Ticket ticket, evutil_socket_t fd,
                     const sockaddr* peer, socklen_t peer_len, size_t first_server) {
    auto* relay = new TcpRelay(owner, std::move(snapshot), listener, stats, ticket, first_server);
    owner.relay_opened(relay);
    relay->client_fd_ = fd;
    std::memcpy(&relay->client_addr_, peer, std::min<size_t>(peer_len, sizeof relay->client_addr_));
    socklen_t local_len = sizeof relay->local_addr_;
    relay->have_local_addr_ =
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&relay->local_addr_), &local_len) == 0;
    event_base* base = owner.base();
    event_assign(&relay->timer_, base, -1, 0, &TcpRelay::on_timer_event, relay);
    relay->timer_assigned_ = true;
    event_assign(&relay->up_.read_event, base, fd, EV_READ | EV_PERSIST, &TcpRelay::on_readable, relay);
    relay->up_.read_assigned = true;
    event_assign(&relay->down_.write_event, base, fd, EV_WRITE | EV_PERSIST, &TcpRelay::on_writable, relay);
    relay->down_.write_assigned = true;
    // Read while the upstream connection is being made, but no more than one buffer.
    relay->start_reading(relay->up_);
    relay->connect_next();
}

TcpRelay::TcpRelay(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
                   TcpListenerStats& stats, ConnectionLimits::Ticket ticket, size_t first_server)
    : owner_(owner),
      snapshot_(std::move(snapshot)),
      listener_(listener),
      upstream_config_(snapshot_->config->upstreams[listener.upstream_index]),
      stats_(stats),
      ticket_(ticket),
      first_server_(first_server),
      started_(Clock::now()),
      last_activity_(started_),
      start_unix_micros_(std::chrono::duration_cast<std::chrono::microseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count()) {
    up_.from = &client_fd_;
    up_.to = &upstream_fd_;
    down_.from = &upstream_fd_;
    down_.to = &client_fd_;
    stats_.open.fetch_add(1, std::memory_order_relaxed);
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
}

TcpRelay::~TcpRelay() = default;

void TcpRelay::connect_next() {
    const auto& servers = upstream_config_.servers;
    if (attempts_ >= servers.size()) {
        finish("connect_failed", true);
        return;
    }
    server_ = &servers[(first_server_ + attempts_) % servers.size()];
    ++attempts_;
    arm_timer(listener_.timeouts.connect);
    // An IP literal needs no lookup; a name is looked up for every connection, so a service that moved to a
    // new address (a restarted container) is found at once.
    if (auto ip = IpAddress::parse(server_->host)) {
        sockaddr_storage ss{};
        socklen_t len = 0;
        if (ip->is_v4()) {
            auto* sin = reinterpret_cast<sockaddr_in*>(&ss);
            sin->sin_family = AF_INET;
            sin->sin_port = htons(server_->port);
            std::memcpy(&sin->sin_addr, ip->bytes.data() + 12, 4);
            len = sizeof(sockaddr_in);
        } else {
            auto* sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons(server_->port);
            std::memcpy(&sin6->sin6_addr, ip->bytes.data(), 16);
            len = sizeof(sockaddr_in6);
        }
        connect_to(reinterpret_cast<sockaddr*>(&ss), len);
        return;
    }
    if (owner_.dns() == nullptr) {
        connect_failed();
        return;
    }
    evutil_addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = EVUTIL_AI_ADDRCONFIG;
    const std::string port = std::to_string(server_->port);
    resolving_inline_ = true;
    resolved_inline_ = false;
    resolved_len_ = 0;
    evdns_getaddrinfo_request* request =
        evdns_getaddrinfo(owner_.dns(), server_->host.c_str(), port.c_str(), &hints, &TcpRelay::on_resolved, this);
    resolving_inline_ = false;
    if (request != nullptr && !resolved_inline_) {
        dns_request_ = request;
        return;
    }
    // Answered before evdns_getaddrinfo returned (hosts file, cache, or an immediate failure).
    if (resolved_len_ > 0)
        connect_to(reinterpret_cast<sockaddr*>(&resolved_), resolved_len_);
    else
        connect_failed();
}

void TcpRelay::on_resolved(int result, evutil_addrinfo* res, void* arg) {
    if (result == EVUTIL_EAI_CANCEL) return;  // the relay is finishing and cancelled the lookup
    auto* self = static_cast<TcpRelay*>(arg);
    self->resolved_len_ = 0;
    if (result == 0 && res != nullptr && res->ai_addrlen <= sizeof self->resolved_) {
        std::memcpy(&self->resolved_, res->ai_addr, res->ai_addrlen);
        self->resolved_len_ = static_cast<socklen_t>(res->ai_addrlen);
    }
    if (res != nullptr) evutil_freeaddrinfo(res);
    if (self->resolving_inline_) {
        self->resolved_inline_ = true;
        return;
    }
    self->dns_request_ = nullptr;
    if (self->resolved_len_ > 0)
        self->connect_to(reinterpret_cast<sockaddr*>(&self->resolved_), self->resolved_len_);
    else
        self->connect_failed();
}

void TcpRelay::connect_to(const sockaddr* addr, socklen_t len) {
    const evutil_socket_t fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        connect_failed();
        return;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    upstream_fd_ = fd;
    event_base* base = owner_.base();
    event_assign(&up_.write_event, base, fd, EV_WRITE | EV_PERSIST, &TcpRelay::on_writable, this);
    up_.write_assigned = true;
    event_assign(&down_.read_event, base, fd, EV_READ | EV_PERSIST, &TcpRelay::on_readable, this);
    down_.read_assigned = true;
    if (::connect(fd, addr, len) == 0) {
        connected();
    } else if (errno == EINPROGRESS) {
        start_writing(up_);  // writable = the connect finished, one way or the other
    } else {
        connect_failed();
    }
}

void TcpRelay::close_upstream_socket() {
    stop_writing(up_);
    stop_reading(down_);
    up_.write_assigned = false;
    down_.read_assigned = false;
    if (upstream_fd_ >= 0) ::close(upstream_fd_);
    upstream_fd_ = -1;
}

void TcpRelay::connect_failed() {
    stats_.connect_errors.fetch_add(1, std::memory_order_relaxed);
    if (dns_request_ != nullptr) {
        evdns_getaddrinfo_request* request = dns_request_;
        dns_request_ = nullptr;
        evdns_getaddrinfo_cancel(request);
    }
    close_upstream_socket();
    connect_next();
}

void TcpRelay::connected() {
    connected_ = true;
    stop_writing(up_);
    if (listener_.proxy_protocol != ProxyProtocol::Off) {
        // Into a fresh socket's empty send buffer, before any client byte: it always fits at once.
        uint8_t header[kMaxProxyHeaderBytes];
        const size_t n = write_proxy_header(
            listener_.proxy_protocol, reinterpret_cast<const sockaddr*>(&client_addr_),
            have_local_addr_ ? reinterpret_cast<const sockaddr*>(&local_addr_) : nullptr, header);
        if (::send(upstream_fd_, header, n, MSG_NOSIGNAL) != static_cast<ssize_t>(n)) {
            finish("upstream_reset", true);
            return;
        }
    }
    last_activity_ = Clock::now();
    on_timer();  // from the connect deadline to the idle and lifetime ones
    if (finished_) return;
    start_reading(down_);
    flush(up_);  // what the client sent meanwhile, and its EOF if it came
}

void TcpRelay::on_readable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<TcpRelay*>(arg);
    self->readable(fd == self->client_fd_ ? self->up_ : self->down_);
}

void TcpRelay::on_writable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<TcpRelay*>(arg);
    if (fd == self->upstream_fd_ && !self->connected_) {
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
        if (err == 0)
            self->connected();
        else
            self->connect_failed();
        return;
    }
    self->flush(fd == self->upstream_fd_ ? self->up_ : self->down_);
}

// Every path ends in flush() or finish(), either of which may delete the relay: nothing follows them.
void TcpRelay::readable(Pipe& p) {
    const uint32_t capacity = listener_.buffer_bytes;
    if (p.buffer == nullptr) p.buffer = owner_.buffers().take(capacity);
    const ssize_t n = ::recv(*p.from, p.buffer + p.tail, capacity - p.tail, 0);
    if (n > 0) {
        p.tail += static_cast<uint32_t>(n);
        p.bytes += static_cast<uint64_t>(n);
        (&p == &up_ ? stats_.bytes_from_client : stats_.bytes_to_client)
            .fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        last_activity_ = Clock::now();
        if (p.tail == capacity) stop_reading(p);  // full: the receiving side must catch up first
        flush(p);
        return;
    }
    if (n == 0) {
        p.eof = true;
        stop_reading(p);
        flush(p);
        return;
    }
    if (would_block(errno) || errno == EINTR) {
        if (p.head == p.tail) release_buffer(p);
        return;
    }
    finish(reset_name(p.from), true);
}

void TcpRelay::flush(Pipe& p) {
    if (!connected_) return;
    while (p.head < p.tail) {
        const ssize_t n = ::send(*p.to, p.buffer + p.head, p.tail - p.head, MSG_NOSIGNAL);
        if (n > 0) {
            p.head += static_cast<uint32_t>(n);
        } else if (n < 0 && would_block(errno)) {
            start_writing(p);
            return;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            finish(reset_name(p.to), true);
            return;
        }
    }
    stop_writing(p);
    release_buffer(p);
    if (!p.eof) {
        start_reading(p);
        return;
    }
    if (!p.shut) {
        ::shutdown(*p.to, SHUT_WR);
        p.shut = true;
    }
    if (up_.shut && down_.shut) finish("closed", false);
}

void TcpRelay::start_reading(Pipe& p) {
    if (p.reading || !p.read_assigned || p.eof) return;
    event_add(&p.read_event, nullptr);
    p.reading = true;
}

void TcpRelay::stop_reading(Pipe& p) {
    if (!p.reading) return;
    event_del(&p.read_event);
    p.reading = false;
}

void TcpRelay::start_writing(Pipe& p) {
    if (p.writing || !p.write_assigned) return;
    event_add(&p.write_event, nullptr);
    p.writing = true;
}

void TcpRelay::stop_writing(Pipe& p) {
    if (!p.writing) return;
    event_del(&p.write_event);
    p.writing = false;
}

void TcpRelay::release_buffer(Pipe& p) {
    if (p.buffer != nullptr) owner_.buffers().give_back(p.buffer, listener_.buffer_bytes);
    p.buffer = nullptr;
    p.head = p.tail = 0;
}

void TcpRelay::arm_timer(Clock::duration after) {
    const timeval tv = to_timeval(after);
    evtimer_add(&timer_, &tv);
}

void TcpRelay::on_timer_event(evutil_socket_t, short, void* arg) { static_cast<TcpRelay*>(arg)->on_timer(); }

void TcpRelay::on_timer() {
    if (!connected_) {  // this server did not answer in time: try the next
        connect_failed();
        return;
    }
    const auto now = Clock::now();
    Clock::duration next = last_activity_ + listener_.timeouts.idle - now;
    if (listener_.timeouts.lifetime.count() > 0) {
        const Clock::duration left = started_ + listener_.timeouts.lifetime - now;
        if (left <= Clock::duration::zero()) {
            finish("lifetime", false);
            return;
        }
        next = std::min(next, left);
    }
    if (next <= Clock::duration::zero()) {
        finish("idle_timeout", false);
        return;
    }
    arm_timer(next);
}

void TcpRelay::finish(const char* how, bool reset) {
    if (finished_) return;
    finished_ = true;
    if (dns_request_ != nullptr) {
        evdns_getaddrinfo_request* request = dns_request_;
        dns_request_ = nullptr;
        evdns_getaddrinfo_cancel(request);
    }
    for (Pipe* p : {&up_, &down_}) {
        stop_reading(*p);
        stop_writing(*p);
        release_buffer(*p);
    }
    if (timer_assigned_) event_del(&timer_);
    if (client_fd_ >= 0) close_socket(client_fd_, reset);
    if (upstream_fd_ >= 0) close_socket(upstream_fd_, reset);
    client_fd_ = upstream_fd_ = -1;
    stats_.limits.release(ticket_);
    stats_.open.fetch_sub(1, std::memory_order_relaxed);
    const uint64_t micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count());
    stats_.observe_duration(micros);

    TcpLogEntry entry;
    entry.start_unix_micros = start_unix_micros_;
    entry.client = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&client_addr_)).value_or(IpAddress{});
    entry.client_port = port_of(client_addr_);
    entry.listener = listener_.name;
    entry.upstream = upstream_config_.name;
    const std::string server = connected_ && server_ != nullptr ? server_->str() : std::string();
    entry.server = server;
    entry.bytes_in = up_.bytes;
    entry.bytes_out = down_.bytes;
    entry.duration_micros = micros;
    entry.end = how;
    owner_.log(entry);
    owner_.relay_closed(this);  // deletes this
}

}  // namespace edgeguard
