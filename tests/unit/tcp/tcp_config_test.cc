#include <gtest/gtest.h>

#include "proxy/config/config.h"
#include "proxy/tcp/tcp_config.h"

namespace edgeguard {
namespace {

const char* kBase = R"(listeners:
  - name: main
    address: 0.0.0.0:80
upstreams:
  temporal:
    servers: ["temporal:7233", "10.0.0.2:7233"]
routes: []
)";

TEST(TcpConfig, ReadsEveryField) {
    const std::string text = std::string(kBase) + R"(tcp:
  - name: temporal
    address: 0.0.0.0:7233
    upstream: temporal
    allow: [10.1.1.0/24]
    deny: 10.1.1.9
    max_connections: 50
    max_connections_per_ip: 5
    timeouts: {connect: 2s, idle: 1h, lifetime: 24h}
    proxy_protocol: v2
    buffer: 128KiB
)";
    const ConfigLoadResult r = load_config_text(text, "t.yaml");
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].str();
    ASSERT_TRUE(r.config->tcp);
    ASSERT_EQ(r.config->tcp->listeners.size(), 1u);
    const TcpListenerConfig& l = r.config->tcp->listeners[0];
    EXPECT_EQ(l.name, "temporal");
    EXPECT_EQ(l.address.port, 7233);
    EXPECT_EQ(l.upstream_index, 0u);
    EXPECT_TRUE(l.allow.contains(*IpAddress::parse("10.1.1.200")));
    EXPECT_TRUE(l.deny.contains(*IpAddress::parse("10.1.1.9")));
    EXPECT_EQ(l.max_connections, 50u);
    EXPECT_EQ(l.max_connections_per_ip, 5u);
    EXPECT_EQ(l.timeouts.connect, Millis(2000));
    EXPECT_EQ(l.timeouts.idle, Millis(3'600'000));
    EXPECT_EQ(l.timeouts.lifetime, Millis(86'400'000));
    EXPECT_EQ(l.proxy_protocol, ProxyProtocol::V2);
    EXPECT_EQ(l.buffer_bytes, 128u * 1024);
    // The upstream is used by a TCP listener: no "not used by any route" warning.
    for (const ConfigError& w : r.warnings)
        EXPECT_EQ(w.message.find("not used"), std::string::npos) << w.str();
}

TEST(TcpConfig, DefaultsAreOffAndBounded) {
    const std::string text =
        std::string(kBase) + "tcp:\n  - address: 127.0.0.1:19000\n    upstream: temporal\n";
    const ConfigLoadResult r = load_config_text(text, "t.yaml");
    ASSERT_TRUE(r.errors.empty()) << r.errors[0].str();
    const TcpListenerConfig& l = r.config->tcp->listeners[0];
    EXPECT_EQ(l.name, "tcp-1");
    EXPECT_EQ(l.proxy_protocol, ProxyProtocol::Off);
    EXPECT_TRUE(l.allow.empty());
    EXPECT_EQ(l.buffer_bytes, r.config->limits.buffer_per_direction);
    EXPECT_EQ(l.timeouts.lifetime, Millis(0));
}

TEST(TcpConfig, MistakesPointAtTheirNode) {
    const std::string text = std::string(kBase) + R"(tcp:
  - name: main
    address: 0.0.0.0:80
    upstream: temporal
    colour: blue
  - address: 127.0.0.1:9999
    upstream: temporal
    buffer: 1KB
)";
    const ConfigLoadResult r = load_config_text(text, "t.yaml");
    ASSERT_FALSE(r.config);
    std::vector<std::string> got;
    for (const ConfigError& e : r.errors) got.push_back(e.str());
    auto has = [&](const std::string& s) {
        for (const std::string& g : got)
            if (g.find(s) != std::string::npos) return true;
        return false;
    };
    EXPECT_TRUE(has("t.yaml:9:11: duplicate listener name 'main'")) << ::testing::PrintToString(got);
    EXPECT_TRUE(has("t.yaml:10:14: tcp listener 'main': 0.0.0.0:80 is already used by listener 'main'"))
        << ::testing::PrintToString(got);
    EXPECT_TRUE(has("t.yaml:12:5: ")) << ::testing::PrintToString(got);  // unknown key colour
    EXPECT_TRUE(has("t.yaml:15:13: tcp listener 2 buffer: must be between 4096"))
        << ::testing::PrintToString(got);
}

}  // namespace
}  // namespace edgeguard

namespace edgeguard {
namespace {

TEST(TcpConfig, AlpnNeedsTls) {
    const std::string text =
        std::string(kBase) + "tcp:\n  - address: 127.0.0.1:7233\n    upstream: temporal\n    alpn: [h2]\n";
    const ConfigLoadResult r = load_config_text(text, "t.yaml");
    ASSERT_FALSE(r.config);
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].str(),
              "t.yaml:11:11: tcp listener 1 alpn: needs tls (ALPN is part of the TLS handshake)");
}

TEST(TcpConfig, TlsFilesAreCheckedLikeAnHttpListeners) {
    const std::string text =
        std::string(kBase) +
        "tcp:\n  - address: 127.0.0.1:7233\n    upstream: temporal\n    tls:\n"
        "      certificates: [{cert: /nonexistent/cert.pem, key: /nonexistent/key.pem}]\n";
    const ConfigLoadResult r = load_config_text(text, "t.yaml");
    ASSERT_FALSE(r.config);
    ASSERT_FALSE(r.errors.empty());
    EXPECT_NE(r.errors[0].str().find("tcp listener 1 tls cert: file '/nonexistent/cert.pem' does not exist"),
              std::string::npos)
        << r.errors[0].str();
}

}  // namespace
}  // namespace edgeguard
