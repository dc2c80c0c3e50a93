// Rate-limiter decision cost: one key, many keys, and contended across threads; connection admission.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "proxy/access/connection_limits.h"
#include "proxy/access/rate_limiter.h"

namespace edgeguard {
namespace {

// A generous limit so every decision takes the allowed path (the common case) and writes its slot.
const GcraParams kParams = GcraParams::from(1e9, 1'000'000);

void BM_DecideOneKey(benchmark::State& state) {
    RateLimitTable table(1 << 16);
    const uint64_t key = rate_limit_key_hash("10.1.1.1");
    int64_t now = 1'000'000'000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.decide(key, kParams, Nanos(now)));
        now += 1000;
    }
}
BENCHMARK(BM_DecideOneKey);

void BM_DecideManyKeys(benchmark::State& state) {
    RateLimitTable table(size_t{1} << 20);
    std::vector<uint64_t> keys(static_cast<size_t>(state.range(0)));
    for (size_t i = 0; i < keys.size(); ++i) keys[i] = rate_limit_key_hash(std::to_string(i));
    size_t i = 0;
    int64_t now = 1'000'000'000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(table.decide(keys[i], kParams, Nanos(now)));
        i = (i + 1) % keys.size();
        now += 10;
    }
}
BENCHMARK(BM_DecideManyKeys)->Arg(1'000)->Arg(100'000)->Arg(1'000'000);

void BM_CheckWithKeyHash(benchmark::State& state) {
    RateLimitTable table(1 << 16);
    RateLimitConfig limit;
    limit.name = "per_client";
    limit.rate_per_second = 1e9;
    limit.burst = 1'000'000;
    RouteConfig route;
    route.name = "capture";
    const IpAddress client = *IpAddress::parse("10.1.1.7");
    int64_t now = 1'000'000'000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(RateLimiter::check(table, limit, route, client, "", Nanos(now)));
        now += 1000;
    }
}
BENCHMARK(BM_CheckWithKeyHash);

// Contended: every thread hammers the same key (worst case: one cache line) or its own key.
RateLimitTable g_shared_table(1 << 16);

void BM_DecideContendedSameKey(benchmark::State& state) {
    const uint64_t key = rate_limit_key_hash("hot");
    int64_t now = 1'000'000'000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(g_shared_table.decide(key, kParams, Nanos(now)));
        now += 1000;
    }
}
BENCHMARK(BM_DecideContendedSameKey)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_DecideContendedOwnKey(benchmark::State& state) {
    const uint64_t key = rate_limit_key_hash("client-" + std::to_string(state.thread_index()));
    int64_t now = 1'000'000'000;
    for (auto _ : state) {
        benchmark::DoNotOptimize(g_shared_table.decide(key, kParams, Nanos(now)));
        now += 1000;
    }
}
BENCHMARK(BM_DecideContendedOwnKey)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

void BM_ConnectionAdmitRelease(benchmark::State& state) {
    static ConnectionLimits limits;
    const IpAddress peer = *IpAddress::parse("10.1.1." + std::to_string(state.thread_index() + 1));
    for (auto _ : state) {
        ConnectionLimits::Ticket t;
        benchmark::DoNotOptimize(limits.try_admit(peer, 20'000, 100, t));
        limits.release(t);
    }
}
BENCHMARK(BM_ConnectionAdmitRelease)->Threads(1)->Threads(4)->UseRealTime();

}  // namespace
}  // namespace edgeguard

BENCHMARK_MAIN();
