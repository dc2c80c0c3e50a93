// Admin listener over real loopback sockets: health, readiness flips, Prometheus scrape, allowlist, reload.
#include "proxy/ops/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>

#include "proxy/ops/metrics.h"

namespace edgeguard {
namespace {

struct Response {
    int status = 0;
    std::string head;
    std::string body;
};

// One request on a fresh connection (Connection: close), optionally from a chosen loopback source address.
Response http(uint16_t port, const std::string& method, const std::string& path,
              const char* source = nullptr) {
    Response r;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return r;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (source) {
        sockaddr_in src{};
        src.sin_family = AF_INET;
        inet_pton(AF_INET, source, &src.sin_addr);
        if (bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
            close(fd);
            return r;
        }
    }
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        close(fd);
        return r;
    }
    std::string req =
        method + " " + path + " HTTP/1.1\r\nHost: admin\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    if (send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        close(fd);
        return r;
    }
    std::string all;
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<size_t>(n));
    close(fd);
    size_t end = all.find("\r\n\r\n");
    if (all.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return r;
    r.status = std::stoi(all.substr(9, 3));
    r.head = all.substr(0, end);
    r.body = all.substr(end + 4);
    return r;
}

std::unique_ptr<AdminServer> start(Metrics& m, AdminServer::Options o) {
    o.address = {"127.0.0.1", 0};
    std::string error;
    auto s = AdminServer::start(o, m, error);
    EXPECT_TRUE(s) << error;
    if (s) {
        EXPECT_NE(s->port(), 0);
    }
    return s;
}

TEST(AdminServer, HealthzIsAlwaysOk) {
    Metrics m(1);
    auto s = start(m, {});
    ASSERT_TRUE(s);
    auto r = http(s->port(), "GET", "/healthz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"status\":\"ok\"}\n");
    EXPECT_NE(r.head.find("Content-Type: application/json"), std::string::npos);
}

TEST(AdminServer, ReadyzFollowsSetReady) {
    Metrics m(1);
    auto s = start(m, {});
    ASSERT_TRUE(s);
    EXPECT_EQ(http(s->port(), "GET", "/readyz").status, 503);  // starting
    s->set_ready(true);
    auto r = http(s->port(), "GET", "/readyz");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, "{\"status\":\"ready\"}\n");
    s->set_ready(false);  // draining
    EXPECT_EQ(http(s->port(), "GET", "/readyz").status, 503);
    EXPECT_EQ(http(s->port(), "HEAD", "/readyz").status, 503);
}

TEST(AdminServer, MetricsServesPrometheusTextThatMoves) {
    Metrics m(1);
    RouteConfig route;
    route.name = "capture";
    Config c;
    c.routes = {route};
    auto ids = m.register_config(c);
    auto s = start(m, {});
    ASSERT_TRUE(s);
    m.shard(0).request_done(ids.routes[0], 200, 1000, 1, 1);
    auto r = http(s->port(), "GET", "/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.head.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
    EXPECT_NE(r.body.find("# TYPE edgeguard_requests_total counter\n"), std::string::npos);
    EXPECT_NE(r.body.find("edgeguard_requests_total{route=\"capture\",code=\"2xx\"} 1\n"), std::string::npos);
    m.shard(0).request_done(ids.routes[0], 200, 1000, 1, 1);
    EXPECT_NE(http(s->port(), "GET", "/metrics")
                  .body.find("edgeguard_requests_total{route=\"capture\",code=\"2xx\"} 2\n"),
              std::string::npos);
}

TEST(AdminServer, UnknownPathsAndWrongMethods) {
    Metrics m(1);
    auto s = start(m, {});
    ASSERT_TRUE(s);
    EXPECT_EQ(http(s->port(), "GET", "/nope").status, 404);
    EXPECT_EQ(http(s->port(), "GET", "/reload").status, 404);  // no reload handler given
    auto r = http(s->port(), "POST", "/metrics");
    EXPECT_EQ(r.status, 405);
    EXPECT_NE(r.head.find("Allow: GET, HEAD"), std::string::npos);
}

TEST(AdminServer, AllowlistRefusesOtherPeers) {
    Metrics m(1);
    AdminServer::Options o;
    o.allow.add(*Cidr::parse("127.0.0.1/32"));
    auto s = start(m, o);
    ASSERT_TRUE(s);
    EXPECT_EQ(http(s->port(), "GET", "/healthz", "127.0.0.1").status, 200);
    // The whole 127/8 is loopback: a client bound to 127.0.0.2 is a different, unlisted peer.
    EXPECT_EQ(http(s->port(), "GET", "/healthz", "127.0.0.2").status, 403);
    EXPECT_EQ(http(s->port(), "GET", "/metrics", "127.0.0.2").status, 403);
    CidrSet wider;
    wider.add(*Cidr::parse("127.0.0.0/8"));
    s->set_allow(wider);
    EXPECT_EQ(http(s->port(), "GET", "/healthz", "127.0.0.2").status, 200);
}

TEST(AdminServer, ReloadCallsTheHandlerAndReportsFailures) {
    Metrics m(1);
    std::atomic<int> calls{0};
    std::atomic<bool> succeed{true};
    AdminServer::Options o;
    o.reload = [&] {
        ++calls;
        if (succeed) return AdminServer::ReloadResult{true, "hash abc"};
        return AdminServer::ReloadResult{false, "conf/edgeguard.yaml:3:7: unknown key \"lisen\""};
    };
    auto s = start(m, o);
    ASSERT_TRUE(s);
    EXPECT_EQ(http(s->port(), "GET", "/reload").status, 405);
    EXPECT_EQ(calls, 0);
    auto ok = http(s->port(), "POST", "/reload");
    EXPECT_EQ(ok.status, 200);
    EXPECT_EQ(ok.body, "{\"status\":\"reloaded\",\"message\":\"hash abc\"}\n");
    succeed = false;
    auto bad = http(s->port(), "POST", "/reload");
    EXPECT_EQ(bad.status, 422);
    EXPECT_EQ(bad.body,
              "{\"status\":\"reload_failed\",\"message\":\"conf/edgeguard.yaml:3:7: unknown key "
              "\\\"lisen\\\"\"}\n");
    EXPECT_EQ(calls, 2);
}

TEST(AdminServer, BusyPortIsAnErrorValue) {
    Metrics m(1);
    auto first = start(m, {});
    ASSERT_TRUE(first);
    AdminServer::Options o;
    o.address = {"127.0.0.1", first->port()};
    std::string error;
    auto second = AdminServer::start(o, m, error);
    EXPECT_FALSE(second);
    EXPECT_NE(error.find("127.0.0.1:"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgeguard
