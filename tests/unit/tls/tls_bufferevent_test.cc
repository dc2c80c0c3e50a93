// The bufferevent factory over real sockets and a real libevent loop: a TLS server bufferevent (as the
// client connection creates it) talking to a TLS upstream bufferevent (as the upstream connection would).
#include "proxy/tls/tls_bufferevent.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <string>

#include "proxy/tls/tls_context.h"
#include "proxy/tls/tls_upstream.h"
#include "tests/unit/tls/tls_test_support.h"

namespace edgeguard {
namespace {

using tls_test::Pki;

// One side of the conversation: collects what it reads and the events it sees.
struct Side {
    std::string received;
    short events = 0;
    bool echo = false;
    event_base* base = nullptr;
    std::string stop_after;     // loop exits once `received` holds this
    bool stop_on_close = true;  // loop exits on this side's error or EOF

    static void on_read(bufferevent* bev, void* arg) {
        auto* self = static_cast<Side*>(arg);
        evbuffer* in = bufferevent_get_input(bev);
        const size_t n = evbuffer_get_length(in);
        std::string chunk(n, '\0');
        evbuffer_remove(in, chunk.data(), n);
        self->received += chunk;
        if (self->echo) bufferevent_write(bev, chunk.data(), chunk.size());
        if (!self->stop_after.empty() && self->received.find(self->stop_after) != std::string::npos) {
            event_base_loopexit(self->base, nullptr);
        }
    }
    static void on_event(bufferevent*, short what, void* arg) {
        auto* self = static_cast<Side*>(arg);
        self->events |= what;
        if (self->stop_on_close && (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)))
            event_base_loopexit(self->base, nullptr);
    }
};

class TlsBuffereventTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(Pki::dir().empty());
        base_ = event_base_new();
        ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
        evutil_make_socket_nonblocking(fds_[0]);
        evutil_make_socket_nonblocking(fds_[1]);
        TlsConfig config;
        config.certificates.push_back({Pki::file("a.pem"), Pki::file("a.key")});
        server_tls_ = build_server_tls_context(config).context;
        ASSERT_NE(server_tls_, nullptr);
    }
    void TearDown() override {
        if (server_bev_ != nullptr) bufferevent_free(server_bev_);
        if (client_bev_ != nullptr) bufferevent_free(client_bev_);
        event_base_free(base_);
    }
    void run_loop() {
        timeval limit{5, 0};  // a functional bound: a hang fails the test instead of blocking ctest
        event_base_loopexit(base_, &limit);
        event_base_dispatch(base_);
    }
    void start(bufferevent* server, bufferevent* client, Side& s, Side& c) {
        server_bev_ = server;
        client_bev_ = client;
        ASSERT_NE(server_bev_, nullptr);
        ASSERT_NE(client_bev_, nullptr);
        s.base = c.base = base_;
        bufferevent_setcb(server_bev_, &Side::on_read, nullptr, &Side::on_event, &s);
        bufferevent_setcb(client_bev_, &Side::on_read, nullptr, &Side::on_event, &c);
        bufferevent_enable(server_bev_, EV_READ | EV_WRITE);
        bufferevent_enable(client_bev_, EV_READ | EV_WRITE);
    }

    event_base* base_ = nullptr;
    int fds_[2] = {-1, -1};
    std::shared_ptr<const ServerTlsContext> server_tls_;
    bufferevent* server_bev_ = nullptr;
    bufferevent* client_bev_ = nullptr;
};

TEST_F(TlsBuffereventTest, TlsServerAndVerifyingTlsUpstreamExchangeData) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("ca.pem");
    auto client_tls = build_upstream_tls_context(upstream);
    ASSERT_NE(client_tls.context, nullptr) << client_tls.errors.front();
    Side server, client;
    server.echo = true;
    client.stop_after = "ping";
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], client_tls.context.get(), "a.test"), server, client);
    EXPECT_TRUE(is_tls_bufferevent(server_bev_));
    bufferevent_write(client_bev_, "ping", 4);
    run_loop();
    EXPECT_EQ(client.received, "ping");
    EXPECT_FALSE(tls_handshake_incomplete(server_bev_));
    SSL* ssl = bufferevent_openssl_get_ssl(client_bev_);
    EXPECT_STREQ(SSL_get_version(ssl), "TLSv1.3");
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(alpn), alpn_len), "http/1.1");
    EXPECT_EQ(server_tls_->counters().handshakes.load(), 1u);
}

