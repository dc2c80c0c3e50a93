#include "proxy/ops/refusal_log.h"

#include <string>

#include "proxy/http1/http_headers.h"
#include "proxy/ops/process_log.h"

namespace edgeguard {

void AcceptRefusalLog::refused(std::string_view reason, const sockaddr* peer, const HostPort& listener) {
    const Clock::time_point now = Clock::now();
    if (logged_once_ && now - last_line_ < interval_) {
        ++suppressed_;
        return;
    }
    const std::string peer_text = peer != nullptr ? peer_address_text(peer) : std::string("unknown");
    log_process(LogLevel::Warning,
                "edgeguard: connection refused at accept reason=%.*s peer=%s listener=%s suppressed=%llu",
                static_cast<int>(reason.size()), reason.data(), peer_text.c_str(), listener.str().c_str(),
                static_cast<unsigned long long>(suppressed_));
    suppressed_ = 0;
    last_line_ = now;
    logged_once_ = true;
}

}  // namespace edgeguard
