// Route selection: normalization, segment-aware prefixes, first match in order, and PostHog's hobby table.
#include <gtest/gtest.h>
#include <unistd.h>

#include "proxy/config/config.h"
#include "proxy/pipeline/router.h"

namespace edgeguard {
namespace {

TEST(NormalizePath, DecodesUnreservedOnly) {
    EXPECT_EQ(normalize_path("/%65"), "/e");
    EXPECT_EQ(normalize_path("/%62%61tch/"), "/batch/");
    EXPECT_EQ(normalize_path("/a%7e%2d%5F%2E"), "/a~-_.");
    // Reserved characters stay encoded, in uppercase hex, so an encoded slash never splits a segment.
    EXPECT_EQ(normalize_path("/e%2fx"), "/e%2Fx");
    EXPECT_EQ(normalize_path("/a%3fb%23"), "/a%3Fb%23");
    EXPECT_EQ(normalize_path("/caf%C3%A9"), "/caf%C3%A9");
}

TEST(NormalizePath, ResolvesDotSegmentsNeverAboveRoot) {
    EXPECT_EQ(normalize_path("/a/./b/../c"), "/a/c");
    EXPECT_EQ(normalize_path("/.."), "/");
    EXPECT_EQ(normalize_path("/../../e"), "/e");
    EXPECT_EQ(normalize_path("/x/%2e%2e/e"), "/e");
    EXPECT_EQ(normalize_path("/x/%2E/e"), "/x/e");
    EXPECT_EQ(normalize_path("/e/."), "/e/");
    EXPECT_EQ(normalize_path("/e/x/.."), "/e/");
    EXPECT_EQ(normalize_path("/..."), "/...");
    EXPECT_EQ(normalize_path("/.hidden"), "/.hidden");
}

TEST(NormalizePath, CollapsesEmptySegments) {
    EXPECT_EQ(normalize_path("//e"), "/e");
    EXPECT_EQ(normalize_path("/i//v0///e/"), "/i/v0/e/");
    EXPECT_EQ(normalize_path("/"), "/");
    EXPECT_EQ(normalize_path("//"), "/");
    EXPECT_EQ(normalize_path("/e/"), "/e/");
}

TEST(NormalizePath, RejectsUnsafeInput) {
    EXPECT_EQ(normalize_path(""), std::nullopt);
    EXPECT_EQ(normalize_path("e"), std::nullopt);
    EXPECT_EQ(normalize_path("*"), std::nullopt);
    EXPECT_EQ(normalize_path("/%"), std::nullopt);
    EXPECT_EQ(normalize_path("/%6"), std::nullopt);
    EXPECT_EQ(normalize_path("/%zz"), std::nullopt);
    EXPECT_EQ(normalize_path("/%00"), std::nullopt);
    EXPECT_EQ(normalize_path("/a%0Ab"), std::nullopt);
    EXPECT_EQ(normalize_path("/a%7F"), std::nullopt);
    EXPECT_EQ(normalize_path(std::string_view("/a\0b", 4)), std::nullopt);
    EXPECT_EQ(normalize_path("/a\tb"), std::nullopt);
    EXPECT_EQ(normalize_path("/a\x7f"), std::nullopt);
}

RouteConfig route(std::string name, std::vector<std::string> paths, std::string strip = "") {
    RouteConfig r;
    r.name = std::move(name);
    r.paths = std::move(paths);
    r.strip_prefix = std::move(strip);
    return r;
}

std::string matched(const Router& router, std::string_view raw) {
    auto path = normalize_path(raw);
    if (!path) return "<invalid>";
    const RouteConfig* r = router.match(*path);
    return r ? r->name : "<none>";
}

TEST(Router, SegmentBoundaries) {
    const std::vector<RouteConfig> routes{route("e", {"/e"}), route("s", {"/s"}), route("m", {"/public/m/"})};
    const Router router(routes);
    EXPECT_EQ(matched(router, "/e"), "e");
    EXPECT_EQ(matched(router, "/e/"), "e");
    EXPECT_EQ(matched(router, "/e/x/y"), "e");
    EXPECT_EQ(matched(router, "/events"), "<none>");
    EXPECT_EQ(matched(router, "/e.js"), "<none>");
    EXPECT_EQ(matched(router, "/s"), "s");
    EXPECT_EQ(matched(router, "/settings"), "<none>");
    EXPECT_EQ(matched(router, "/public/m/"), "m");
    EXPECT_EQ(matched(router, "/public/m/pixel"), "m");
    EXPECT_EQ(matched(router, "/public/m"), "<none>");
    EXPECT_EQ(matched(router, "/public/mail"), "<none>");
    // Case-sensitive, like the services behind us.
    EXPECT_EQ(matched(router, "/E"), "<none>");
}

TEST(Router, MatchesTheNormalizedPath) {
    const std::vector<RouteConfig> routes{route("e", {"/e"}), route("web", {"/"})};
    const Router router(routes);
    EXPECT_EQ(matched(router, "/%65"), "e");
    EXPECT_EQ(matched(router, "//e"), "e");
    EXPECT_EQ(matched(router, "/x/../e/"), "e");
    EXPECT_EQ(matched(router, "/%2e%2e/e"), "e");
    EXPECT_EQ(matched(router, "/e%2F"), "web");  // "e/" encoded is a different segment
}

TEST(Router, FirstMatchInDeclaredOrder) {
    const std::vector<RouteConfig> routes{route("ai", {"/i/v0/ai"}), route("capture", {"/i/v0"}),
                                          route("web", {"/"})};
    const Router router(routes);
    EXPECT_EQ(matched(router, "/i/v0/ai"), "ai");
    EXPECT_EQ(matched(router, "/i/v0/ai/otel"), "ai");
    EXPECT_EQ(matched(router, "/i/v0/aix"), "capture");
    EXPECT_EQ(matched(router, "/i/v0/e/"), "capture");
    EXPECT_EQ(matched(router, "/i/v01"), "web");
}

TEST(Router, UpstreamPathStripsPrefix) {
    const RouteConfig live = route("live", {"/livestream"}, "/livestream");
    EXPECT_EQ(upstream_path(live, "/livestream/events"), "/events");
    EXPECT_EQ(upstream_path(live, "/livestream/"), "/");
    EXPECT_EQ(upstream_path(live, "/livestream"), "/");
    EXPECT_EQ(upstream_path(live, "/livestreamer"), "/livestreamer");  // not under the prefix: unchanged
    const RouteConfig plain = route("e", {"/e"});
    EXPECT_EQ(upstream_path(plain, "/e/x"), "/e/x");
    const RouteConfig slash = route("live", {"/livestream/"}, "/livestream/");
    EXPECT_EQ(upstream_path(slash, "/livestream/events"), "/events");
}

// Every hobby route of the shipped conf/edgeguard.yaml, by the upstream service it must reach.
class HobbyRoutes : public ::testing::Test {
  protected:
    void SetUp() override {
        const std::string dir = EDGEGUARD_SOURCE_DIR;
        if (access((dir + "/conf/privacy.yaml").c_str(), R_OK) != 0) {
            GTEST_SKIP() << "conf/privacy.yaml not present yet";
        }
        result_ = load_config(dir + "/conf/edgeguard.yaml");
        ASSERT_TRUE(result_.config) << (result_.errors.empty() ? "" : result_.errors[0].str());
        router_.emplace(result_.config->routes);
    }

