// One downstream HTTP/1.1 connection, from accept to close, on one worker thread: the HTTP/1.1 codec that
// drives one Exchange (proxy/pipeline/exchange.h) per request. The life of a request, in order
// (client_request.cc holds the request side, client_response.cc the response framing and the tunnel,
// client_connection.cc the socket, timers, errors and closing):
//   accept -> parse head -> validate (HTTP/1.1) -> [exchange: client IP -> route -> allow/deny -> rate limit
//          -> body limit -> privacy stage -> upstream] -> body to the exchange -> response framed from the
//          exchange's ResponseHead and body bytes -> next pipelined request or close.
// Requests on one connection are handled strictly one at a time: the request parser is paused after each
// message until its response is complete, so pipelined requests are answered in order.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <llhttp.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/access/cidr.h"
#include "proxy/access/connection_limits.h"
#include "proxy/access/redis_limiter.h"
#include "proxy/config/config.h"
#include "proxy/core/deadline_timer.h"
#include "proxy/core/direct_write.h"
#include "proxy/core/downstream_connection.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/socket_reader.h"
#include "proxy/http1/head_scanner.h"
#include "proxy/http1/http_headers.h"
#include "proxy/pipeline/exchange.h"
#include "proxy/tls/tls_context.h"
#include "proxy/upstream/upstream_connection.h"
#include "proxy/upstream/upstream_pool.h"

namespace edgeguard {

class Worker;

class ClientConnection final : public DownstreamConnection, public UpstreamOwner, public DownstreamStream {
public:
    ClientConnection(Worker& worker, evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len,
                     size_t listener_index, const ServerTlsContext* tls, ConnectionLimits::Ticket ticket = {});
    ~ClientConnection();
    ClientConnection(const ClientConnection&) = delete;
    ClientConnection& operator=(const ClientConnection&) = delete;

    // False when the socket could not be set up (the connection is then already closed and deleted).
    // `tls` non-null: the listener terminates TLS with that context.
    // `ticket`: the connection's place in Worker::connection_limits(), released when it closes.
    // `listener_index`: the worker's bound listener it came through (Worker::listener_config).
    static bool accept(Worker& worker, evutil_socket_t fd, const sockaddr* peer, socklen_t peer_len,
                       size_t listener_index, const ServerTlsContext* tls, ConnectionLimits::Ticket ticket = {});
    // Graceful shutdown: close now if between requests, otherwise after the current response.
    void begin_drain() override;
    // Hard stop (the grace deadline passed): close at once, giving back what the connection owns; deletes it.
    void close_now() override { close(); }

private:
    enum class RequestPhase {
        Idle,          // waiting for the first byte of the next request (keep-alive idle timer)
        Head,          // reading request line and headers (header deadline)
        Dispatch,      // head complete, parser paused, waiting for an upstream connection
        Body,          // parser running: body streams upstream (or into the privacy buffer)
        Done,          // request fully read, parser paused until the response is complete
    };
    enum class ClientTimer { None, KeepAlive, Header, BodyIdle, Linger, StreamIdle };
    enum class PauseReason { None, HeadComplete, MessageComplete };

    // --- the request path, in order ---
    void on_request_head();
    bool validate_head();
    void on_request_complete();

    // DownstreamStream: the exchange's answers
    void request_admitted(bool buffer_body) override;
    void respond_error(int status, std::string_view message) override;
    void respond_json(int status, std::string_view json_body, std::string_view extra_header_lines) override;
    void respond_redirect(std::string_view location) override;
    void request_body_drained() override;
    void response_head(const ResponseHead& head) override;
    void response_body(const char* data, size_t len) override;
    void response_end() override;
    void response_flush() override { flush_client_stage(); }
    void reset(int status, std::string_view reason) override;
    bool response_room() const override;
    void response_upgraded(const ResponseHead& head, UpstreamConnection& conn) override;
    void hold() override { ++depth_; }
    void release() override {
        if (--depth_ == 0 && closed_) delete this;
    }

    // --- request parsing and streaming ---
    void process_client_input();
    void resume_request_parsing();
    void flush_client_stage();
    int on_request_body(const char* data, size_t len);

    // --- upgraded connections (WebSocket): a byte relay after the upstream's matching 101 ---
    void pump_tunnel();
    // The active-streams gauge for a tunnel, counted once each way (the exchange counts event streams).
    void stream_began();
    void stream_ended();

    // --- ACME HTTP-01 challenges on listeners with acme_webroot (client_acme_challenge.cc) ---
    bool answer_acme_challenge();  // false when the request was answered here
    // Runs the parser to the end of a body-less request, so a local answer can keep the connection.
    void read_bodyless_request_to_end();

    // --- HTTP/2: the client chose it (ALPN "h2", or the h2c preface on a listener with h2c: true) ---
    // True when the connection was handed to an Http2Connection (this one is then closed and gone).
    bool hand_over_to_http2();

