#include "proxy/tcp/tcp_relay.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "proxy/tcp/proxy_protocol.h"
#include "proxy/tcp/tcp_log_line.h"
#include "proxy/tcp/tcp_worker.h"
#include "proxy/tls/tls_context.h"

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

bool would_block(int err) {
    return err == EAGAIN || err == EWOULDBLOCK;
}

uint16_t port_of(const sockaddr_storage& ss) {
    if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<const sockaddr_in*>(&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_port);
    return 0;
}

}  // namespace

void TcpRelay::start(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot,
                     const TcpListenerConfig& listener, TcpListenerStats& stats,
                     ConnectionLimits::Ticket ticket, evutil_socket_t fd, const sockaddr* peer,
                     socklen_t peer_len, size_t first_server, const ServerTlsContext* tls) {
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
    if (tls != nullptr) {
        relay->ssl_ = tls->new_ssl();
        if (relay->ssl_ == nullptr || SSL_set_fd(relay->ssl_, fd) != 1) {
            ERR_clear_error();
            relay->finish("internal_error", true);
            return;
        }
        SSL_set_accept_state(relay->ssl_);
        // Partial writes from a buffer whose unwritten part moves as it drains; a client that drops the TCP
        // connection without close_notify has simply finished sending (the relayed protocol frames itself).
        SSL_set_mode(relay->ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        SSL_set_options(relay->ssl_, SSL_OP_IGNORE_UNEXPECTED_EOF);
        relay->arm_timer(listener.timeouts.idle);  // the handshake must come within the idle time
        relay->start_reading(relay->up_);
        return;
    }
    // Read while the upstream connection is being made, but no more than one buffer.
    relay->start_reading(relay->up_);
    relay->connect_next();
}

TcpRelay::TcpRelay(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot,
                   const TcpListenerConfig& listener, TcpListenerStats& stats,
                   ConnectionLimits::Ticket ticket, size_t first_server)
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
    evdns_getaddrinfo_request* request = evdns_getaddrinfo(owner_.dns(), server_->host.c_str(), port.c_str(),
                                                           &hints, &TcpRelay::on_resolved, this);
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
    if (fd == self->client_fd_ && self->read_wants_write_) {
        self->read_wants_write_ = false;
        if (self->down_.head == self->down_.tail) self->stop_writing(self->down_);
        self->readable(self->up_);
        return;
    }
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

TcpRelay::Io TcpRelay::receive(Pipe& p, size_t& n) {
    uint8_t* at = p.buffer + p.tail;
    const size_t room = listener_.buffer_bytes - p.tail;
    if (ssl_ != nullptr && p.from == &client_fd_) {
        const int rc = SSL_read_ex(ssl_, at, room, &n);
        if (rc == 1) return Io::Bytes;
        const int err = SSL_get_error(ssl_, rc);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_READ) return Io::Again;
        if (err == SSL_ERROR_WANT_WRITE) return Io::WantWrite;
        if (!SSL_is_init_finished(ssl_)) return Io::HandshakeFailed;  // an EOF too: nothing to relay yet
        if (err == SSL_ERROR_ZERO_RETURN) return Io::Eof;
        return err == SSL_ERROR_SYSCALL && errno == 0 ? Io::Eof : Io::Reset;
    }
    for (;;) {
        const ssize_t r = ::recv(*p.from, at, room, 0);
        if (r > 0) {
            n = static_cast<size_t>(r);
            return Io::Bytes;
        }
        if (r == 0) return Io::Eof;
        if (errno == EINTR) continue;
        return would_block(errno) ? Io::Again : Io::Reset;
    }
}

TcpRelay::Io TcpRelay::transmit(Pipe& p, size_t& n) {
    const uint8_t* from = p.buffer + p.head;
    const size_t len = p.tail - p.head;
    if (ssl_ != nullptr && p.to == &client_fd_) {
        const int rc = SSL_write_ex(ssl_, from, len, &n);
        if (rc == 1) return Io::Bytes;
        const int err = SSL_get_error(ssl_, rc);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_WRITE) return Io::Again;
        // Renegotiation, the one way a write could need a read, is refused by the server contexts.
        return err == SSL_ERROR_WANT_READ ? Io::WantRead : Io::Reset;
    }
    for (;;) {
        const ssize_t r = ::send(*p.to, from, len, MSG_NOSIGNAL);
        if (r > 0) {
            n = static_cast<size_t>(r);
            return Io::Bytes;
        }
        if (r < 0 && errno == EINTR) continue;
        return r < 0 && would_block(errno) ? Io::Again : Io::Reset;
    }
}

