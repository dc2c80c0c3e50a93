// FrameBudget: the token bucket behind the stream-reset and control-frame limits.
#include "proxy/http2/frame_budget.h"

#include <gtest/gtest.h>

namespace edgeguard {
namespace {

using std::chrono::milliseconds;

TEST(FrameBudget, BurstThenRefillAtTheRate) {
    FrameBudget b;
    const auto t0 = FrameBudget::Clock::time_point{} + std::chrono::hours(1);
    b.reset(3, 10, t0);
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_TRUE(b.take(t0));
    EXPECT_FALSE(b.take(t0)) << "one past the burst";
    EXPECT_FALSE(b.take(t0 + milliseconds(50))) << "half a token";
    EXPECT_TRUE(b.take(t0 + milliseconds(100)));
    EXPECT_FALSE(b.take(t0 + milliseconds(100)));
    // A long quiet period refills to the burst, never beyond.
    const auto later = t0 + std::chrono::seconds(60);
    EXPECT_TRUE(b.take(later));
    EXPECT_TRUE(b.take(later));
    EXPECT_TRUE(b.take(later));
    EXPECT_FALSE(b.take(later));
}

}  // namespace
}  // namespace edgeguard
