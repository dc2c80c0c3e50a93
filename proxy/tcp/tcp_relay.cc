#include "proxy/tcp/tcp_relay.h"

#include <event2/buffer.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

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
void reset_on_close(bufferevent* bev) {
    const evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0) return;
    const linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
}

bool output_empty(bufferevent* bev) { return evbuffer_get_length(bufferevent_get_output(bev)) == 0; }

int64_t unix_micros_now() {
    return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

void TcpRelay::start(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
                     TcpListenerStats& stats, ConnectionLimits::Ticket ticket, evutil_socket_t fd,
                     const sockaddr* peer, socklen_t peer_len, size_t first_server) {
    auto* relay = new TcpRelay(owner, std::move(snapshot), listener, stats, ticket, first_server);
    owner.relay_opened(relay);
    if (!relay->open_client(fd, peer, peer_len)) {
        relay->finish("internal_error", true);
        return;
    }
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
      start_unix_micros_(unix_micros_now()) {
    stats_.open.fetch_add(1, std::memory_order_relaxed);
    stats_.accepted.fetch_add(1, std::memory_order_relaxed);
}

TcpRelay::~TcpRelay() = default;

bool TcpRelay::open_client(evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len) {
    std::memcpy(&client_addr_, peer, std::min<size_t>(peer_len, sizeof client_addr_));
    socklen_t local_len = sizeof local_addr_;
    have_local_addr_ = ::getsockname(fd, reinterpret_cast<sockaddr*>(&local_addr_), &local_len) == 0;
    timer_ = evtimer_new(owner_.base(), &TcpRelay::on_timer_event, this);
    client_.bev = bufferevent_socket_new(owner_.base(), fd, BEV_OPT_CLOSE_ON_FREE);
    if (client_.bev == nullptr || timer_ == nullptr) {
        if (client_.bev == nullptr) ::close(fd);
        return false;
    }
    bufferevent_setcb(client_.bev, &TcpRelay::on_read, &TcpRelay::on_write, &TcpRelay::on_event, this);
    // Read while the upstream connection is being made, but no more than one buffer: the high watermark
    // stops reading until the bytes have moved on.
    bufferevent_setwatermark(client_.bev, EV_READ, 0, listener_.buffer_bytes);
    bufferevent_set_max_single_read(client_.bev, listener_.buffer_bytes);
    bufferevent_set_max_single_write(client_.bev, listener_.buffer_bytes);
    bufferevent_enable(client_.bev, EV_READ);
    return true;
}

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
    upstream_.bev = bufferevent_socket_new(owner_.base(), -1, BEV_OPT_CLOSE_ON_FREE);
    if (upstream_.bev == nullptr) {
        connect_failed();
        return;
    }
    bufferevent_setcb(upstream_.bev, &TcpRelay::on_read, &TcpRelay::on_write, &TcpRelay::on_event, this);
    // A refused connect on loopback is reported later through on_event, like any other.
    if (bufferevent_socket_connect(upstream_.bev, const_cast<sockaddr*>(addr), static_cast<int>(len)) != 0)
        connect_failed();
}

void TcpRelay::connect_failed() {
    stats_.connect_errors.fetch_add(1, std::memory_order_relaxed);
    if (dns_request_ != nullptr) {
        evdns_getaddrinfo_request* request = dns_request_;
        dns_request_ = nullptr;
        evdns_getaddrinfo_cancel(request);
    }
    if (upstream_.bev != nullptr) {
        bufferevent_free(upstream_.bev);
        upstream_.bev = nullptr;
    }
    connect_next();
}

void TcpRelay::connected() {
    connected_ = true;
    const int one = 1;
    ::setsockopt(bufferevent_getfd(upstream_.bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bufferevent_setwatermark(upstream_.bev, EV_READ, 0, listener_.buffer_bytes);
    bufferevent_set_max_single_read(upstream_.bev, listener_.buffer_bytes);
    bufferevent_set_max_single_write(upstream_.bev, listener_.buffer_bytes);
    if (listener_.proxy_protocol != ProxyProtocol::Off) {
        uint8_t header[kMaxProxyHeaderBytes];
        const size_t n = write_proxy_header(listener_.proxy_protocol, reinterpret_cast<const sockaddr*>(&client_addr_),
                                            have_local_addr_ ? reinterpret_cast<const sockaddr*>(&local_addr_) : nullptr,
                                            header);
        bufferevent_write(upstream_.bev, header, n);
    }
    bufferevent_enable(upstream_.bev, EV_READ | EV_WRITE);
    last_activity_ = Clock::now();
    on_timer();  // re-arms the timer for the idle and lifetime deadlines
    if (finished_) return;
    pump(client_, upstream_);
    if (client_.eof && !upstream_.shut && output_empty(upstream_.bev)) half_close(upstream_);
}

void TcpRelay::pump(Side& from, Side& to) {
    if (!connected_ || from.bev == nullptr || to.bev == nullptr) return;
    evbuffer* in = bufferevent_get_input(from.bev);
    const size_t n = evbuffer_get_length(in);
    if (n == 0) return;
    from.bytes_read += n;
    (&from == &client_ ? stats_.bytes_from_client : stats_.bytes_to_client).fetch_add(n, std::memory_order_relaxed);
    last_activity_ = Clock::now();
    // Moves the chain of buffers: no byte is copied.
    bufferevent_write_buffer(to.bev, in);
    if (evbuffer_get_length(bufferevent_get_output(to.bev)) >= listener_.buffer_bytes && !from.eof) {
        // The receiving side is slower: stop reading until half of its backlog has been written.
        from.paused = true;
        bufferevent_disable(from.bev, EV_READ);
        bufferevent_setwatermark(to.bev, EV_WRITE, listener_.buffer_bytes / 2, 0);
    }
}

void TcpRelay::flushed(Side& to) {
    Side& from = peer_of(to);
    if (from.paused) {
        from.paused = false;
        // Back to being told only when everything is written, which is when a pending half-close can go out.
        bufferevent_setwatermark(to.bev, EV_WRITE, 0, 0);
        bufferevent_enable(from.bev, EV_READ);
        pump(from, to);  // what was read before the pause (reading stays suspended while it sits there)
    }
    if (from.eof && !to.shut && output_empty(to.bev)) half_close(to);
    if (client_.eof && upstream_.eof && client_.shut && upstream_.shut) finish("closed", false);
}

void TcpRelay::half_close(Side& to) {
    ::shutdown(bufferevent_getfd(to.bev), SHUT_WR);
    to.shut = true;
}

void TcpRelay::on_read(bufferevent* bev, void* arg) {
    auto* self = static_cast<TcpRelay*>(arg);
    Side& from = self->side_of(bev);
    self->pump(from, self->peer_of(from));
}

void TcpRelay::on_write(bufferevent* bev, void* arg) {
    auto* self = static_cast<TcpRelay*>(arg);
    if (bev == self->upstream_.bev && !self->connected_) return;
    self->flushed(self->side_of(bev));
}

void TcpRelay::on_event(bufferevent* bev, short what, void* arg) {
    auto* self = static_cast<TcpRelay*>(arg);
    Side& side = self->side_of(bev);
    if (&side == &self->upstream_ && !self->connected_) {
        if ((what & BEV_EVENT_CONNECTED) != 0)
            self->connected();
        else
            self->connect_failed();
        return;
    }
    if ((what & BEV_EVENT_EOF) != 0) {
        side.eof = true;
        side.paused = false;
        Side& to = self->peer_of(side);
        if (self->connected_) {
            self->pump(side, to);
            if (!to.shut && output_empty(to.bev)) self->half_close(to);
        }
        if (self->client_.eof && self->upstream_.eof && self->client_.shut && self->upstream_.shut)
            self->finish("closed", false);
        return;
    }
    self->finish(&side == &self->client_ ? "client_reset" : "upstream_reset", true);
}

void TcpRelay::arm_timer(std::chrono::steady_clock::duration after) {
    const timeval tv = to_timeval(after);
    evtimer_add(timer_, &tv);
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
    for (Side* side : {&client_, &upstream_}) {
        if (side->bev == nullptr) continue;
        if (reset) reset_on_close(side->bev);
        bufferevent_free(side->bev);
        side->bev = nullptr;
    }
    if (timer_ != nullptr) event_free(timer_);
    timer_ = nullptr;
    stats_.limits.release(ticket_);
    stats_.open.fetch_sub(1, std::memory_order_relaxed);
    const uint64_t micros = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started_).count());
    stats_.observe_duration(micros);

    TcpLogEntry entry;
    entry.start_unix_micros = start_unix_micros_;
    entry.client = IpAddress::from_sockaddr(reinterpret_cast<const sockaddr*>(&client_addr_)).value_or(IpAddress{});
    const sockaddr* peer = reinterpret_cast<const sockaddr*>(&client_addr_);
    entry.client_port = peer->sa_family == AF_INET
                            ? ntohs(reinterpret_cast<const sockaddr_in*>(peer)->sin_port)
                            : ntohs(reinterpret_cast<const sockaddr_in6*>(peer)->sin6_port);
    entry.listener = listener_.name;
    entry.upstream = upstream_config_.name;
    const std::string server = connected_ && server_ != nullptr ? server_->str() : std::string();
    entry.server = server;
    entry.bytes_in = client_.bytes_read;
    entry.bytes_out = upstream_.bytes_read;
    entry.duration_micros = micros;
    entry.end = how;
    owner_.log(entry);
    owner_.relay_closed(this);  // deletes this
}

}  // namespace edgeguard
