// One relayed TCP connection: the client's socket, a connection to one of the upstream's servers, and the
// bytes moved between them. Back-pressure: a side is read only while its peer has less than the listener's
// buffer size waiting to be written, so memory per connection stays bounded whatever the speeds. Half-close
// is passed on (shutdown(SHUT_WR) once everything read before the EOF is written), a reset on one side
// resets the other, and an idle or too old connection is closed. Lives on one worker thread.
#pragma once

#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>

#include "proxy/connection_limits.h"
#include "proxy/snapshot.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/tcp/tcp_listener_stats.h"

namespace edgeguard {

class TcpWorker;

class TcpRelay {
  public:
    // Takes ownership of the accepted, admitted socket `fd` and of `ticket`; `listener` lives in `snapshot`.
    static void start(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
                      TcpListenerStats& stats, ConnectionLimits::Ticket ticket, evutil_socket_t fd,
                      const sockaddr* peer, socklen_t peer_len, size_t first_server);
    // The worker is going away: close both sides (their peers see a FIN) and log the connection.
    void close_for_shutdown() { finish("shutdown", false); }
    ~TcpRelay();

    // The owner's intrusive list.
    TcpRelay* prev = nullptr;
    TcpRelay* next = nullptr;

  private:
    struct Side {
        bufferevent* bev = nullptr;
        uint64_t bytes_read = 0;
        bool eof = false;     // it sent FIN: nothing more will be read from it
        bool shut = false;    // we sent it FIN
        bool paused = false;  // not read because its peer's output is full
    };

    TcpRelay(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
             TcpListenerStats& stats, ConnectionLimits::Ticket ticket, size_t first_server);
    bool open_client(evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len);

    void connect_next();
    void connect_to(const sockaddr* addr, socklen_t len);
    void connect_failed();
    void connected();
    void pump(Side& from, Side& to);
    void flushed(Side& to);
    void half_close(Side& to);
    void on_timer();
    void arm_timer(std::chrono::steady_clock::duration after);
    void finish(const char* how, bool reset);

    Side& side_of(bufferevent* bev) { return bev == client_.bev ? client_ : upstream_; }
    Side& peer_of(Side& s) { return &s == &client_ ? upstream_ : client_; }

    static void on_read(bufferevent* bev, void* arg);
    static void on_write(bufferevent* bev, void* arg);
    static void on_event(bufferevent* bev, short what, void* arg);
    static void on_timer_event(evutil_socket_t, short, void* arg);
    static void on_resolved(int result, evutil_addrinfo* res, void* arg);

    TcpWorker& owner_;
    std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ and upstream_config_ alive
    const TcpListenerConfig& listener_;
    const UpstreamConfig& upstream_config_;
    TcpListenerStats& stats_;
    ConnectionLimits::Ticket ticket_;
    Side client_;
    Side upstream_;
    sockaddr_storage client_addr_{};
    sockaddr_storage local_addr_{};  // what the client connected to (for the PROXY header)
    bool have_local_addr_ = false;
    bool connected_ = false;
    bool finished_ = false;
    size_t first_server_;
    size_t attempts_ = 0;
    const HostPort* server_ = nullptr;  // the server being tried or connected to
    evdns_getaddrinfo_request* dns_request_ = nullptr;
    bool resolving_inline_ = false;  // inside evdns_getaddrinfo, which may answer before it returns
    bool resolved_inline_ = false;
    sockaddr_storage resolved_{};
    socklen_t resolved_len_ = 0;
    event* timer_ = nullptr;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point last_activity_;
    int64_t start_unix_micros_ = 0;
};

}  // namespace edgeguard
