// Config loading and validation: what `edgeguard check` and `serve` accept, and how they point at mistakes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "filters/filter_api.h"
#include "proxy/ops/check.h"
#include "tests/unit/tls/tls_test_support.h"
#include "proxy/config/config.h"
#include "proxy/config/config_values.h"

namespace edgeguard {
namespace {

using ::testing::HasSubstr;

// The smallest config that loads; tests append or alter lines to probe one thing at a time.
constexpr const char* kMinimal =
    "listeners:\n"                                   // 1
    "  - address: 127.0.0.1:8080\n"                  // 2
    "upstreams:\n"                                   // 3
    "  web: {servers: [127.0.0.1:9000]}\n"           // 4
    "routes:\n"                                      // 5
    "  - {name: web, paths: [/], upstream: web}\n";  // 6

const std::string kSourceDir = EDGEGUARD_SOURCE_DIR;

class TempDir {
  public:
    TempDir() {
        std::string tmpl = ::testing::TempDir() + "edgeguard-config-XXXXXX";
        char* made = mkdtemp(tmpl.data());
        EXPECT_NE(made, nullptr);
        path_ = tmpl;
    }
    ~TempDir() { std::system(("rm -rf '" + path_ + "'").c_str()); }
    std::string write(const std::string& name, const std::string& text) const {
        const std::string p = path_ + "/" + name;
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
};

ConfigLoadResult load(const std::string& text) {
    return load_config_text(text, "test.yaml");
}

std::string all_errors(const ConfigLoadResult& r) {
    std::string out;
    for (const auto& e : r.errors) out += e.str() + "\n";
    return out;
}

// The single error a config produced, asserting there is exactly one.
ConfigError only_error(const ConfigLoadResult& r) {
    EXPECT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_EQ(r.config, nullptr);
    return r.errors.empty() ? ConfigError{} : r.errors.front();
}

TEST(ConfigLoad, MinimalConfigLoadsWithDefaults) {
    auto r = load(kMinimal);
    ASSERT_TRUE(r.config) << all_errors(r);
    const Config& c = *r.config;
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].address.host, "127.0.0.1");
    EXPECT_EQ(c.listeners[0].address.port, 8080);
    ASSERT_EQ(c.upstreams.size(), 1u);
    EXPECT_EQ(c.upstreams[0].keepalive_idle, Millis(4000));
    ASSERT_EQ(c.routes.size(), 1u);
    EXPECT_EQ(c.routes[0].upstream_index, 0u);
    EXPECT_EQ(c.routes[0].timeouts.client_header, Millis(10'000));
    EXPECT_EQ(c.timeouts.upstream_connect, Millis(3'000));
    EXPECT_EQ(c.privacy, nullptr);
    EXPECT_EQ(c.source_path, "test.yaml");
}

TEST(ConfigLoad, HashIsSha256OfTheConfigBytes) {
    // Digest of exactly these bytes, computed with sha256sum.
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n  - {name: web, paths: [/], upstream: web}\n";
    auto r = load(text);
    ASSERT_TRUE(r.config) << all_errors(r);
    EXPECT_EQ(r.config->hash, "530b09fcf81cb0ed6597fd3fd11d186490298557514b6aadad65a6c04fc46373");
    auto changed = load(text + "# comment\n");
    ASSERT_TRUE(changed.config);
    EXPECT_NE(changed.config->hash, r.config->hash);
}

TEST(ConfigLoad, MisspelledKeyIsAnErrorAtItsLine) {
    const std::string text =
        "listeners:\n"
        "  - address: 127.0.0.1:8080\n"
        "upstreams:\n"
        "  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n"
        "  - name: web\n"
        "    paths: [/]\n"
        "    upsteam: web\n";  // line 8, column 5
    auto r = load(text);
    EXPECT_EQ(r.config, nullptr);
    bool found = false;
    for (const auto& e : r.errors) {
        if (e.message.find("unknown key 'upsteam'") == std::string::npos) continue;
        found = true;
        EXPECT_EQ(e.line, 8);
        EXPECT_EQ(e.col, 5);
        EXPECT_THAT(e.message, HasSubstr("did you mean 'upstream'?"));
        EXPECT_EQ(e.str().substr(0, 14), "test.yaml:8:5:");
    }
    EXPECT_TRUE(found) << all_errors(r);
    // The required key is then missing, which is reported too.
    EXPECT_THAT(all_errors(r), HasSubstr("needs key 'upstream'"));
}

TEST(ConfigLoad, UnknownTopLevelKey) {
    auto e = only_error(load(std::string(kMinimal) + "wokers: 4\n"));
    EXPECT_EQ(e.line, 7);
    EXPECT_EQ(e.col, 1);
    EXPECT_THAT(e.message, HasSubstr("unknown key 'wokers'"));
    EXPECT_THAT(e.message, HasSubstr("did you mean 'workers'?"));
}

TEST(ConfigLoad, WrongTypes) {
    {
        auto e = only_error(load(std::string(kMinimal) + "workers: many\n"));
        EXPECT_EQ(e.line, 7);
        EXPECT_EQ(e.col, 10);
        EXPECT_THAT(e.message, HasSubstr("workers: expected an integer from 0 to 1024"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "workers: 5000\n"));
        EXPECT_THAT(e.message, HasSubstr("got '5000'"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "access_log: {include_query: sometimes}\n"));
        EXPECT_THAT(e.message, HasSubstr("expected true or false"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "limits: [1, 2]\n"));
        EXPECT_EQ(e.line, 7);
        EXPECT_THAT(e.message, HasSubstr("limits must be a mapping"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "trusted_proxies: {a: b}\n"));
        EXPECT_THAT(e.message, HasSubstr("trusted_proxies must be a list"));
    }
}

TEST(ConfigLoad, BadDurationSizeAddressCidr) {
    {
        auto e = only_error(load(std::string(kMinimal) + "timeouts: {client_header: 10}\n"));
        EXPECT_EQ(e.line, 7);
        EXPECT_EQ(e.col, 27);
        EXPECT_THAT(e.message, HasSubstr("timeouts.client_header: expected a duration"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "graceful_shutdown: 5 minutes\n"));
        EXPECT_THAT(e.message, HasSubstr("got '5 minutes'"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "limits: {max_body: 20 megs}\n"));
        EXPECT_THAT(e.message, HasSubstr("limits.max_body: expected a size"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "admin: {address: 127.0.0.1:99999}\n"));
        EXPECT_THAT(e.message, HasSubstr("admin.address: expected host:port"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "admin: {address: '::1:9180'}\n"));
        EXPECT_THAT(e.message, HasSubstr("[v6]:port"));
    }
    {
        auto e = only_error(load(std::string(kMinimal) + "trusted_proxies: [10.0.0.0/8, 10.1.1.0/33]\n"));
        EXPECT_EQ(e.line, 7);
        EXPECT_EQ(e.col, 31);
        EXPECT_THAT(e.message, HasSubstr("got '10.1.1.0/33'"));
    }
}

TEST(ConfigLoad, RedirectHttpsTo) {
    const std::string base =
        "upstreams:\n  web: {servers: [127.0.0.1:9000]}\nroutes:\n  - {name: web, paths: [/], upstream: "
        "web}\n";
    auto ok = load(base + "listeners:\n  - {address: 127.0.0.1:8080, redirect_https_to: ':8443'}\n");
    ASSERT_TRUE(ok.config) << all_errors(ok);
    EXPECT_EQ(ok.config->listeners[0].redirect_https_to, ":8443");
    auto e = only_error(
        load(base + "listeners:\n  - {address: 127.0.0.1:8080, redirect_https_to: 'https://x/'}\n"));
    EXPECT_EQ(e.line, 6);
    EXPECT_THAT(e.message, HasSubstr("redirect_https_to: expected ':<port>'"));
}

TEST(ConfigLoad, Http2ListenerKeysAndLimits) {
    const std::string base =
        "upstreams:\n  web: {servers: [127.0.0.1:9000]}\nroutes:\n  - {name: web, paths: [/], upstream: "
        "web}\n";
    auto plain = load(std::string(kMinimal));
    ASSERT_TRUE(plain.config) << all_errors(plain);
    EXPECT_FALSE(plain.config->listeners[0].http2) << "HTTP/2 on a plain listener only with h2c";
    EXPECT_FALSE(plain.config->listeners[0].h2c) << "h2c is off by default";
    EXPECT_EQ(plain.config->http2.max_concurrent_streams, 100u);

    auto h2c = load(base + "listeners:\n  - {address: 127.0.0.1:8080, h2c: true}\n"
                           "http2:\n  max_concurrent_streams: 8\n  max_header_list_size: 16KiB\n"
                           "  stream_resets: {burst: 30, rate: 5/s}\n  control_frames: {burst: 40, rate: 600/m}\n"
                           "  zero_window_timeout: 2s\n  idle_timeout: 90s\n  max_continuations: 3\n");
    ASSERT_TRUE(h2c.config) << all_errors(h2c);
    EXPECT_TRUE(h2c.config->listeners[0].h2c);
    const Http2Config& h2 = h2c.config->http2;
    EXPECT_EQ(h2.max_concurrent_streams, 8u);
    EXPECT_EQ(h2.max_header_list_bytes, 16u * 1024);
    EXPECT_EQ(h2.stream_resets_burst, 30u);
    EXPECT_DOUBLE_EQ(h2.stream_resets_per_second, 5);
    EXPECT_EQ(h2.control_frames_burst, 40u);
    EXPECT_DOUBLE_EQ(h2.control_frames_per_second, 10);
    EXPECT_EQ(h2.zero_window_timeout, Millis(2'000));
    EXPECT_EQ(h2.idle_timeout, Millis(90'000));
    EXPECT_EQ(h2.max_continuations, 3u);

    auto e = only_error(load(base + "listeners:\n  - {address: 127.0.0.1:8080, http2: true}\n"));
    EXPECT_EQ(e.line, 6);
    EXPECT_THAT(e.message, HasSubstr("http2: needs tls"));
    e = only_error(load(std::string(kMinimal) + "http2:\n  max_concurrent_streams: 0\n"));
    EXPECT_THAT(e.message, HasSubstr("http2.max_concurrent_streams"));
    e = only_error(load(std::string(kMinimal) + "http2:\n  stream_resets: {burst: 10}\n"));
    EXPECT_THAT(e.message, HasSubstr("rate"));
    e = only_error(load(std::string(kMinimal) + "http2:\n  max_streams: 10\n"));
    EXPECT_THAT(e.message, HasSubstr("max_streams"));
}

TEST(ConfigLoad, HostBitsInCidrWarn) {
    auto r = load(std::string(kMinimal) + "trusted_proxies: [10.1.1.7/24]\n");
    ASSERT_TRUE(r.config) << all_errors(r);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_THAT(r.warnings[0].message, HasSubstr("it means 10.1.1.0/24"));
}

TEST(ConfigLoad, UnknownUpstreamAndRateLimit) {
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n"
        "  - {name: web, paths: [/], upstream: wbe, rate_limit: nope}\n";  // line 6
    auto r = load(text);
    ASSERT_EQ(r.errors.size(), 2u) << all_errors(r);
    EXPECT_THAT(all_errors(r), HasSubstr("test.yaml:6:39: route 'web': unknown upstream 'wbe'"));
    EXPECT_THAT(all_errors(r), HasSubstr("test.yaml:6:56: route 'web': unknown rate limit 'nope'"));
}

TEST(ConfigLoad, RoutePathsMustStartWithSlashAndBeNormal) {
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n"
        "  - {name: a, paths: [e], upstream: web}\n"
        "  - {name: b, paths: ['/a//b'], upstream: web}\n"
        "  - {name: c, paths: ['/%65'], upstream: web}\n";
    auto r = load(text);
    EXPECT_THAT(all_errors(r), HasSubstr("test.yaml:6:23: route 'a': path 'e' must start with '/'"));
    EXPECT_THAT(all_errors(r),
                HasSubstr("test.yaml:7:23: route 'b': path '/a//b' is not in normal form (write '/a/b')"));
    EXPECT_THAT(all_errors(r),
                HasSubstr("test.yaml:8:23: route 'c': path '/%65' is not in normal form (write '/e')"));
}

TEST(ConfigLoad, ShadowedRoutePathIsAnError) {
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\n"
        "upstreams:\n  capture: {servers: ['capture:3000']}\n  ai: {servers: ['capture-ai:3000']}\n"
        "routes:\n"
        "  - {name: capture, paths: [/i/v0], upstream: capture, privacy: none}\n"  // line 7
        "  - {name: ai, paths: [/i/v0/ai], upstream: ai, privacy: none}\n";        // line 8
    auto e = only_error(load(text));
    EXPECT_EQ(e.line, 8);
    EXPECT_THAT(e.message,
                HasSubstr("path '/i/v0/ai' can never match, route 'capture' path '/i/v0' (line 7)"));
}

TEST(ConfigLoad, IngestionRouteWithoutAProfileIsAnErrorUnlessItSaysNone) {
    const std::string routes =
        "listeners:\n  - address: 127.0.0.1:8080\n"
        "upstreams:\n  capture-logs: {servers: ['capture-logs:4318']}\n  app: {servers: ['app:80']}\n"
        "routes:\n";
    // By path (whatever the upstream is called) and by the ingestion service's name.
    auto by_path = load(routes + "  - {name: logs, paths: [/i/v1/logs], upstream: app}\n");
    EXPECT_FALSE(by_path.config);
    EXPECT_THAT(all_errors(by_path), HasSubstr("test.yaml:7:5: route 'logs' goes to PostHog ingestion (path "
                                               "/i/v1/logs) without a privacy profile"));
    auto by_service = load(routes + "  - {name: otel, paths: [/otel], upstream: capture-logs}\n");
    EXPECT_THAT(all_errors(by_service), HasSubstr("(upstream capture-logs)"));
    auto below = load(routes + "  - {name: hooks, paths: [/public/webhooks/stripe], upstream: app}\n");
    EXPECT_THAT(all_errors(below), HasSubstr("(path /public/webhooks/stripe)"));
    // An explicit opt-out loads; so does a route that ingests nothing.
    auto none = load(routes + "  - {name: logs, paths: [/i/v1/logs], upstream: capture-logs, privacy: none}\n"
                              "  - {name: web, paths: [/], upstream: app}\n");
    ASSERT_TRUE(none.config) << all_errors(none);
    EXPECT_TRUE(none.config->routes[0].privacy_none);
    EXPECT_TRUE(none.config->routes[0].privacy_profile.empty());
}

TEST(ConfigLoad, DuplicateNames) {
    const std::string text =
        "listeners:\n  - {name: a, address: 127.0.0.1:8080}\n  - {name: a, address: 127.0.0.1:8080}\n"
        "upstreams:\n  web: {servers: [127.0.0.1:9000]}\n  web: {servers: [127.0.0.1:9001]}\n"
        "routes:\n  - {name: web, paths: [/x], upstream: web}\n  - {name: web, paths: [/y], upstream: web}\n";
    auto r = load(text);
    const std::string errors = all_errors(r);
    EXPECT_THAT(errors, HasSubstr("test.yaml:3:12: duplicate listener name 'a'"));
    EXPECT_THAT(errors, HasSubstr("test.yaml:3:24: two listeners on 127.0.0.1:8080"));
    EXPECT_THAT(errors, HasSubstr("test.yaml:6:3: duplicate name 'web' in upstreams"));
    EXPECT_THAT(errors, HasSubstr("test.yaml:9:12: duplicate route name 'web'"));
    EXPECT_EQ(r.errors.size(), 4u) << errors;
}

TEST(ConfigLoad, SeveralErrorsAreAllReported) {
    const std::string text =
        "workers: -1\n"                                                  // 1
        "listeners:\n"                                                   // 2
        "  - address: localhost\n"                                       // 3
        "upstreams:\n"                                                   // 4
        "  web: {servers: [127.0.0.1:9000], dns_refresh: 10ms}\n"        // 5
        "routes:\n"                                                      // 6
        "  - {name: web, paths: [/], upstream: web, client_ip: hide}\n"  // 7
        "timeouts: {stream_idle: 0s}\n";                                 // 8
    auto r = load(text);
    ASSERT_EQ(r.errors.size(), 5u) << all_errors(r);
    std::vector<int> lines;
    for (const auto& e : r.errors) lines.push_back(e.line);
    EXPECT_THAT(lines, ::testing::UnorderedElementsAre(1, 3, 5, 7, 8));
}

TEST(ConfigLoad, MissingRequiredSections) {
    auto r = load("workers: 2\n");
    const std::string errors = all_errors(r);
    EXPECT_THAT(errors, HasSubstr("test.yaml:1:1: config needs key 'listeners'"));
    EXPECT_THAT(errors, HasSubstr("config needs key 'upstreams'"));
    EXPECT_THAT(errors, HasSubstr("config needs key 'routes'"));
}

TEST(ConfigLoad, EmptySectionsAreCaught) {
    auto e = only_error(load("listeners:\nupstreams: {}\nroutes: []\n"));
    EXPECT_EQ(e.line, 1);
    EXPECT_THAT(e.message, HasSubstr("needs at least one listener"));
    auto r = load("listeners: [{address: '127.0.0.1:1'}]\nupstreams:\nroutes:\n");
    ASSERT_TRUE(r.config) << all_errors(r);
    ASSERT_EQ(r.warnings.size(), 1u);
    EXPECT_THAT(r.warnings[0].message, HasSubstr("every request will get 404"));
}

TEST(ConfigLoad, YamlSyntaxErrorHasPosition) {
    auto r = load("listeners:\n  - address: [127.0.0.1:8080\nupstreams: {}\n");
    ASSERT_FALSE(r.errors.empty());
    EXPECT_EQ(r.config, nullptr);
    EXPECT_GT(r.errors[0].line, 0);
    EXPECT_THAT(r.errors[0].message, HasSubstr("YAML syntax error"));
}

TEST(ConfigLoad, EmptyConfigIsAnError) {
    auto e = only_error(load(""));
    EXPECT_THAT(e.message, HasSubstr("config is empty"));
    EXPECT_EQ(e.str(), "test.yaml: config is empty");
}

TEST(ConfigLoad, RouteTimeoutsOverrideGlobalsKeyByKey) {
    const std::string text =
        std::string(kMinimal) +
        "  - {name: live, paths: [/livestream], upstream: web, strip_prefix: /livestream,\n"
        "     timeouts: {stream_idle: 30m, upstream_body_idle: 1.5h}}\n"
        "timeouts: {client_header: 5s, stream_idle: 90s}\n";
    // The catch-all route comes first and would shadow /livestream; put it last.
    std::string reordered = text;
    reordered.replace(reordered.find("  - {name: web, paths: [/], upstream: web}\n"),
                      std::string("  - {name: web, paths: [/], upstream: web}\n").size(), "");
    reordered.replace(reordered.find("timeouts: {client_header"), 0,
                      "  - {name: web, paths: [/], upstream: web}\n");
    auto r = load(reordered);
    ASSERT_TRUE(r.config) << all_errors(r) << reordered;
    const RouteConfig& live = r.config->routes[0];
    EXPECT_EQ(live.name, "live");
    EXPECT_EQ(live.strip_prefix, "/livestream");
    EXPECT_EQ(live.timeouts.stream_idle, Millis(30 * 60'000));
    EXPECT_EQ(live.timeouts.upstream_body_idle, Millis(90 * 60'000));
    EXPECT_EQ(live.timeouts.client_header, Millis(5'000));     // global override
    EXPECT_EQ(live.timeouts.upstream_connect, Millis(3'000));  // built-in default
    EXPECT_EQ(r.config->routes[1].timeouts.stream_idle, Millis(90'000));
}

TEST(ConfigLoad, RouteBodyLimitFallsBackToGlobal) {
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "limits: {max_body: 1MiB}\n"
        "routes:\n"
        "  - {name: hooks, paths: [/public/webhooks, /public/m/], upstream: web, max_body: 512KB, privacy: none}\n"
        "  - {name: web, paths: [/], upstream: web}\n";
    auto r = load(text);
    ASSERT_TRUE(r.config) << all_errors(r);
    EXPECT_EQ(r.config->routes[0].max_body_bytes, 512'000u);
    EXPECT_EQ(r.config->routes[1].max_body_bytes, 1024u * 1024u);
}

TEST(ConfigLoad, RateLimitsAndSharedLimits) {
    const std::string text =
        std::string(kMinimal) +
        "rate_limits:\n"
        "  ip: {rate: 600/m, burst: 20, exempt: [127.0.0.0/8, '::1']}\n"
        "  token: {rate: 5, key: 'header:X-Api-Key'}\n"
        "  whole: {rate: 0.5/s, key: route}\n"
        "shared_limits: {redis_url: 'redis://127.0.0.1:6390/2', timeout: 20ms, fail_open: false}\n";
    auto r = load(text);
    ASSERT_TRUE(r.config) << all_errors(r);
    const auto& rl = r.config->rate_limits;
    ASSERT_EQ(rl.size(), 3u);
    EXPECT_DOUBLE_EQ(rl[0].rate_per_second, 10.0);
    EXPECT_EQ(rl[0].burst, 20u);
    EXPECT_EQ(rl[0].key, RateLimitConfig::Key::ClientIp);
    EXPECT_EQ(rl[0].exempt.cidrs().size(), 2u);
    EXPECT_EQ(rl[1].key, RateLimitConfig::Key::Header);
    EXPECT_EQ(rl[1].header, "X-Api-Key");
    EXPECT_EQ(rl[1].burst, 5u);  // default: one second's worth
    EXPECT_EQ(rl[2].key, RateLimitConfig::Key::Route);
    EXPECT_EQ(rl[2].burst, 1u);
    const auto& s = r.config->shared_limits;
    EXPECT_EQ(s.redis_address.host, "127.0.0.1");
    EXPECT_EQ(s.redis_address.port, 6390);
    EXPECT_EQ(s.redis_db, 2u);
    EXPECT_EQ(s.timeout, Millis(20));
    EXPECT_FALSE(s.fail_open);

    auto bad = load(std::string(kMinimal) +
                    "rate_limits:\n  x: {rate: 0/s, key: cookie}\n"
                    "shared_limits: {redis_url: 'http://x:1'}\n");
    EXPECT_EQ(bad.errors.size(), 3u) << all_errors(bad);
}

// check loads listener certificates as serve would, so the files must be real PEM: a throw-away PKI.
static std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

TEST(ConfigLoad, RelativeFilesResolveAgainstTheConfigDirectory) {
    const std::string& pki = tls_test::Pki::dir();
    ASSERT_FALSE(pki.empty()) << "openssl CLI could not make test certificates";
    TempDir dir;
    dir.write("cert.pem", read_file(pki + "/a.pem"));
    dir.write("key.pem", read_file(pki + "/a.key"));
    const std::string text =
        "listeners:\n"
        "  - name: https\n"
        "    address: '[::1]:8443'\n"
        "    tls: {certificates: [{cert: cert.pem, key: key.pem}], min_version: '1.3'}\n"
        "  - name: tls-missing\n"
        "    address: 127.0.0.1:8444\n"
        "    tls: {certificates: [{cert: cert.pem, key: nokey.pem}]}\n"  // line 7
        "upstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n  - {name: web, paths: [/], upstream: web}\n"
        "access_log: {output: logs/access.log}\n";
    const std::string path = dir.write("edgeguard.yaml", text);
    auto r = load_config(path);
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_EQ(r.errors[0].line, 7);
    EXPECT_THAT(r.errors[0].message, HasSubstr("'" + dir.path() + "/nokey.pem' does not exist"));

    // A key that exists but belongs to another certificate is caught by check, not at startup.
    dir.write("nokey.pem", read_file(pki + "/b.key"));
    r = load_config(path);
    ASSERT_EQ(r.errors.size(), 1u) << all_errors(r);
    EXPECT_EQ(r.errors[0].line, 7);

    dir.write("nokey.pem", read_file(pki + "/a.key"));
    r = load_config(path);
    ASSERT_TRUE(r.config) << all_errors(r);
    const auto& tls = r.config->listeners[0].tls;
    ASSERT_TRUE(tls.has_value());
    EXPECT_EQ(tls->certificates[0].cert_file, dir.path() + "/cert.pem");
    EXPECT_EQ(tls->min_version, "1.3");
    EXPECT_EQ(r.config->listeners[0].address.host, "::1");
    EXPECT_EQ(r.config->listeners[0].address.str(), "[::1]:8443");
    EXPECT_EQ(r.config->access_log.output, dir.path() + "/logs/access.log");
}

TEST(ConfigLoad, UpstreamTls) {
    TempDir dir;
    const std::string base =
        "listeners:\n  - address: 127.0.0.1:8080\nroutes:\n  - {name: web, paths: [/], upstream: web}\n"
        "upstreams:\n";
    auto plain = load_config(
        dir.write("a.yaml", base + "  web: {servers: [127.0.0.1:9443], tls: {server_name: a.test}}\n"));
    ASSERT_TRUE(plain.config) << all_errors(plain);
    ASSERT_TRUE(plain.config->upstreams[0].tls.has_value());
    EXPECT_EQ(plain.config->upstreams[0].tls->server_name, "a.test");
    EXPECT_TRUE(plain.config->upstreams[0].tls->verify);

    auto missing = load_config(
        dir.write("b.yaml", base + "  web: {servers: [127.0.0.1:9443], tls: {ca_file: ca.pem}}\n"));
    ASSERT_EQ(missing.errors.size(), 1u) << all_errors(missing);
    EXPECT_EQ(missing.errors[0].line, 6);
    EXPECT_THAT(missing.errors[0].message,
                HasSubstr("tls.ca_file: file '" + dir.path() + "/ca.pem' does not exist"));

    dir.write("ca.pem", "not a certificate\n");
    auto garbage = load_config(dir.path() + "/b.yaml");
    EXPECT_FALSE(garbage.config);  // the CA bundle is loaded as serve would
    EXPECT_THAT(all_errors(garbage), HasSubstr("upstream 'web' tls: "));

    auto unverified =
        load_config(dir.write("c.yaml", base + "  web: {servers: [127.0.0.1:9443], tls: {verify: false}}\n"));
    ASSERT_TRUE(unverified.config) << all_errors(unverified);
    ASSERT_EQ(unverified.warnings.size(), 1u);
    EXPECT_THAT(unverified.warnings[0].message, HasSubstr("not checked"));

    auto typo =
        load_config(dir.write("d.yaml", base + "  web: {servers: [127.0.0.1:9443], tls: {ca_fil: x}}\n"));
    EXPECT_THAT(all_errors(typo),
                HasSubstr("unknown key 'ca_fil' in upstream 'web' tls (did you mean 'ca_file'?)"));
}

TEST(ConfigLoad, MissingPrivacyRulesFile) {
    TempDir dir;
    const std::string text = std::string(kMinimal) + "privacy: {rules: rules/privacy.yaml}\n";
    const std::string path = dir.write("edgeguard.yaml", text);
    auto e = only_error(load_config(path));
    EXPECT_EQ(e.file, path);
    EXPECT_EQ(e.line, 7);
    EXPECT_EQ(e.col, 18);
    EXPECT_THAT(e.message,
                HasSubstr("privacy.rules: file '" + dir.path() + "/rules/privacy.yaml' does not exist"));
}

TEST(ConfigLoad, PrivacyProfileWithoutRulesIsAnError) {
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n  - {name: web, paths: [/], upstream: web, privacy: events}\n";
    auto e = only_error(load(text));
    EXPECT_THAT(e.message, HasSubstr("privacy profile 'events' needs privacy.rules to be set"));
}

TEST(ConfigLoad, PrivacyProfilesMustExistInTheRuleSet) {
    TempDir dir;
    dir.write("rules.yaml", "version: 1\nprofiles:\n  events: {rules: []}\n");
    const std::string text =
        "listeners:\n  - address: 127.0.0.1:8080\nupstreams:\n  web: {servers: [127.0.0.1:9000]}\n"
        "routes:\n"
        "  - {name: e, paths: [/e], upstream: web, privacy: events}\n"
        "  - {name: web, paths: [/], upstream: web, privacy: flags}\n"  // line 7
        "privacy: {rules: rules.yaml}\n";
    auto e = only_error(load_config(dir.write("edgeguard.yaml", text)));
    EXPECT_EQ(e.line, 7);
    EXPECT_THAT(e.message,
                HasSubstr("privacy profile 'flags' is not defined in " + dir.path() + "/rules.yaml"));

    // Errors inside the rules file keep that file's name and positions.
    const std::string rules_path = dir.write("rules.yaml", "version: 1\nprofiles:\n  events: {rulez: []}\n");
    auto r = load_config(dir.path() + "/edgeguard.yaml");
    EXPECT_EQ(r.config, nullptr);
    bool found = false;
    for (const auto& err : r.errors) found = found || (err.file == rules_path && err.line == 3);
    EXPECT_TRUE(found) << all_errors(r);
}

TEST(ConfigLoad, HashCoversTheRulesFile) {
    TempDir dir;
    dir.write("rules.yaml", "version: 1\nprofiles:\n  events: {rules: []}\n");
    const std::string path =
        dir.write("edgeguard.yaml", std::string(kMinimal) + "privacy: {rules: rules.yaml}\n");
    auto a = load_config(path);
    ASSERT_TRUE(a.config) << all_errors(a);
    ASSERT_TRUE(a.config->privacy);
    EXPECT_TRUE(a.config->privacy->has_profile("events"));
    dir.write("rules.yaml", "version: 1\nprofiles:\n  events: {rules: []}\n# changed\n");
    auto b = load_config(path);
    ASSERT_TRUE(b.config) << all_errors(b);
    EXPECT_NE(a.config->hash, b.config->hash);
}

TEST(ConfigLoad, MissingConfigFile) {
    auto r = load_config("/nonexistent/edgeguard.yaml");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_THAT(r.errors[0].str(), HasSubstr("/nonexistent/edgeguard.yaml: cannot read config file"));
}

// The shipped default config; needs the filter helper's conf/privacy.yaml, which it names.
class DefaultConfig : public ::testing::Test {
  protected:
    void SetUp() override {
        if (access((kSourceDir + "/conf/privacy.yaml").c_str(), R_OK) != 0) {
            GTEST_SKIP() << "conf/privacy.yaml not present yet";
        }
        result_ = load_config(kSourceDir + "/conf/edgeguard.yaml");
    }
    ConfigLoadResult result_;
};

TEST_F(DefaultConfig, LoadsWithoutErrorsOrWarnings) {
    ASSERT_TRUE(result_.config) << all_errors(result_);
    for (const auto& w : result_.warnings) ADD_FAILURE() << w.str();
    const Config& c = *result_.config;
    ASSERT_EQ(c.listeners.size(), 1u);
    EXPECT_EQ(c.listeners[0].address.str(), "0.0.0.0:80");
    EXPECT_TRUE(c.listeners[0].allow.contains(*IpAddress::parse("10.1.1.200")));
    EXPECT_TRUE(c.listeners[0].allow.contains(*IpAddress::parse("127.0.0.2")));
    EXPECT_TRUE(c.listeners[0].allow.contains(*IpAddress::parse("::1")));
    EXPECT_FALSE(c.listeners[0].allow.contains(*IpAddress::parse("10.1.2.1")));
    EXPECT_EQ(c.admin.address.str(), "127.0.0.1:9180");
    EXPECT_EQ(c.upstreams.size(), 10u);
    ASSERT_TRUE(c.privacy);
    for (const char* profile : {"events", "flags", "replay"})
        EXPECT_TRUE(c.privacy->has_profile(profile)) << profile;
    EXPECT_EQ(c.hash.size(), 64u);
}

TEST_F(DefaultConfig, CheckPrintsOneSummaryLine) {
    std::ostringstream out, err;
    EXPECT_EQ(run_check(kSourceDir + "/conf/edgeguard.yaml", out, err), 0) << err.str();
    const std::string summary = out.str();
    EXPECT_THAT(summary, HasSubstr("OK: 1 listener, 10 upstreams, 10 routes, privacy rules "));
    EXPECT_EQ(std::count(summary.begin(), summary.end(), '\n'), 1);
    EXPECT_EQ(err.str(), "");
}

TEST(Check, ErrorsGoToStderrAsFileLineColAndExitOne) {
    TempDir dir;
    const std::string path = dir.write("bad.yaml", std::string(kMinimal) + "limits: {max_hedaers: 10}\n");
    std::ostringstream out, err;
    EXPECT_EQ(run_check(path, out, err), 1);
    EXPECT_EQ(out.str(), "");
    EXPECT_THAT(
        err.str(),
        HasSubstr(path + ":7:10: unknown key 'max_hedaers' in limits (did you mean 'max_headers'?)\n"));
}

TEST(Check, SuccessWithoutPrivacy) {
    TempDir dir;
    const std::string path = dir.write("ok.yaml", kMinimal);
    std::ostringstream out, err;
    EXPECT_EQ(run_check(path, out, err), 0);
    EXPECT_EQ(out.str(), "edgeguard: " + path + " OK: 1 listener, 1 upstream, 1 route, no privacy rules\n");
}

TEST(ConfigValues, Durations) {
    EXPECT_EQ(parse_duration("500ms"), Millis(500));
    EXPECT_EQ(parse_duration("10s"), Millis(10'000));
    EXPECT_EQ(parse_duration("30m"), Millis(1'800'000));
    EXPECT_EQ(parse_duration("1h"), Millis(3'600'000));
    EXPECT_EQ(parse_duration("0.3s"), Millis(300));
    EXPECT_EQ(parse_duration("1.5h"), Millis(5'400'000));
    EXPECT_EQ(parse_duration("10"), std::nullopt);
    EXPECT_EQ(parse_duration("0.5ms"), std::nullopt);
    EXPECT_EQ(parse_duration("-1s"), std::nullopt);
    EXPECT_EQ(parse_duration("s"), std::nullopt);
    EXPECT_EQ(parse_duration("10sec"), std::nullopt);
    EXPECT_EQ(parse_duration(""), std::nullopt);
}

TEST(ConfigValues, Sizes) {
    EXPECT_EQ(parse_size("512"), 512u);
    EXPECT_EQ(parse_size("512B"), 512u);
    EXPECT_EQ(parse_size("512KB"), 512'000u);
    EXPECT_EQ(parse_size("64KiB"), 65'536u);
    EXPECT_EQ(parse_size("20MB"), 20'000'000u);
    EXPECT_EQ(parse_size("20MiB"), 20u * 1024 * 1024);
    EXPECT_EQ(parse_size("1.5KB"), 1500u);
    EXPECT_EQ(parse_size("2GiB"), 2ull << 30);
    EXPECT_EQ(parse_size("1.5B"), std::nullopt);
    EXPECT_EQ(parse_size("20 megs"), std::nullopt);
    EXPECT_EQ(parse_size("20mb"), std::nullopt);
    EXPECT_EQ(parse_size("99999999999GB"), std::nullopt);
}

TEST(ConfigValues, Rates) {
    EXPECT_DOUBLE_EQ(*parse_rate("100/s"), 100.0);
    EXPECT_DOUBLE_EQ(*parse_rate("600/m"), 10.0);
    EXPECT_DOUBLE_EQ(*parse_rate("3600/h"), 1.0);
    EXPECT_DOUBLE_EQ(*parse_rate("2.5"), 2.5);
    EXPECT_EQ(parse_rate("0/s"), std::nullopt);
    EXPECT_EQ(parse_rate("10/d"), std::nullopt);
}

TEST(ConfigValues, RedirectTargets) {
    for (const char* ok : {":443", ":8443", "posthog.example.com", "posthog.example.com:8443",
                           "[2001:db8::1]", "[2001:db8::1]:443"}) {
        EXPECT_TRUE(valid_redirect_target(ok)) << ok;
    }
    for (const char* bad : {"", ":", ":0", ":65536", ":44x", "https://x", "host/path", "[zz]", "a b"}) {
        EXPECT_FALSE(valid_redirect_target(bad)) << bad;
    }
}

TEST(ConfigValues, Addresses) {
    auto a = parse_host_port("replay-capture:3000");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->host, "replay-capture");
    EXPECT_EQ(a->port, 3000);
    auto v6 = parse_host_port("[2001:db8::1]:443");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->host, "2001:db8::1");
    EXPECT_EQ(v6->str(), "[2001:db8::1]:443");
    EXPECT_EQ(parse_host_port("0.0.0.0:80")->str(), "0.0.0.0:80");
    EXPECT_EQ(parse_host_port("2001:db8::1:443"), std::nullopt);
    EXPECT_EQ(parse_host_port("[not-v6]:443"), std::nullopt);
    EXPECT_EQ(parse_host_port("host"), std::nullopt);
    EXPECT_EQ(parse_host_port("host:0"), std::nullopt);
    EXPECT_EQ(parse_host_port("host:65536"), std::nullopt);
    EXPECT_EQ(parse_host_port("host:80x"), std::nullopt);
    EXPECT_EQ(parse_host_port(":80"), std::nullopt);
    EXPECT_EQ(parse_host_port("bad host:80"), std::nullopt);
}

}  // namespace
}  // namespace edgeguard
