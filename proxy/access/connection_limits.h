// Concurrent client connections, in total and per client IP. Shared by every worker thread with
// atomics only. Per-IP counts live in a fixed count-min sketch (two rows of 65,536 counters, 512 KiB): an
// address's count is the smaller of its two counters, which is never below the truth and only above it when
// both of its counters are shared with other busy addresses, so a limit can refuse early in rare
// collisions but never lets an address exceed it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "proxy/access/cidr.h"

namespace edgeguard {

class ConnectionLimits {
  public:
    enum class Verdict { Admitted, TooManyTotal, TooManyFromIp };

    // What the connection must hand back to release(); keeps release from re-hashing or guessing.
    struct Ticket {
        uint32_t row0 = 0;
        uint32_t row1 = 0;
        bool held = false;
    };

    ConnectionLimits();

    // On accept, with the TCP peer's address. Limits come from the current snapshot (0 per IP = unlimited),
    // so a reload changes them at once. A refusal is counted and holds nothing.
    Verdict try_admit(const IpAddress& peer, uint32_t max_total, uint32_t max_per_ip, Ticket& ticket);
    // On close of an admitted connection. Safe to call with a ticket that holds nothing.
    void release(Ticket& ticket);

    uint32_t active() const { return total_.load(std::memory_order_relaxed); }
    uint32_t active_from(const IpAddress& ip) const;
    uint64_t refused_total_limit() const { return refused_total_.load(std::memory_order_relaxed); }
    uint64_t refused_per_ip_limit() const { return refused_per_ip_.load(std::memory_order_relaxed); }

  private:
    static constexpr uint32_t kRowSize = 1u << 16;
    std::unique_ptr<std::atomic<uint32_t>[]> counters_;  // 2 rows
    std::atomic<uint32_t> total_{0};
    std::atomic<uint64_t> refused_total_{0};
    std::atomic<uint64_t> refused_per_ip_{0};
};

}  // namespace edgeguard
