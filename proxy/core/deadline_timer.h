// A one-shot timeout that is re-armed many times per request without touching libevent's timer heap.
//
// libevent keeps timers in a min-heap: each evtimer_add of a pending timer is a removal plus an insertion,
// each evtimer_del a removal (a few hundred instructions each). A connection moves its deadline about five
// times per request (header deadline, body idle, keep-alive; response header, body idle, pool idle), and
// nearly always later than before. So the deadline is only recorded; the libevent timer is re-added only
// when the new deadline comes before the one it is set for. A timer that fires before the current deadline
// (it was set for an older, earlier one) re-arms itself for the rest. disarm() just forgets the deadline.
#pragma once

#include <event2/event.h>
#include <event2/event_struct.h>

#include <chrono>

#include "proxy/config/config.h"

namespace edgeguard {

class DeadlineTimer {
  public:
    using Callback = void (*)(void* arg);

    DeadlineTimer() = default;
    ~DeadlineTimer() { stop(); }
    DeadlineTimer(const DeadlineTimer&) = delete;
    DeadlineTimer& operator=(const DeadlineTimer&) = delete;

    // Binds the timer to `base`; `fire(arg)` runs once a deadline passes. False when libevent refuses.
    bool init(event_base* base, Callback fire, void* arg);
    using Clock = std::chrono::steady_clock;

    // Fire `after` from now, replacing any earlier deadline.
    void arm(Millis after) { arm_from(Clock::now(), after); }
    // The same with `now` the caller read from Clock just before (one clock read serves both).
    void arm_from(Clock::time_point now, Millis after);
    // No deadline until the next arm().
    void disarm() { armed_ = false; }
    bool armed() const { return armed_; }
    // Removes the timer from the loop for good (before the owner goes away); arm() does nothing afterwards.
    void stop();

  private:
    static void on_event(evutil_socket_t fd, short what, void* arg);
    void add(Clock::duration after, Clock::time_point expiry);

    event ev_{};
    Callback fire_ = nullptr;
    void* arg_ = nullptr;
    Clock::time_point deadline_{};  // when fire_ runs, if armed_
    Clock::time_point expiry_{};    // when the libevent timer goes off, if pending_
    bool initialized_ = false;
    bool armed_ = false;
    bool pending_ = false;
};

}  // namespace edgeguard
