// A token bucket per connection for frames that cost edgeguard work without carrying a request: stream
// resets (Rapid Reset, CVE-2023-44487) and SETTINGS/PING/PRIORITY/WINDOW_UPDATE/empty-DATA floods. A client
// gets `burst` at once and `per_second` more each second; one past that and the connection is closed with
// GOAWAY (ENHANCE_YOUR_CALM).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace edgeguard {

class FrameBudget {
  public:
    using Clock = std::chrono::steady_clock;

    void reset(uint32_t burst, double per_second, Clock::time_point now) {
        burst_ = burst;
        per_second_ = per_second;
        tokens_ = burst;
        last_ = now;
    }
    // One frame: false when the budget is spent.
    bool take(Clock::time_point now) {
        const double elapsed = std::chrono::duration<double>(now - last_).count();
        if (elapsed > 0) {
            tokens_ = std::min<double>(burst_, tokens_ + elapsed * per_second_);
            last_ = now;
        }
        if (tokens_ < 1) return false;
        tokens_ -= 1;
        return true;
    }

  private:
    uint32_t burst_ = 0;
    double per_second_ = 0;
    double tokens_ = 0;
    Clock::time_point last_{};
};

}  // namespace edgeguard