void TcpRelay::shut_write(Pipe& p) {
    if (ssl_ != nullptr && p.to == &client_fd_) {
        // close_notify first, so a TLS client can tell the end of the stream from a truncation.
        SSL_shutdown(ssl_);
        ERR_clear_error();
    }
    ::shutdown(*p.to, SHUT_WR);
    p.shut = true;
}

// Every path ends in flush(), connect_next() or finish(), any of which may delete the relay: nothing follows.
void TcpRelay::readable(Pipe& p) {
    const uint32_t capacity = listener_.buffer_bytes;
    if (p.buffer == nullptr) p.buffer = owner_.buffers().take(capacity);
    size_t n = 0;
    const Io io = receive(p, n);
    // The client finished its TLS handshake: only now is the upstream worth a connection.
    const bool handshake_completed =
        ssl_ != nullptr && !handshake_done_ && &p == &up_ && SSL_is_init_finished(ssl_);
    if (handshake_completed) handshake_done_ = true;
    switch (io) {
        case Io::Bytes:
            p.tail += static_cast<uint32_t>(n);
            p.bytes += n;
            (&p == &up_ ? stats_.bytes_from_client : stats_.bytes_to_client)
                .fetch_add(n, std::memory_order_relaxed);
            last_activity_ = Clock::now();
            if (p.tail == capacity) {
                stop_reading(p);  // full: the receiving side must catch up first
            } else if (ssl_ != nullptr && &p == &up_ && SSL_pending(ssl_) > 0) {
                event_active(&p.read_event, EV_READ, 1);  // decrypted bytes epoll cannot know about
            }
            break;
        case Io::Eof:
            p.eof = true;
            stop_reading(p);
            break;
        case Io::WantWrite:
            read_wants_write_ = true;
            start_writing(down_);  // the client socket's writable event; on_writable reads again
            break;
        case Io::Again:
        case Io::WantRead:
            if (p.head == p.tail) release_buffer(p);
            break;
        case Io::HandshakeFailed:
            finish("tls_handshake_failed", false);
            return;
        case Io::Reset:
            finish(reset_name(p.from), true);
            return;
    }
    if (handshake_completed) {
        connect_next();
        return;
    }
    if (io == Io::Bytes || io == Io::Eof) flush(p);
}

void TcpRelay::flush(Pipe& p) {
    if (!connected_) return;
    while (p.head < p.tail) {
        size_t n = 0;
        const Io io = transmit(p, n);
        if (io == Io::Bytes) {
            p.head += static_cast<uint32_t>(n);
        } else if (io == Io::Again) {
            start_writing(p);
            return;
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
    if (!p.shut) shut_write(p);
    if (up_.shut && down_.shut) finish("closed", false);
}

void TcpRelay::start_reading(Pipe& p) {
    if (p.reading || !p.read_assigned || p.eof) return;
    event_add(&p.read_event, nullptr);
    p.reading = true;
    // Bytes already decrypted when reading paused are in the SSL, not the socket: epoll would not say so.
    if (ssl_ != nullptr && &p == &up_ && SSL_pending(ssl_) > 0) event_active(&p.read_event, EV_READ, 1);
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

void TcpRelay::on_timer_event(evutil_socket_t, short, void* arg) {
    static_cast<TcpRelay*>(arg)->on_timer();
}

void TcpRelay::on_timer() {
    if (ssl_ != nullptr && !handshake_done_) {
        finish("tls_handshake_timeout", false);
        return;
    }
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
    if (ssl_ != nullptr) SSL_free(ssl_);  // its socket BIO leaves the descriptor to us
    ssl_ = nullptr;
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
    entry.client =
        IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&client_addr_)).value_or(IpAddress{});
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
