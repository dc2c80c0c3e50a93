// A trace of connections closed at accept (allowlist, connection limits), which never reach the access log:
// a process log line an operator can find, at most one a second per worker so a flood of refused
// connections cannot flood the log. The line after a quiet spell says how many refusals were not logged.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <string_view>

#include "proxy/config/config.h"

namespace edgeguard {

class AcceptRefusalLog {
  public:
    using Clock = std::chrono::steady_clock;
    explicit AcceptRefusalLog(Clock::duration interval = std::chrono::seconds(1)) : interval_(interval) {}

    // One connection closed at accept. `reason` is the edgeguard_rejections_total reason ("allowlist",
    // "connection_limit"); `listener` the address the refusing listener is bound to.
    void refused(std::string_view reason, const sockaddr* peer, const HostPort& listener);

  private:
    Clock::duration interval_;
    Clock::time_point last_line_{};
    bool logged_once_ = false;
    uint64_t suppressed_ = 0;  // refusals since the last line that were not logged
};

}  // namespace edgeguard
