// GCRA rate limiter: exact decisions on an injected clock, expiry by reuse, reload survival, no lost updates.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "proxy/access/rate_limiter.h"

namespace edgeguard {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Nanos kStart = seconds(1000);  // any point on a monotonic clock

TEST(Gcra, BurstPassesThenDeniedWithExactRetryAfter) {
    RateLimitTable table(1024);
    const GcraParams p = GcraParams::from(1.0, 5);  // 1/s, burst 5
    const uint64_t key = rate_limit_key_hash("client-a");
    for (uint32_t i = 0; i < 5; ++i) {
        auto d = table.decide(key, p, kStart);
        EXPECT_TRUE(d.allowed) << i;
        EXPECT_EQ(d.limit, 5u);
        EXPECT_EQ(d.remaining, 4 - i);
    }
    auto denied = table.decide(key, p, kStart);
    EXPECT_FALSE(denied.allowed);
    EXPECT_EQ(denied.retry_after, seconds(1));
    EXPECT_EQ(denied.retry_after_seconds, 1u);
    EXPECT_EQ(denied.remaining, 0u);
    EXPECT_EQ(denied.reset_seconds, 5u);  // five requests' worth of time until the bucket is full again
    // A denied request does not consume anything: just before the retry time still denied, at it allowed.
    EXPECT_FALSE(table.decide(key, p, kStart + milliseconds(999)).allowed);
    auto d = table.decide(key, p, kStart + seconds(1));
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.remaining, 0u);
    EXPECT_FALSE(table.decide(key, p, kStart + seconds(1)).allowed);
}

TEST(Gcra, FractionalWaitsRoundRetryAfterUp) {
    RateLimitTable table(1024);
    const GcraParams p = GcraParams::from(2.0, 3);  // one request every 500 ms
    const uint64_t key = rate_limit_key_hash("k");
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(table.decide(key, p, kStart).allowed);
    auto denied = table.decide(key, p, kStart + milliseconds(100));
    EXPECT_FALSE(denied.allowed);
    EXPECT_EQ(denied.retry_after, milliseconds(400));
    EXPECT_EQ(denied.retry_after_seconds, 1u);
    EXPECT_TRUE(table.decide(key, p, kStart + milliseconds(500)).allowed);
}

TEST(Gcra, SustainedRateIsHeld) {
    RateLimitTable table(1024);
    const GcraParams p = GcraParams::from(10.0, 1);
    const uint64_t key = rate_limit_key_hash("steady");
    int allowed = 0;
    // 100 requests per second for 10 s against a 10/s limit: exactly 100 pass (one per 100 ms).
    for (int i = 0; i < 1000; ++i)
        allowed += table.decide(key, p, kStart + milliseconds(10 * i)).allowed ? 1 : 0;
    EXPECT_EQ(allowed, 100);
}

TEST(Gcra, KeysAreIndependent) {
    RateLimitTable table(1024);
    const GcraParams p = GcraParams::from(1.0, 1);
    EXPECT_TRUE(table.decide(rate_limit_key_hash("a"), p, kStart).allowed);
    EXPECT_FALSE(table.decide(rate_limit_key_hash("a"), p, kStart).allowed);
    EXPECT_TRUE(table.decide(rate_limit_key_hash("b"), p, kStart).allowed);
}

TEST(Gcra, IdleKeysExpireAndMemoryStaysFixed) {
    RateLimitTable table(1000);  // budget of 1,000 keys
    EXPECT_EQ(table.slot_count(), 2048u);
    EXPECT_EQ(table.memory_bytes(), 2048u * 16);
    const GcraParams p = GcraParams::from(100.0, 1);  // each key is idle again 10 ms after its request
    // 200,000 distinct clients over time, 1,000 per 10 ms window: every one gets its own fresh bucket.
    int refused = 0;
    for (int window = 0; window < 200; ++window) {
        for (int c = 0; c < 1000; ++c) {
            const std::string key = std::to_string(window) + "/" + std::to_string(c);
            if (!table.decide(rate_limit_key_hash(key), p, kStart + milliseconds(10 * window)).allowed)
                ++refused;
        }
    }
    EXPECT_EQ(refused, 0);
    EXPECT_EQ(table.memory_bytes(), 2048u * 16);
}

TEST(Gcra, FullTableFailsOpenAndCounts) {
    RateLimitTable table(4);  // 8 slots, one probe window
    const GcraParams p = GcraParams::from(1.0, 1);
    for (int i = 0; i < 8; ++i)
        ASSERT_TRUE(table.decide(rate_limit_key_hash(std::to_string(i)), p, kStart).allowed);
    EXPECT_EQ(table.table_full_count(), 0u);
    EXPECT_TRUE(table.decide(rate_limit_key_hash("ninth"), p, kStart).allowed);
    EXPECT_EQ(table.table_full_count(), 1u);
    // Existing keys are still limited exactly.
    EXPECT_FALSE(table.decide(rate_limit_key_hash("3"), p, kStart).allowed);
}