    // "service:port path-sent-upstream" for a raw request path.
    std::string reach(std::string_view raw) {
        auto path = normalize_path(raw);
        if (!path) return "<invalid>";
        const RouteConfig* r = router_->match(*path);
        if (!r) return "<none>";
        const UpstreamConfig& u = result_.config->upstreams[r->upstream_index];
        return u.servers.at(0).str() + " " + upstream_path(*r, *path);
    }

    ConfigLoadResult result_;
    std::optional<Router> router_;
};

TEST_F(HobbyRoutes, Capture) {
    for (const char* p : {"/e", "/e/", "/e/x", "/i/v0", "/i/v0/", "/i/v0/e/", "/batch", "/batch/", "/batch/x",
                          "/capture", "/capture/", "/track", "/track/", "/engage", "/engage/"}) {
        EXPECT_EQ(reach(p), std::string("capture:3000 ") + p);
    }
    const RouteConfig* r = router_->match("/batch/");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->privacy_profile, "events");
    EXPECT_EQ(r->max_body_bytes, 20u * 1024 * 1024);
    EXPECT_EQ(r->client_ip, ClientIpPolicy::Truncate);
}

TEST_F(HobbyRoutes, CaptureAiBeforeCapture) {
    EXPECT_EQ(reach("/i/v0/ai"), "capture-ai:3000 /i/v0/ai");
    EXPECT_EQ(reach("/i/v0/ai/"), "capture-ai:3000 /i/v0/ai/");
    EXPECT_EQ(reach("/i/v0/ai/otel"), "capture-ai:3000 /i/v0/ai/otel");
    EXPECT_EQ(reach("/i/v0/aix"), "capture:3000 /i/v0/aix");
}

TEST_F(HobbyRoutes, Replay) {
    EXPECT_EQ(reach("/s"), "replay-capture:3000 /s");
    EXPECT_EQ(reach("/s/"), "replay-capture:3000 /s/");
    const RouteConfig* r = router_->match("/s/");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->privacy_profile, "replay");
    EXPECT_EQ(r->max_body_bytes, 25u * 1024 * 1024);
}

