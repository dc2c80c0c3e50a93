// One TCP connection to an upstream server: the socket's bufferevent and one reusable timer. Whoever owns it
// right now (the pool while idle, a client connection while a request is on it) receives its events.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <cstddef>
#include <string_view>

#include "proxy/config/config.h"
#include "proxy/core/deadline_timer.h"
#include "proxy/core/socket_reader.h"
#include "proxy/tls/tls_upstream.h"

namespace edgeguard {

class UpstreamConnection;

class UpstreamOwner {
public:
    virtual void upstream_connected(UpstreamConnection& conn) = 0;
    virtual void upstream_readable(UpstreamConnection& conn) = 0;
    virtual void upstream_writable(UpstreamConnection& conn) = 0;
    // EOF, error or reset (BEV_EVENT_* flags); the connection is unusable afterwards.
    virtual void upstream_closed(UpstreamConnection& conn, short events) = 0;
    virtual void upstream_timer_fired(UpstreamConnection& conn) = 0;

protected:
    ~UpstreamOwner() = default;
};

class UpstreamConnection {
public:
    // Starts a non-blocking connect to `addr`. `error` is set (and the object unusable) when the socket
    // could not even be created; a refused connect arrives later through upstream_closed().
    // `tls` non-null: TLS toward the server, verified against `host` (or the configured server_name).
    UpstreamConnection(event_base* base, const sockaddr* addr, socklen_t addr_len, size_t server_index,
                       UpstreamOwner* owner, uint32_t buffer_limit, const UpstreamTlsContext* tls,
                       std::string_view host, bool& error);
    ~UpstreamConnection();
    UpstreamConnection(const UpstreamConnection&) = delete;
    UpstreamConnection& operator=(const UpstreamConnection&) = delete;

    bufferevent* bev() const { return bev_; }
    evbuffer* input() const { return bufferevent_get_input(bev_); }
    evbuffer* output() const { return bufferevent_get_output(bev_); }
    void set_owner(UpstreamOwner* owner) { owner_ = owner; }
    UpstreamOwner* owner() const { return owner_; }
    void arm_timer(Millis after) { timer_.arm(after); }
    void arm_timer_from(DeadlineTimer::Clock::time_point now, Millis after) { timer_.arm_from(now, after); }
    void disarm_timer() { timer_.disarm(); }

    size_t server_index() const { return server_index_; }
    bool connected() const { return connected_; }
    bool reused() const { return reused_; }
    bool plain() const { return plain_; }  // bytes may be written to the socket directly
    void mark_reused() { reused_ = true; }

private:
    static void on_read(bufferevent* bev, void* arg);
    static void on_write(bufferevent* bev, void* arg);
    static void on_event(bufferevent* bev, short events, void* arg);
    static void on_timer(void* arg);

    bufferevent* bev_ = nullptr;
    SocketReader reader_;  // reading starts once connected
    DeadlineTimer timer_;
    bool timer_ready_ = false;
    UpstreamOwner* owner_;
    size_t server_index_;
    bool connected_ = false;
    bool reused_ = false;
    bool plain_ = true;
};

}  // namespace edgeguard
