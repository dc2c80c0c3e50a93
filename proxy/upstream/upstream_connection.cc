#include "proxy/upstream/upstream_connection.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include "proxy/tls/tls_bufferevent.h"

namespace edgeguard {

UpstreamConnection::UpstreamConnection(event_base* base, const sockaddr* addr, socklen_t addr_len,
                                       size_t server_index, UpstreamOwner* owner, uint32_t buffer_limit,
                                       const UpstreamTlsContext* tls, std::string_view host, bool& error)
    : owner_(owner), server_index_(server_index), plain_(tls == nullptr) {
    error = true;
    int fd = ::socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    bev_ = new_upstream_bufferevent(base, fd, tls, host);
    if (bev_ == nullptr) {
        ::close(fd);
        return;
    }
    timer_ready_ = timer_.init(base, &UpstreamConnection::on_timer, this);
    if (!reader_.attach(bev_, plain_, &UpstreamConnection::on_read, &UpstreamConnection::on_write,
                        &UpstreamConnection::on_event, this))
        return;
    // Read side bounded: a slow client stops us draining the upstream socket (backpressure).
    reader_.set_high_watermark(buffer_limit);
    bufferevent_setwatermark(bev_, EV_WRITE, buffer_limit / 2, 0);
    if (bufferevent_socket_connect(bev_, addr, static_cast<int>(addr_len)) != 0) return;
    bufferevent_enable(bev_, EV_WRITE);
    // A plain socket is read once connected (a refused connect is reported by the write side); TLS reads
    // during its handshake.
    if (!plain_) reader_.enable();
    error = !timer_ready_;
}

UpstreamConnection::~UpstreamConnection() {
    timer_.stop();
    reader_.detach();
    if (bev_ != nullptr) bufferevent_free(bev_);
}


void UpstreamConnection::on_read(bufferevent*, void* arg) {
    auto* self = static_cast<UpstreamConnection*>(arg);
    self->owner_->upstream_readable(*self);
}

void UpstreamConnection::on_write(bufferevent*, void* arg) {
    auto* self = static_cast<UpstreamConnection*>(arg);
    self->owner_->upstream_writable(*self);
}

void UpstreamConnection::on_event(bufferevent*, short events, void* arg) {
    auto* self = static_cast<UpstreamConnection*>(arg);
    if (events & BEV_EVENT_CONNECTED) {
        self->connected_ = true;
        if (self->plain_) self->reader_.enable();
        self->owner_->upstream_connected(*self);
        return;
    }
    self->owner_->upstream_closed(*self, events);
}

void UpstreamConnection::on_timer(void* arg) {
    auto* self = static_cast<UpstreamConnection*>(arg);
    self->owner_->upstream_timer_fired(*self);
}

}  // namespace edgeguard