TEST_F(HobbyRoutes, FlagsAndDecide) {
    EXPECT_EQ(reach("/flags"), "feature-flags:3001 /flags");
    EXPECT_EQ(reach("/flags/"), "feature-flags:3001 /flags/");
    EXPECT_EQ(reach("/flags/stream"), "feature-flags:3001 /flags/stream");
    EXPECT_EQ(reach("/decide"), "feature-flags:3001 /decide");
    EXPECT_EQ(reach("/decide/"), "feature-flags:3001 /decide/");
    EXPECT_EQ(router_->match("/flags/")->privacy_profile, "flags");
    EXPECT_GE(router_->match("/flags/stream")->timeouts.stream_idle, Millis(30 * 60'000));
}

TEST_F(HobbyRoutes, LivestreamStripsPrefix) {
    EXPECT_EQ(reach("/livestream"), "livestream:8080 /");
    EXPECT_EQ(reach("/livestream/"), "livestream:8080 /");
    EXPECT_EQ(reach("/livestream/events"), "livestream:8080 /events");
    EXPECT_GE(router_->match("/livestream/events")->timeouts.stream_idle, Millis(30 * 60'000));
}

TEST_F(HobbyRoutes, WebhooksLogsMetricsObjectStorage) {
    EXPECT_EQ(reach("/public/webhooks"), "plugins:6738 /public/webhooks");
    EXPECT_EQ(reach("/public/webhooks/abc"), "plugins:6738 /public/webhooks/abc");
    EXPECT_EQ(reach("/public/m/pixel"), "plugins:6738 /public/m/pixel");
    EXPECT_EQ(reach("/public/m"), "web:8000 /public/m");
    EXPECT_EQ(router_->match("/public/webhooks/x")->max_body_bytes, 512'000u);
    EXPECT_EQ(reach("/i/v1/logs"), "capture-logs:4318 /i/v1/logs");
    EXPECT_EQ(reach("/i/v1/traces/"), "capture-logs:4318 /i/v1/traces/");
    EXPECT_EQ(reach("/i/v1/metrics"), "capture-metrics:4319 /i/v1/metrics");
    EXPECT_EQ(reach("/posthog/bucket/key"), "objectstorage:19000 /posthog/bucket/key");
}

TEST_F(HobbyRoutes, EverythingElseGoesToWeb) {
    EXPECT_EQ(reach("/events"), "web:8000 /events");
    EXPECT_EQ(reach("/settings"), "web:8000 /settings");
    EXPECT_EQ(reach("/"), "web:8000 /");
    EXPECT_EQ(reach("/api/projects/"), "web:8000 /api/projects/");
    EXPECT_EQ(reach("/static/app.js"), "web:8000 /static/app.js");
    EXPECT_EQ(reach("/batches"), "web:8000 /batches");
    EXPECT_EQ(reach("/flagsx"), "web:8000 /flagsx");
    EXPECT_EQ(reach("/posthogx"), "web:8000 /posthogx");
}

TEST_F(HobbyRoutes, EncodingsCannotSlipPastARoute) {
    EXPECT_EQ(reach("/%65"), "capture:3000 /e");
    EXPECT_EQ(reach("/%73/"), "replay-capture:3000 /s/");
    EXPECT_EQ(reach("//batch"), "capture:3000 /batch");
    EXPECT_EQ(reach("/api/../e/"), "capture:3000 /e/");
    EXPECT_EQ(reach("/i/v0/./ai"), "capture-ai:3000 /i/v0/ai");
}

}  // namespace
}  // namespace edgeguard
