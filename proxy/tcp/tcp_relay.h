// One relayed TCP connection: the client's socket, a connection to one of the upstream's servers, and the
// bytes moved between them through one buffer per direction (the listener's buffer size, taken from the
// worker's pool only while bytes wait in it). Back-pressure: a socket is read only while its direction's
// buffer has room, so a slow side pauses the other and memory per connection never exceeds two buffers.
// Half-close is passed on (shutdown(SHUT_WR) once everything read before the EOF is written), a reset on
// one side resets the other, and an idle or too old connection is closed. Lives on one worker thread.
//
// Sockets are read and written directly rather than through bufferevents: libevent 2.1's evbuffer_read asks
// FIONREAD and then reads at most 4 KiB per call, which made a relayed gigabyte cost four times the
// syscalls of reading a whole buffer at once. Here a chunk costs one read and one write.
#pragma once

#include <event2/dns.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>

#include "proxy/access/connection_limits.h"
#include "proxy/core/snapshot.h"
#include "proxy/tcp/tcp_config.h"
#include "proxy/tcp/tcp_listener_stats.h"

namespace edgeguard {

class ServerTlsContext;
class TcpWorker;

class TcpRelay {
  public:
    // Takes ownership of the accepted, admitted, non-blocking socket `fd` and of `ticket`; `listener` lives
    // in `snapshot`. `tls` non-null: the client speaks TLS, terminated here; the upstream is connected once
    // the handshake has completed, so scanners never reach it.
    static void start(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot,
                      const TcpListenerConfig& listener, TcpListenerStats& stats,
                      ConnectionLimits::Ticket ticket, evutil_socket_t fd, const sockaddr* peer,
                      socklen_t peer_len, size_t first_server, const ServerTlsContext* tls);
    // The worker is going away: close both sides (their peers see a FIN) and log the connection.
    void close_for_shutdown() { finish("shutdown", false); }
    ~TcpRelay();

    // The owner's intrusive list.
    TcpRelay* prev = nullptr;
    TcpRelay* next = nullptr;

  private:
    // Bytes flowing from one socket to the other.
    struct Pipe {
        evutil_socket_t* from = nullptr;  // points at client_fd_ or upstream_fd_
        evutil_socket_t* to = nullptr;
        uint8_t* buffer = nullptr;  // from the pool while bytes wait; [head, tail) is unwritten
        uint32_t head = 0;
        uint32_t tail = 0;
        event read_event{};   // readable `from`
        event write_event{};  // writable `to`
        bool read_assigned = false;
        bool write_assigned = false;
        bool reading = false;  // read_event is added
        bool writing = false;  // write_event is added
        bool eof = false;      // `from` sent FIN: nothing more will be read
        bool shut = false;     // we sent `to` FIN
        uint64_t bytes = 0;    // read from `from`
    };

    TcpRelay(TcpWorker& owner, std::shared_ptr<const Snapshot> snapshot, const TcpListenerConfig& listener,
             TcpListenerStats& stats, ConnectionLimits::Ticket ticket, size_t first_server);

    void connect_next();
    void connect_to(const sockaddr* addr, socklen_t len);
    void connect_failed();
    void connected();
    void close_upstream_socket();

    // One read from the pipe's source or write to its destination, through TLS on the client side.
    enum class Io { Bytes, Again, WantWrite, WantRead, Eof, Reset, HandshakeFailed };
    Io receive(Pipe& p, size_t& n);
    Io transmit(Pipe& p, size_t& n);
    void shut_write(Pipe& p);
    void readable(Pipe& p);
    void flush(Pipe& p);
    void start_reading(Pipe& p);
    void stop_reading(Pipe& p);
    void start_writing(Pipe& p);
    void stop_writing(Pipe& p);
    void release_buffer(Pipe& p);
    const char* reset_name(const evutil_socket_t* fd) const {
        return fd == &client_fd_ ? "client_reset" : "upstream_reset";
    }
    void on_timer();
    void arm_timer(std::chrono::steady_clock::duration after);
    void finish(const char* how, bool reset);

    static void on_readable(evutil_socket_t, short, void* arg);
    static void on_writable(evutil_socket_t, short, void* arg);
    static void on_timer_event(evutil_socket_t, short, void* arg);
    static void on_resolved(int result, evutil_addrinfo* res, void* arg);

    TcpWorker& owner_;
    std::shared_ptr<const Snapshot> snapshot_;  // keeps listener_ and upstream_config_ alive
    const TcpListenerConfig& listener_;
    const UpstreamConfig& upstream_config_;
    TcpListenerStats& stats_;
    ConnectionLimits::Ticket ticket_;
    evutil_socket_t client_fd_ = -1;
    evutil_socket_t upstream_fd_ = -1;
    Pipe up_;    // client -> upstream
    Pipe down_;  // upstream -> client
    sockaddr_storage client_addr_{};
    sockaddr_storage local_addr_{};  // what the client connected to (for the PROXY header)
    bool have_local_addr_ = false;
    SSL* ssl_ = nullptr;  // client-side TLS; null = plain
    bool handshake_done_ = false;
    bool read_wants_write_ = false;  // SSL_read needs the client socket writable (handshake, session tickets)
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
    event timer_{};
    bool timer_assigned_ = false;
    std::chrono::steady_clock::time_point started_;
    std::chrono::steady_clock::time_point last_activity_;
    int64_t start_unix_micros_ = 0;
};

}  // namespace edgeguard
