// Local rate limiting with GCRA (the generic cell rate algorithm: a token bucket kept as one timestamp).
//
// Each key's whole state is its "theoretical arrival time" (TAT). A request at `now` is allowed when
// max(TAT, now) + T - burst*T <= now, with T = 1/rate; then TAT moves on by T. A key whose TAT lies in the
// past has a full bucket and is indistinguishable from a key never seen, so idle keys expire for free: their
// slot is simply reused.
//
// Memory: a fixed table allocated once per rate limit, 16 bytes per slot, twice as many slots as the key
// budget: 1,048,576 keys = 2,097,152 slots = 32 MiB, no matter how many distinct clients arrive. Pages are
// zero-filled lazily by the kernel, so a lightly used table costs far less resident memory. When every slot
// a key may use (a probe window of 8) holds a live key, the request is allowed and counted (fail open:
// refusing a stranger because other clients are busy would be worse).
//
// Concurrency: slots are updated with compare-and-swap; no lock anywhere. Slots are grouped in shards
// (the top bits of the key hash choose the shard, probing stays inside it) so unrelated keys rarely share
// cache lines. Two threads creating the same new key at the same instant may each claim a slot, which lets
// that key through one extra burst once; counting on an existing key is exact.
//
// State lives in RateLimiter, outside the config snapshot: reloads keep every counter; a changed rate or
// burst applies to existing TATs at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/access/cidr.h"
#include "proxy/config/config.h"

namespace edgeguard {

using Nanos = std::chrono::nanoseconds;

struct RateLimitDecision {
    bool allowed = true;
    // Header values: RateLimit-Limit (the burst), RateLimit-Remaining (requests allowed right now after this
    // one), RateLimit-Reset (seconds until the bucket is full again), Retry-After (seconds, denied only).
    uint32_t limit = 0;
    uint32_t remaining = 0;
    uint32_t reset_seconds = 0;
    uint32_t retry_after_seconds = 0;
    Nanos retry_after{0};  // exact wait before the next request can pass (denied only)
};

// GCRA parameters in the integer form the table uses.
struct GcraParams {
    int64_t emission_ns = 0;   // T: nanoseconds per request at the sustained rate
    int64_t tolerance_ns = 0;  // burst * T
    uint32_t burst = 0;
    static GcraParams from(double rate_per_second, uint32_t burst);
};

// The pure GCRA step, shared by the local table and the Redis script: given the stored TAT (<= now when idle
// or new), decides and returns the TAT to store (unchanged when denied).
RateLimitDecision gcra_decide(const GcraParams& p, int64_t tat_ns, int64_t now_ns, int64_t& new_tat_ns);

// One rate limit's state: a fixed lock-free table of key hash -> TAT.
class RateLimitTable {
  public:
    explicit RateLimitTable(size_t max_keys = size_t{1} << 20);
    ~RateLimitTable();
    RateLimitTable(const RateLimitTable&) = delete;
    RateLimitTable& operator=(const RateLimitTable&) = delete;

    // `key_hash` from rate_limit_key(); `now` from any monotonic clock (tests inject their own), in ns.
    RateLimitDecision decide(uint64_t key_hash, const GcraParams& params, Nanos now);

    size_t slot_count() const { return slot_count_; }
    size_t memory_bytes() const;
    uint64_t table_full_count() const { return table_full_.load(std::memory_order_relaxed); }

  private:
    struct Slot;
    Slot* slots_;
    size_t slot_count_;
    size_t shard_mask_;  // shards - 1
    size_t shard_bits_;  // log2(slots per shard)
    std::atomic<uint64_t> table_full_{0};
};

// A seeded 64-bit hash of the rate-limit key (never 0). Seeded per process so nobody can pick header values
// that collide.
uint64_t rate_limit_key_hash(std::string_view bytes);

// The key a request is counted under: the client IP, the route name, or a header's value (client IP when the
// request lacks the header, so leaving it out does not escape the limit).
uint64_t rate_limit_key(const RateLimitConfig& limit, const RouteConfig& route, const IpAddress& client,
                        std::string_view header_value);

// Every rate limit's table, kept across config reloads. Thread-safe; `decide` is lock-free.
class RateLimiter {
  public:
    explicit RateLimiter(size_t max_keys_per_limit = size_t{1} << 20);

    // Called when a snapshot is built or installed (not on the request path): creates tables for new limit
    // names and keeps existing ones. Returns one table per config.rate_limits entry, same order.
    std::vector<std::shared_ptr<RateLimitTable>> tables_for(const Config& config);

    // The request-path call. `table` is tables_for()[i] for `limit` = config.rate_limits[i]. Exempt clients
    // are always allowed (limit == 0 in the decision marks "not limited": send no RateLimit headers).
    static RateLimitDecision check(RateLimitTable& table, const RateLimitConfig& limit,
                                   const RouteConfig& route, const IpAddress& client,
                                   std::string_view header_value, Nanos now);

    static Nanos steady_now() {
        return std::chrono::duration_cast<Nanos>(std::chrono::steady_clock::now().time_since_epoch());
    }

  private:
    size_t max_keys_;
    std::mutex mutex_;  // guards the name map during reloads only
    std::map<std::string, std::shared_ptr<RateLimitTable>, std::less<>> tables_;
};

}  // namespace edgeguard
