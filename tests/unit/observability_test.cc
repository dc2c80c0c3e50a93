// The operations bundle the server owns: admin, metrics and access log start from a config and follow reloads.
#include "proxy/observability.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>

namespace edgeguard {
namespace {

int http_status(uint16_t port, const std::string& method, const std::string& path, std::string* body = nullptr) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in dst{};
    dst.sin_family = AF_INET;
    dst.sin_port = htons(port);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    if (connect(fd, reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
        close(fd);
        return 0;
    }
    std::string req = method + " " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
    send(fd, req.data(), req.size(), MSG_NOSIGNAL);
    std::string all;
    char buf[8192];
    for (ssize_t n; (n = recv(fd, buf, sizeof buf, 0)) > 0;) all.append(buf, static_cast<size_t>(n));
    close(fd);
    if (all.size() < 12) return 0;
    if (body) *body = all.substr(all.find("\r\n\r\n") + 4);
    return std::stoi(all.substr(9, 3));
}

size_t count_lines(const std::string& path) {
    std::ifstream f(path);
    size_t n = 0;
    for (std::string l; std::getline(f, l);) ++n;
    return n;
}

Config config_with(const std::string& hash, const std::string& log_path) {
    Config c;
    c.hash = hash;
    c.admin.address = {"127.0.0.1", 0};
    c.access_log.output = log_path;
    RouteConfig r;
    r.name = "capture";
    c.routes = {r};
    return c;
}

TEST(Observability, StartsFollowsReloadsAndServesAdmin) {
    const std::string log_a = "/tmp/edgeguard-obs-a-" + std::to_string(getpid()) + ".log";
    const std::string log_b = "/tmp/edgeguard-obs-b-" + std::to_string(getpid()) + ".log";
    std::atomic<int> reloads{0};
    std::string error;
    auto obs = Observability::start(config_with("hash-one", log_a), 2,
                                    [&] { return AdminServer::ReloadResult{++reloads > 0, "ok"}; }, error);
    ASSERT_TRUE(obs) << error;
    const uint16_t port = obs->admin().port();
    ASSERT_NE(port, 0);
    ASSERT_EQ(obs->initial_label_ids().routes.size(), 1u);

    EXPECT_EQ(http_status(port, "GET", "/readyz"), 503);
    obs->set_ready(true);
    EXPECT_EQ(http_status(port, "GET", "/readyz"), 200);

    obs->metrics().shard(1).request_done(obs->initial_label_ids().routes[0], 200, 10, 1, 1);
    AccessLogEntry e;
    e.method = "GET";
    e.target = "/x";
    e.status = 200;
    obs->access_log().log(1, e);

    std::string metrics;
    EXPECT_EQ(http_status(port, "GET", "/metrics", &metrics), 200);
    EXPECT_NE(metrics.find("edgeguard_config_info{hash=\"hash-one\"} 1\n"), std::string::npos);
    EXPECT_NE(metrics.find("edgeguard_requests_total{route=\"capture\",code=\"2xx\"} 1\n"), std::string::npos);
    EXPECT_NE(metrics.find("edgeguard_access_log_dropped_total 0\n"), std::string::npos);

    EXPECT_EQ(http_status(port, "POST", "/reload"), 200);
    EXPECT_EQ(reloads, 1);

    auto next = config_with("hash-two", log_b);
    auto ids = obs->config_published(next, error);
    EXPECT_EQ(ids.routes, obs->initial_label_ids().routes);  // same name, same series
    obs->access_log().log(0, e);
    obs->access_log().flush();
    EXPECT_EQ(count_lines(log_a), 1u);
    EXPECT_EQ(count_lines(log_b), 1u);
    EXPECT_EQ(http_status(port, "GET", "/metrics", &metrics), 200);
    EXPECT_NE(metrics.find("edgeguard_config_info{hash=\"hash-two\"} 1\n"), std::string::npos);
    EXPECT_NE(metrics.find("edgeguard_config_reloads_total 2\n"), std::string::npos);
    obs->config_reload_failed();
    EXPECT_EQ(http_status(port, "GET", "/metrics", &metrics), 200);
    EXPECT_NE(metrics.find("edgeguard_config_reload_failures_total 1\n"), std::string::npos);

    obs.reset();
    std::remove(log_a.c_str());
    std::remove(log_b.c_str());
}

TEST(Observability, UnopenableAccessLogIsAnError) {
    std::string error;
    auto obs = Observability::start(config_with("h", "/nonexistent-dir/x/access.log"), 1, {}, error);
    EXPECT_FALSE(obs);
    EXPECT_NE(error.find("access log"), std::string::npos) << error;
}

}  // namespace
}  // namespace edgeguard
