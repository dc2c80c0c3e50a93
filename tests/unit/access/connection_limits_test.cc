// Concurrent connection limits: total and per client IP, refusals counted, releases exact.
#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "proxy/access/connection_limits.h"

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
    // Held tickets counted by their holders: active_from() would also count another thread's reservation
    // that is about to be refused, which is not an admitted connection.
    std::atomic<int> holding{0};
    std::atomic<int> max_seen{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 5'000; ++i) {
                ConnectionLimits::Ticket ticket;
                if (limits.try_admit(ip("10.1.1.1"), 0, 4, ticket) == ConnectionLimits::Verdict::Admitted) {
                    admitted.fetch_add(1);
                    const int now = holding.fetch_add(1) + 1;
                    int prev = max_seen.load();
                    while (now > prev && !max_seen.compare_exchange_weak(prev, now)) {
                    }
                    holding.fetch_sub(1);
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

// What the workers rely on for limits.max_connections: several accept threads admitting at once, from many
// addresses, never hold more than max_total tickets together (the slot is reserved before it is checked).
TEST(ConnectionLimits, ConcurrentAdmitsNeverExceedTheTotal) {
    constexpr uint32_t kMaxTotal = 5;
    constexpr int kThreads = 8;
    constexpr int kAttempts = 5'000;
    ConnectionLimits limits;
    std::atomic<int> admitted{0};
    std::atomic<int> holding{0};  // tickets held right now, counted by the holders themselves
    std::atomic<int> max_holding{0};
    std::atomic<bool> go{false};  // all threads start together, so their admits overlap
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&, t] {
            const IpAddress peer = ip("10.2.0." + std::to_string(t + 1));
            // Each thread alone wants more slots than exist, so refusals happen at any interleaving.
            std::vector<ConnectionLimits::Ticket> held(kMaxTotal + 1);
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < kAttempts; ++i) {
                ConnectionLimits::Ticket& ticket = held[static_cast<size_t>(i) % held.size()];
                if (ticket.held) {
                    holding.fetch_sub(1);  // before the release, so `holding` never counts a freed slot
                    limits.release(ticket);
                }
                if (limits.try_admit(peer, kMaxTotal, 0, ticket) != ConnectionLimits::Verdict::Admitted) continue;
                admitted.fetch_add(1);
                const int now = holding.fetch_add(1) + 1;
                int prev = max_holding.load();
                while (now > prev && !max_holding.compare_exchange_weak(prev, now)) {
                }
            }
            for (auto& ticket : held) {
                if (!ticket.held) continue;
                holding.fetch_sub(1);
                limits.release(ticket);
            }
        });
    }
    go.store(true);
    for (auto& th : threads) th.join();
    EXPECT_LE(max_holding.load(), static_cast<int>(kMaxTotal));
    EXPECT_GT(admitted.load(), 0);
    EXPECT_GT(limits.refused_total_limit(), 0u);
    EXPECT_EQ(limits.active(), 0u);
    EXPECT_EQ(static_cast<uint64_t>(admitted.load()) + limits.refused_total_limit(),
              static_cast<uint64_t>(kThreads) * kAttempts);
}

}  // namespace
}  // namespace edgeguard
