#include "proxy/core/deadline_timer.h"

#include <sys/time.h>

namespace edgeguard {

bool DeadlineTimer::init(event_base* base, Callback fire, void* arg) {
    stop();
    fire_ = fire;
    arg_ = arg;
    initialized_ = evtimer_assign(&ev_, base, &DeadlineTimer::on_event, this) == 0;
    return initialized_;
}

void DeadlineTimer::stop() {
    if (initialized_ && pending_) event_del(&ev_);
    initialized_ = false;
    armed_ = false;
    pending_ = false;
}

void DeadlineTimer::arm_from(Clock::time_point now, Millis after) {
    if (!initialized_) return;
    const Clock::duration wait = after.count() > 0 ? Clock::duration(after) : Clock::duration::zero();
    deadline_ = now + wait;
    armed_ = true;
    // Set for this deadline or an earlier one: on_event takes it from there.
    if (pending_ && expiry_ <= deadline_) return;
    add(wait, deadline_);
}

void DeadlineTimer::add(Clock::duration after, Clock::time_point expiry) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(after).count();
    const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    evtimer_add(&ev_, &tv);
    expiry_ = expiry;
    pending_ = true;
}

void DeadlineTimer::on_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<DeadlineTimer*>(arg);
    self->pending_ = false;
    if (!self->armed_) return;
    const Clock::time_point now = Clock::now();
    if (now < self->deadline_) {
        // Went off for an earlier deadline that was since moved later.
        self->add(self->deadline_ - now, self->deadline_);
        return;
    }
    self->armed_ = false;
    self->fire_(self->arg_);  // may destroy the owner, and this timer with it
}

}  // namespace edgeguard