TEST_F(TlsBuffereventTest, UpstreamWithTheWrongNameIsRefused) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("ca.pem");
    upstream.server_name = "not-a.test";
    auto client_tls = build_upstream_tls_context(upstream);
    ASSERT_NE(client_tls.context, nullptr);
    Side server, client;
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], client_tls.context.get(), "a.test"), server, client);
    bufferevent_write(client_bev_, "ping", 4);
    run_loop();
    EXPECT_TRUE(client.events & BEV_EVENT_ERROR);
    EXPECT_EQ(server.received, "") << "no application byte crosses an unverified connection";
}

TEST_F(TlsBuffereventTest, UpstreamSignedByAnotherCaIsRefused) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("other-ca.pem");
    auto strict = build_upstream_tls_context(upstream);
    ASSERT_NE(strict.context, nullptr);
    Side server, client;
    client.stop_on_close = false;  // wait for the server to see the client's alert
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], strict.context.get(), "a.test"), server, client);
    bufferevent_write(client_bev_, "ping", 4);
    run_loop();
    EXPECT_TRUE(client.events & BEV_EVENT_ERROR);
    EXPECT_TRUE(server.events & BEV_EVENT_ERROR);
    EXPECT_TRUE(tls_handshake_incomplete(server_bev_));
    EXPECT_EQ(server.received, "");
    EXPECT_EQ(server_tls_->counters().handshake_failures.load(), 1u);
}

TEST_F(TlsBuffereventTest, UpstreamVerificationOffAcceptsAnyCertificate) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("other-ca.pem");
    upstream.verify = false;
    auto lax = build_upstream_tls_context(upstream);
    ASSERT_NE(lax.context, nullptr);
    Side server, client;
    server.echo = true;
    client.stop_after = "ping";
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], lax.context.get(), "whatever"), server, client);
    bufferevent_write(client_bev_, "ping", 4);
    run_loop();
    EXPECT_EQ(client.received, "ping");
}

TEST_F(TlsBuffereventTest, PlainHttpToTheTlsPortGets400AndACleanClose) {
    Side server, client;
    server.stop_on_close = false;
    client.stop_after = "\r\n\r\n";
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], nullptr, "a.test"), server, client);
    EXPECT_FALSE(is_tls_bufferevent(client_bev_));
    const std::string request = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    bufferevent_write(client_bev_, request.data(), request.size());
    run_loop();
    EXPECT_TRUE(server.events & BEV_EVENT_ERROR) << "the server side learns the handshake failed";
    EXPECT_EQ(client.received.rfind("HTTP/1.1 400 ", 0), 0u) << client.received;
    EXPECT_EQ(server_tls_->counters().plain_http.load(), 1u);
    // The server frees its side, as the client connection does on BEV_EVENT_ERROR: the peer sees EOF.
    bufferevent_free(server_bev_);
    server_bev_ = nullptr;
    client.stop_after.clear();
    run_loop();
    EXPECT_TRUE(client.events & BEV_EVENT_EOF);
}