TEST(Gcra, AbsurdRatesDoNotOverflow) {
    RateLimitTable table(64);
    const GcraParams slow = GcraParams::from(1e-12, 1'000'000'000);
    EXPECT_GT(slow.tolerance_ns, 0);
    EXPECT_TRUE(table.decide(1, slow, kStart).allowed);
    const GcraParams fast = GcraParams::from(1e12, 1);
    EXPECT_EQ(fast.emission_ns, 1);
    EXPECT_TRUE(table.decide(2, fast, kStart).allowed);
}

TEST(Gcra, OneMillionKeyBudgetIsDocumented) {
    RateLimitTable table(size_t{1} << 20);
    EXPECT_EQ(table.memory_bytes(), size_t{32} << 20);  // 32 MiB, as rate_limiter.h states
}

RateLimitConfig limit_config(RateLimitConfig::Key key, double rate, uint32_t burst) {
    RateLimitConfig c;
    c.name = "l";
    c.rate_per_second = rate;
    c.burst = burst;
    c.key = key;
    return c;
}

TEST(RateLimiter, KeysByIpRouteAndHeader) {
    RateLimitTable table(1024);
    RouteConfig capture;
    capture.name = "capture";
    RouteConfig flags;
    flags.name = "flags";
    const IpAddress a = *IpAddress::parse("10.1.1.1");
    const IpAddress b = *IpAddress::parse("10.1.1.2");

    const RateLimitConfig by_ip = limit_config(RateLimitConfig::Key::ClientIp, 1, 1);
    EXPECT_TRUE(RateLimiter::check(table, by_ip, capture, a, "", kStart).allowed);
    EXPECT_FALSE(RateLimiter::check(table, by_ip, flags, a, "", kStart).allowed);  // same IP, any route
    EXPECT_TRUE(RateLimiter::check(table, by_ip, capture, b, "", kStart).allowed);

    RateLimitTable route_table(1024);
    const RateLimitConfig by_route = limit_config(RateLimitConfig::Key::Route, 1, 1);
    EXPECT_TRUE(RateLimiter::check(route_table, by_route, capture, a, "", kStart).allowed);
    EXPECT_FALSE(RateLimiter::check(route_table, by_route, capture, b, "", kStart).allowed);  // one budget
    EXPECT_TRUE(RateLimiter::check(route_table, by_route, flags, b, "", kStart).allowed);

    RateLimitTable header_table(1024);
    RateLimitConfig by_token = limit_config(RateLimitConfig::Key::Header, 1, 1);
    by_token.header = "X-Token";
    EXPECT_TRUE(RateLimiter::check(header_table, by_token, capture, a, "tok1", kStart).allowed);
    EXPECT_FALSE(RateLimiter::check(header_table, by_token, capture, b, "tok1", kStart).allowed);
    EXPECT_TRUE(RateLimiter::check(header_table, by_token, capture, a, "tok2", kStart).allowed);
    // Without the header the client IP counts, so omitting it does not escape the limit.
    EXPECT_TRUE(RateLimiter::check(header_table, by_token, capture, b, "", kStart).allowed);
    EXPECT_FALSE(RateLimiter::check(header_table, by_token, capture, b, "", kStart).allowed);
}

TEST(RateLimiter, ExemptClientsAreNeverLimited) {
    RateLimitTable table(1024);
    RateLimitConfig c = limit_config(RateLimitConfig::Key::ClientIp, 1, 1);
    c.exempt.add(*Cidr::parse("127.0.0.0/8"));
    RouteConfig r;
    const IpAddress local = *IpAddress::parse("127.0.0.5");
    for (int i = 0; i < 10; ++i) {
        auto d = RateLimiter::check(table, c, r, local, "", kStart);
        EXPECT_TRUE(d.allowed);
        EXPECT_EQ(d.limit, 0u);  // "not limited": no RateLimit headers
    }
}

TEST(RateLimiter, StateSurvivesReloadAndNewRatesApply) {
    RateLimiter limiter(1024);
    Config first;
    first.rate_limits.push_back(limit_config(RateLimitConfig::Key::ClientIp, 1, 2));
    auto tables = limiter.tables_for(first);
    ASSERT_EQ(tables.size(), 1u);
    RouteConfig r;
    const IpAddress a = *IpAddress::parse("10.1.1.1");
    EXPECT_TRUE(RateLimiter::check(*tables[0], first.rate_limits[0], r, a, "", kStart).allowed);
    EXPECT_TRUE(RateLimiter::check(*tables[0], first.rate_limits[0], r, a, "", kStart).allowed);

    Config second = first;  // reload: same name, burst raised to 3
    second.rate_limits[0].burst = 3;
    auto reloaded = limiter.tables_for(second);
    EXPECT_EQ(reloaded[0].get(), tables[0].get());
    EXPECT_TRUE(RateLimiter::check(*reloaded[0], second.rate_limits[0], r, a, "", kStart).allowed);
    EXPECT_FALSE(RateLimiter::check(*reloaded[0], second.rate_limits[0], r, a, "", kStart).allowed);

    Config renamed = second;
    renamed.rate_limits[0].name = "other";
    EXPECT_NE(limiter.tables_for(renamed)[0].get(), tables[0].get());
}

TEST(RateLimiter, MultiThreadHammerLosesNoUpdates) {
    RateLimitTable table(1 << 12);
    // Burst 40,000 and a rate so low nothing refills during the test: exactly 40,000 of 8 x 10,000 pass.
    const GcraParams p = GcraParams::from(1e-3, 40'000);
    const uint64_t hot = rate_limit_key_hash("hot");
    std::atomic<int> allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            int mine = 0;
            for (int i = 0; i < 10'000; ++i) {
                if (table.decide(hot, p, kStart).allowed) ++mine;
                // Other keys churn the same table at the same time.
                table.decide(rate_limit_key_hash(std::to_string(t * 10'000 + i)), p, kStart);
            }
            allowed.fetch_add(mine);
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(allowed.load(), 40'000);
}

}  // namespace
}  // namespace edgeguard
