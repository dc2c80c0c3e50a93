#include "proxy/access/connection_limits.h"

#include <algorithm>

#include "proxy/access/rate_limiter.h"

namespace edgeguard {

namespace {

struct Rows {
    uint32_t r0, r1;
};

Rows rows_for(const IpAddress& ip, uint32_t row_size) {
    const uint64_t h = rate_limit_key_hash(
        std::string_view(reinterpret_cast<const char*>(ip.bytes.data()), ip.bytes.size()));
    // Two independent halves of one seeded hash pick a counter in each row.
    return Rows{static_cast<uint32_t>(h) & (row_size - 1),
                row_size + (static_cast<uint32_t>(h >> 32) & (row_size - 1))};
}

}  // namespace

ConnectionLimits::ConnectionLimits() : counters_(new std::atomic<uint32_t>[2 * kRowSize]) {
    for (uint32_t i = 0; i < 2 * kRowSize; ++i) counters_[i].store(0, std::memory_order_relaxed);
}

ConnectionLimits::Verdict ConnectionLimits::try_admit(const IpAddress& peer, uint32_t max_total,
                                                      uint32_t max_per_ip, Ticket& ticket) {
    ticket = Ticket{};
    // Reserve first, then check: concurrent accepts can never overshoot a limit, only both be refused.
    const uint32_t total = total_.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (max_total != 0 && total > max_total) {
        total_.fetch_sub(1, std::memory_order_acq_rel);
        refused_total_.fetch_add(1, std::memory_order_relaxed);
        return Verdict::TooManyTotal;
    }
    const Rows rows = rows_for(peer, kRowSize);
    const uint32_t a = counters_[rows.r0].fetch_add(1, std::memory_order_acq_rel) + 1;
    const uint32_t b = counters_[rows.r1].fetch_add(1, std::memory_order_acq_rel) + 1;
    if (max_per_ip != 0 && std::min(a, b) > max_per_ip) {
        counters_[rows.r0].fetch_sub(1, std::memory_order_acq_rel);
        counters_[rows.r1].fetch_sub(1, std::memory_order_acq_rel);
        total_.fetch_sub(1, std::memory_order_acq_rel);
        refused_per_ip_.fetch_add(1, std::memory_order_relaxed);
        return Verdict::TooManyFromIp;
    }
    ticket = Ticket{rows.r0, rows.r1, true};
    return Verdict::Admitted;
}

void ConnectionLimits::release(Ticket& ticket) {
    if (!ticket.held) return;
    counters_[ticket.row0].fetch_sub(1, std::memory_order_acq_rel);
    counters_[ticket.row1].fetch_sub(1, std::memory_order_acq_rel);
    total_.fetch_sub(1, std::memory_order_acq_rel);
    ticket.held = false;
}

uint32_t ConnectionLimits::active_from(const IpAddress& ip) const {
    const Rows rows = rows_for(ip, kRowSize);
    return std::min(counters_[rows.r0].load(std::memory_order_relaxed),
                    counters_[rows.r1].load(std::memory_order_relaxed));
}

}  // namespace edgeguard