TEST_F(TlsBuffereventTest, ShutdownWriteSendsCloseNotifySoTheClientSeesACleanEof) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("ca.pem");
    auto client_tls = build_upstream_tls_context(upstream);
    ASSERT_NE(client_tls.context, nullptr);
    Side server, client;
    server.stop_after = "request";
    client.stop_on_close = true;
    start(new_client_bufferevent(base_, fds_[0], server_tls_.get()),
          new_upstream_bufferevent(base_, fds_[1], client_tls.context.get(), "a.test"), server, client);
    // Strict client: an EOF without close_notify would be reported as BEV_EVENT_ERROR.
    bufferevent_openssl_set_allow_dirty_shutdown(client_bev_, 0);
    bufferevent_write(client_bev_, "request", 7);
    run_loop();
    ASSERT_EQ(server.received, "request");
    bufferevent_write(server_bev_, "response", 8);
    bufferevent_flush(server_bev_, EV_WRITE, BEV_FLUSH);
    client.stop_after = "response";
    run_loop();
    ASSERT_EQ(client.received, "response");
    shutdown_write(server_bev_);
    client.stop_after.clear();
    run_loop();
    EXPECT_TRUE(client.events & BEV_EVENT_EOF);
    EXPECT_FALSE(client.events & BEV_EVENT_ERROR);
}

TEST_F(TlsBuffereventTest, PlainListenerGetsAPlainBufferevent) {
    bufferevent* bev = new_client_bufferevent(base_, fds_[0], nullptr);
    ASSERT_NE(bev, nullptr);
    EXPECT_FALSE(is_tls_bufferevent(bev));
    bufferevent_free(bev);
    close(fds_[1]);
}

// The way an upstream connection is opened: bufferevent first (fd -1), then bufferevent_socket_connect to a
// real TCP listener on loopback, whose accepted sockets get server-side TLS bufferevents.
TEST_F(TlsBuffereventTest, UpstreamConnectsWithBuffereventSocketConnectOverTcp) {
    struct Accepted {
        const ServerTlsContext* tls;
        bufferevent* bev = nullptr;
        Side side;
    } accepted{server_tls_.get(), nullptr, {}};
    accepted.side.echo = true;
    accepted.side.base = base_;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    evconnlistener* listener = evconnlistener_new_bind(
        base_,
        [](evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void* arg) {
            auto* a = static_cast<Accepted*>(arg);
            a->bev = new_client_bufferevent(evconnlistener_get_base(l), fd, a->tls);
            bufferevent_setcb(a->bev, &Side::on_read, nullptr, &Side::on_event, &a->side);
            bufferevent_enable(a->bev, EV_READ | EV_WRITE);
        },
        &accepted, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16, reinterpret_cast<sockaddr*>(&addr),
        sizeof addr);
    ASSERT_NE(listener, nullptr);
    socklen_t len = sizeof addr;
    getsockname(evconnlistener_get_fd(listener), reinterpret_cast<sockaddr*>(&addr), &len);

    UpstreamTlsConfig upstream;
    upstream.ca_file = Pki::file("ca.pem");
    upstream.server_name = "a.test";
    auto client_tls = build_upstream_tls_context(upstream);
    ASSERT_NE(client_tls.context, nullptr);
    Side client;
    client.base = base_;
    client.stop_after = "pong";
    client_bev_ = new_upstream_bufferevent(base_, -1, client_tls.context.get(), "127.0.0.1");
    ASSERT_NE(client_bev_, nullptr);
    bufferevent_setcb(client_bev_, &Side::on_read, nullptr, &Side::on_event, &client);
    ASSERT_EQ(bufferevent_socket_connect(client_bev_, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    bufferevent_enable(client_bev_, EV_READ | EV_WRITE);
    bufferevent_write(client_bev_, "pong", 4);
    run_loop();
    EXPECT_EQ(client.received, "pong");
    EXPECT_TRUE(client.events & BEV_EVENT_CONNECTED)
        << "CONNECTED is reported once the TLS handshake is done";
    if (accepted.bev != nullptr) bufferevent_free(accepted.bev);
    evconnlistener_free(listener);
    close(fds_[0]);
    close(fds_[1]);
}

TEST(UpstreamTlsContextTest, MissingCaFileIsAnError) {
    UpstreamTlsConfig upstream;
    upstream.ca_file = "/nonexistent/ca.pem";
    auto errors = validate_upstream_tls_config(upstream);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_NE(errors[0].find("/nonexistent/ca.pem"), std::string::npos);
}

}  // namespace
}  // namespace edgeguard
