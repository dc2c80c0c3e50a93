// Path normalization and route matching on PostHog's hobby table (conf/edgeguard.yaml).
#include <benchmark/benchmark.h>

#include "proxy/config/config.h"
#include "proxy/pipeline/router.h"

namespace edgeguard {
namespace {

std::vector<RouteConfig> hobby_routes() {
    auto r = load_config(std::string(EDGEGUARD_SOURCE_DIR) + "/conf/edgeguard.yaml");
    if (r.config) return r.config->routes;
    // Without the privacy rules file the same table is built by hand, so the benchmark still runs.
    std::vector<RouteConfig> routes;
    auto add = [&](const char* name, std::vector<std::string> paths) {
        RouteConfig c;
        c.name = name;
        c.paths = std::move(paths);
        routes.push_back(std::move(c));
    };
    add("livestream", {"/livestream"});
    add("capture-ai", {"/i/v0/ai"});
    add("capture", {"/e", "/i/v0", "/batch", "/capture", "/track", "/engage"});
    add("replay", {"/s"});
    add("capture-logs", {"/i/v1/logs", "/i/v1/traces"});
    add("capture-metrics", {"/i/v1/metrics"});
    add("flags", {"/flags", "/decide"});
    add("webhooks", {"/public/webhooks", "/public/m/"});
    add("objectstorage", {"/posthog"});
    add("web", {"/"});
    return routes;
}

void BM_NormalizeSimple(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(normalize_path("/batch/"));
}
BENCHMARK(BM_NormalizeSimple);

void BM_NormalizeEncoded(benchmark::State& state) {
    for (auto _ : state) benchmark::DoNotOptimize(normalize_path("/api/../%65//x/./y%2Fz"));
}
BENCHMARK(BM_NormalizeEncoded);

void BM_MatchCapture(benchmark::State& state) {
    const auto routes = hobby_routes();
    const Router router(routes);
    for (auto _ : state) benchmark::DoNotOptimize(router.match("/e/"));
}
BENCHMARK(BM_MatchCapture);

void BM_MatchCatchAll(benchmark::State& state) {
    const auto routes = hobby_routes();
    const Router router(routes);
    for (auto _ : state) benchmark::DoNotOptimize(router.match("/api/projects/1/insights/"));
}
BENCHMARK(BM_MatchCatchAll);

void BM_NormalizeAndMatch(benchmark::State& state) {
    const auto routes = hobby_routes();
    const Router router(routes);
    for (auto _ : state) {
        auto p = normalize_path("/i/v0/e/");
        benchmark::DoNotOptimize(router.match(*p));
    }
}
BENCHMARK(BM_NormalizeAndMatch);

}  // namespace
}  // namespace edgeguard

BENCHMARK_MAIN();