    // --- errors and closing ---
    void respond_local(std::string_view response_bytes, bool close_after, int status);
    void record_exchange();
    void fail_with_status_or_abort(int status, std::string_view message);
    void close_after_flush();
    void discard_tunnel_upstream();
    // Takes the worker's current snapshot and this connection's listener config in it; false when the running
    // config no longer has the listener (the connection must then close).
    bool refresh_snapshot();
    void close();
    // `now`: a clock read the caller already has (one read serves both).
    void arm_client_timer(ClientTimer kind, Millis after,
                          DeadlineTimer::Clock::time_point now = DeadlineTimer::Clock::now());
    void begin_request_head();

    // UpstreamOwner, for the tunnel's upstream connection (the exchange owns it before the 101)
    void upstream_connected(UpstreamConnection& conn) override;
    void upstream_readable(UpstreamConnection& conn) override;
    void upstream_writable(UpstreamConnection& conn) override;
    void upstream_closed(UpstreamConnection& conn, short events) override;
    void upstream_timer_fired(UpstreamConnection& conn) override;

    // libevent and llhttp trampolines
    static void on_client_read(bufferevent* bev, void* arg);
    static void on_client_write(bufferevent* bev, void* arg);
    static void on_client_event(bufferevent* bev, short events, void* arg);
    static void on_client_timer(void* arg);
    static const llhttp_settings_t& request_settings();
    static const llhttp_settings_t& body_settings();
    static int req_message_begin(llhttp_t* p);
    static int req_url(llhttp_t* p, const char* at, size_t len);
    static int req_trailer_field(llhttp_t* p, const char* at, size_t len);
    static int req_headers_complete(llhttp_t* p);
    static int req_body(llhttp_t* p, const char* at, size_t len);
    static int req_chunk_header(llhttp_t* p);
    static int req_chunk_extension(llhttp_t* p, const char* at, size_t len);
    static int req_message_complete(llhttp_t* p);

    // Keeps `this` alive across a callback that may close the connection; deletes it on the way out.
    struct Entry {
        explicit Entry(ClientConnection* c) : conn(c) { ++conn->depth_; }
        ~Entry();
        ClientConnection* conn;
    };

    Worker& worker_;
    size_t listener_index_;
    // The listener's config in snapshot_, refreshed with it (refresh_snapshot), so allow/deny, TLS redirect
    // and forwarded proto always follow the running config.
    const ListenerConfig* listener_ = nullptr;
    bufferevent* bev_ = nullptr;
    SocketReader reader_;  // every change to reading the client goes through it (plain and TLS alike)
    DeadlineTimer timer_;  // the one client-side timeout; timer_kind_ says which
    bool timer_ready_ = false;
    ClientTimer timer_kind_ = ClientTimer::None;
    // The current request and its response; reused for the connection's next request.
    Exchange ex_;
    ConnectionLimits::Ticket ticket_;
    int depth_ = 0;
    bool closed_ = false;
    bool close_after_flush_ = false;
    bool lingering_ = false;
    bool draining_ = false;
    bool protocol_chosen_ = false;  // HTTP/1.1 or HTTP/2 was decided (hand_over_to_http2)

    // --- the current request (buffers keep their capacity across requests) ---
    std::shared_ptr<const Snapshot> snapshot_;
    llhttp_t req_parser_;
    RequestPhase phase_ = RequestPhase::Idle;
    PauseReason pause_reason_ = PauseReason::None;
    int pending_status_ = 0;  // status chosen inside a parser callback that returned an error
    const char* pending_message_ = "";
    std::string url_;
    RequestHeadScanner head_scanner_;
    std::string_view absolute_form_host_;  // authority of an absolute-form target (replaces Host upstream)
    HeaderList req_headers_;               // from the head scanner's accepted field lines
    uint32_t chunk_extension_bytes_ = 0;  // per chunk; extensions are never forwarded, only bounded
    std::string normalized_path_;
    std::string normalized_from_;  // the raw path normalized_path_ was made from (empty: none yet)
    std::string valid_host_;       // the last Host value found valid on this connection
    std::string_view query_;  // into url_, as the client sent it (Exchange::query is what goes upstream)
    bool keep_alive_ = true;
    bool req_has_body_ = false;
    bool req_chunked_ = false;
    uint64_t req_content_length_ = 0;
    uint64_t body_bytes_ = 0;
    bool expect_continue_ = false;
    bool upgrade_requested_ = false;   // Upgrade + Connection: upgrade (not h2c) on a body-less request
    std::string upgrade_protocol_;     // the requested Upgrade value, matched against the 101
    bool tunnel_ = false;
    bool stream_counted_ = false;      // this connection holds one count of the active-streams gauge
    bool continue_sent_ = false;
    std::string scratch_;                 // heads are built here, then written in one evbuffer_add
    WriteStage client_stage_;             // response bytes of one upstream read, sent with one writev
    bool client_direct_ = false;          // plain socket: staged bytes may be written without the bufferevent

    // --- the response, as the exchange hands it over ---
    bool resp_chunked_to_client_ = false;
    bool resp_close_client_ = false;
    bool response_started_ = false;       // a status line went to the client for this request
    UpstreamConnection* tunnel_upstream_ = nullptr;  // after a 101: the other end of the byte relay
};

}  // namespace edgeguard
