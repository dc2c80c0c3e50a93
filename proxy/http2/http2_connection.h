// One client connection that speaks HTTP/2 (ALPN "h2" on a TLS listener, or the h2c preface on a plain
// listener with `h2c: true`), on one worker thread: the nghttp2 server session, the socket, the abuse limits
// and the connection's timer. Each stream is an Http2Stream driving its own Exchange, exactly as an
// HTTP/1.1 request drives the HTTP/1.1 codec's; streams share nothing but the socket and the session.
//
// Flow control is back-pressure: a stream's request bytes are given back to the client's window
// (nghttp2_session_consume) only once its exchange took them, so a slow upstream stops the client, and a
// response is read from its upstream only while the connection's output is below
// limits.buffer_per_direction (response_room), so a slow client stops the upstream.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <nghttp2/nghttp2.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string_view>

#include "proxy/access/connection_limits.h"
#include "proxy/core/deadline_timer.h"
#include "proxy/core/downstream_connection.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/socket_reader.h"
#include "proxy/http2/frame_budget.h"
#include "proxy/ops/metrics.h"
#include "proxy/tls/tls_socket.h"

namespace edgeguard {

class Http2Stream;
class Worker;

class Http2Connection final : public DownstreamConnection {
  public:
    // Takes over `bev` (the handshake done, nothing read as HTTP/1.1 yet) from `replacing`, which the worker
    // then forgets. The h2c preface, if any, is still in the input. Closes the socket when it cannot start.
    static void adopt(Worker& worker, bufferevent* bev, bool plain, size_t listener_index,
                      ConnectionLimits::Ticket ticket, DownstreamConnection* replacing);
    ~Http2Connection();
    Http2Connection(const Http2Connection&) = delete;
    Http2Connection& operator=(const Http2Connection&) = delete;

    void begin_drain() override;
    void close_now() override { close(); }

    // --- for the streams ---
    Worker& worker() { return worker_; }
    const Snapshot& snapshot() const { return *snapshot_; }
    const std::shared_ptr<const Snapshot>& current_snapshot() const { return snapshot_; }
    const ListenerConfig& listener() const { return *listener_; }
    nghttp2_session* session() { return session_; }
    // Sends what the session has queued, as far as the client's socket takes it. `socket_drained`: the
    // client read what was written, so streams waiting for room read their upstreams again.
    void flush(bool socket_drained = false);
    // flush() once the event loop has run the other callbacks that are ready now: responses from several
    // upstreams that arrive together leave in one write.
    void schedule_flush();
    // The connection's output is below its limit: a stream may read more of its upstream.
    bool output_has_room() const;
    // A stream that could not take response bytes is told when there is room again.
    void wait_for_output_room(Http2Stream& stream);
    // `stream` staged request body bytes while this read of the socket is parsed: flushed after it.
    void flush_request_later(Http2Stream& stream);
    // The stream's exchange and upstream are done with it and nghttp2 closed it: reuse it for a later stream.
    void stream_finished(Http2Stream& stream);
    // Keep the connection alive across a call from outside its own callbacks (a Redis reply, an upstream).
    void hold() { ++depth_; }
    void release();

  private:
    Http2Connection(Worker& worker, bufferevent* bev, bool plain, size_t listener_index,
                    ConnectionLimits::Ticket ticket);
    bool start();
    // Ends the connection with GOAWAY(`error`) for `why`; the socket closes once it is written.
    void go_away(uint32_t error, Http2Goaway why);
    void close();
    void close_when_flushed();
    void linger();
    void on_timer();
    void arm_timer();
    void resume_waiting_streams();
    void flush_requests();
    // The socket: a plain one through SocketReader and the bufferevent's output, a TLS one through TlsSocket.
    bool attach_socket();
    void detach_socket();
    void set_reading(bool on);
    void set_read_limit(size_t limit);
    size_t queued_output() const;
    void send_staged();
    bool take_reset_budget();
    bool take_control_budget();
    bool take_window_update_budget();
    Http2Stream* new_stream();

    static void on_read(bufferevent* bev, void* arg);
    static void on_write(bufferevent* bev, void* arg);
    static void on_event(bufferevent* bev, short events, void* arg);
    static void on_timer_fired(void* arg);
    static void on_flush_event(evutil_socket_t, short, void* arg);

    // nghttp2 callbacks
    static const nghttp2_session_callbacks* session_callbacks();
    static ssize_t send_callback(nghttp2_session*, const uint8_t* data, size_t length, int flags, void* user);
    static int send_data_callback(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd, size_t length,
                                  nghttp2_data_source* source, void* user);
    static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user);
    static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
                         const uint8_t* value, size_t valuelen, uint8_t flags, void* user);
    static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user);
    static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user);
    static int on_invalid_frame_recv(nghttp2_session*, const nghttp2_frame* frame, int error, void* user);
    static int on_data_chunk_recv(nghttp2_session*, uint8_t flags, int32_t stream_id, const uint8_t* data,
                                  size_t len, void* user);
    static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user);
    static int on_stream_close(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* user);

    struct Entry {
        explicit Entry(Http2Connection* c) : conn(c) { ++conn->depth_; }
        ~Entry() { conn->release(); }
        Http2Connection* conn;
    };

    Worker& worker_;
    size_t listener_index_;
    std::shared_ptr<const Snapshot> snapshot_;  // refreshed for each new stream
    const ListenerConfig* listener_ = nullptr;
    bufferevent* bev_ = nullptr;
    bool plain_ = false;
    SocketReader reader_;        // plain (h2c)
    TlsSocket tls_;              // TLS: SSL_read/SSL_write on the socket, not bufferevent_openssl's I/O
    evbuffer* stage_ = nullptr;  // frames of one flush, written together (core/direct_write.h)
    event flush_event_{};        // schedule_flush: activated, never added
    bool flush_event_ready_ = false;
    bool flush_scheduled_ = false;
    bool socket_drained_ = false;  // the scheduled flush follows a write the socket took whole
    DeadlineTimer timer_;
    bool timer_ready_ = false;
    nghttp2_session* session_ = nullptr;
    ConnectionLimits::Ticket ticket_;
    sockaddr_storage peer_{};
    socklen_t peer_len_ = 0;
    int depth_ = 0;
    bool closed_ = false;
    bool closing_ = false;   // GOAWAY queued: no more reading, close once the output is written
    bool draining_ = false;  // graceful shutdown: GOAWAY sent, streams in flight finish
    bool in_flush_ = false;
    bool lingering_ = false;     // GOAWAY written and the write side shut: input is read and dropped
    size_t lingered_bytes_ = 0;
    std::chrono::steady_clock::time_point closing_since_{};

    FrameBudget resets_;
    FrameBudget control_frames_;
    // WINDOW_UPDATEs the client has earned by receiving DATA: a client acknowledging what it read is not a flood,
    // however fast it downloads, so those do not spend the control-frame budget; unsolicited ones do.
    uint32_t window_update_credit_ = 0;
    std::chrono::steady_clock::time_point idle_since_;    // no open stream since then (valid when streams_ == 0)
    std::chrono::steady_clock::time_point output_full_since_{};  // the client stopped reading its socket
    uint32_t open_streams_ = 0;
    Http2Stream* streams_ = nullptr;       // open or finishing streams (intrusive list)
    Http2Stream* free_streams_ = nullptr;  // finished streams kept for reuse
    uint32_t free_count_ = 0;
    Http2Stream* waiting_for_room_ = nullptr;
    Http2Stream* request_flushes_ = nullptr;  // streams with staged request bytes (flush_request_later)  // streams told "no room": resumed when the output drains
};

}  // namespace edgeguard
