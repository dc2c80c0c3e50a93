// DeadlineTimer: a deadline moved later never fires early, one moved earlier fires at the earlier time,
// disarm() forgets it, and stop() takes the timer out of the loop for good.
#include "proxy/core/deadline_timer.h"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <chrono>

namespace edgeguard {
namespace {

using Clock = std::chrono::steady_clock;

struct Loop {
    Loop() : base(event_base_new()) {}
    ~Loop() { event_base_free(base); }
    // Runs the loop until `done` or a generous bound passes.
    void run_until(const bool& done, std::chrono::milliseconds bound = std::chrono::milliseconds(5000)) {
        const Clock::time_point end = Clock::now() + bound;
        while (!done && Clock::now() < end) event_base_loop(base, EVLOOP_ONCE);
    }
    event_base* base;
};

struct Fired {
    int count = 0;
    bool done = false;
    Clock::time_point at{};
    static void cb(void* arg) {
        auto* self = static_cast<Fired*>(arg);
        ++self->count;
        self->done = true;
        self->at = Clock::now();
    }
};

TEST(DeadlineTimer, ADeadlineMovedLaterFiresOnceAndNotBeforeIt) {
    Loop loop;
    Fired fired;
    DeadlineTimer t;
    ASSERT_TRUE(t.init(loop.base, &Fired::cb, &fired));
    const Clock::time_point start = Clock::now();
    t.arm(Millis(20));
    t.arm(Millis(150));  // later: the libevent timer stays set for 20 ms and re-arms itself for the rest
    loop.run_until(fired.done);
    ASSERT_EQ(fired.count, 1);
    EXPECT_GE(fired.at - start, std::chrono::milliseconds(150));
    EXPECT_FALSE(t.armed());
}

TEST(DeadlineTimer, ADeadlineMovedEarlierFiresAtTheEarlierTime) {
    Loop loop;
    Fired fired;
    DeadlineTimer t;
    ASSERT_TRUE(t.init(loop.base, &Fired::cb, &fired));
    const Clock::time_point start = Clock::now();
    t.arm(Millis(60'000));
    t.arm(Millis(30));
    loop.run_until(fired.done);
    ASSERT_EQ(fired.count, 1);
    EXPECT_GE(fired.at - start, std::chrono::milliseconds(30));
    EXPECT_LT(fired.at - start, std::chrono::milliseconds(30'000));  // not the forgotten 60 s deadline
}

TEST(DeadlineTimer, DisarmAndStopMeanNoCallback) {
    Loop loop;
    Fired disarmed, stopped, control;
    DeadlineTimer a, b, c;
    ASSERT_TRUE(a.init(loop.base, &Fired::cb, &disarmed));
    ASSERT_TRUE(b.init(loop.base, &Fired::cb, &stopped));
    ASSERT_TRUE(c.init(loop.base, &Fired::cb, &control));
    a.arm(Millis(10));
    a.disarm();
    b.arm(Millis(10));
    b.stop();
    b.arm(Millis(10));  // after stop(): ignored
    c.arm(Millis(80));  // fires after the other two would have
    loop.run_until(control.done);
    EXPECT_EQ(control.count, 1);
    EXPECT_EQ(disarmed.count, 0);
    EXPECT_EQ(stopped.count, 0);
}

TEST(DeadlineTimer, ReArmingAfterFiringWorks) {
    Loop loop;
    Fired fired;
    DeadlineTimer t;
    ASSERT_TRUE(t.init(loop.base, &Fired::cb, &fired));
    t.arm(Millis(5));
    loop.run_until(fired.done);
    fired.done = false;
    t.arm(Millis(5));
    loop.run_until(fired.done);
    EXPECT_EQ(fired.count, 2);
}

}  // namespace
}  // namespace edgeguard
