// Concurrent connection limits: total and per client IP, refusals counted, releases exact.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "proxy/connection_limits.h"

namespace edgeguard {
namespace {

IpAddress ip(std::string_view s) {
    return *IpAddress::parse(s);
}

TEST(ConnectionLimits, PerIpLimit) {
    ConnectionLimits limits;
    std::vector<ConnectionLimits::Ticket> held(3);
    for (auto& t : held)
        EXPECT_EQ(limits.try_admit(ip("10.1.1.1"), 100, 3, t), ConnectionLimits::Verdict::Admitted);
    ConnectionLimits::Ticket extra;
    EXPECT_EQ(limits.try_admit(ip("10.1.1.1"), 100, 3, extra), ConnectionLimits::Verdict::TooManyFromIp);
    EXPECT_FALSE(extra.held);
    EXPECT_EQ(limits.try_admit(ip("10.1.1.2"), 100, 3, extra), ConnectionLimits::Verdict::Admitted);
    EXPECT_EQ(limits.active(), 4u);
    EXPECT_EQ(limits.active_from(ip("10.1.1.1")), 3u);
    EXPECT_EQ(limits.refused_per_ip_limit(), 1u);
    limits.release(held[0]);
    limits.release(held[0]);  // a second release of the same ticket is a no-op
    EXPECT_EQ(limits.active_from(ip("10.1.1.1")), 2u);
    EXPECT_EQ(limits.try_admit(ip("10.1.1.1"), 100, 3, held[0]), ConnectionLimits::Verdict::Admitted);
}

TEST(ConnectionLimits, TotalLimitAndUnlimitedPerIp) {
    ConnectionLimits limits;
    std::vector<ConnectionLimits::Ticket> held(5);
    for (auto& t : held) EXPECT_EQ(limits.try_admit(ip("::1"), 5, 0, t), ConnectionLimits::Verdict::Admitted);
    ConnectionLimits::Ticket extra;
    EXPECT_EQ(limits.try_admit(ip("10.9.9.9"), 5, 0, extra), ConnectionLimits::Verdict::TooManyTotal);
    EXPECT_EQ(limits.refused_total_limit(), 1u);
    for (auto& t : held) limits.release(t);
    EXPECT_EQ(limits.active(), 0u);
    EXPECT_EQ(limits.active_from(ip("::1")), 0u);
}

TEST(ConnectionLimits, ConcurrentAdmitsNeverExceedTheLimit) {
    ConnectionLimits limits;
    std::atomic<int> admitted{0};
    std::atomic<int> max_seen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5'000; ++i) {
                ConnectionLimits::Ticket ticket;
                if (limits.try_admit(ip("10.1.1.1"), 0, 4, ticket) == ConnectionLimits::Verdict::Admitted) {
                    admitted.fetch_add(1);
                    const int now = static_cast<int>(limits.active_from(ip("10.1.1.1")));
                    int prev = max_seen.load();
                    while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
                    }
                    limits.release(ticket);
                }
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_LE(max_seen.load(), 4);
    EXPECT_GT(admitted.load(), 0);
    EXPECT_EQ(limits.active(), 0u);
    EXPECT_EQ(limits.active_from(ip("10.1.1.1")), 0u);
    EXPECT_EQ(static_cast<uint64_t>(admitted.load()) + limits.refused_per_ip_limit(), 40'000u);
}

}  // namespace
}  // namespace edgeguard
