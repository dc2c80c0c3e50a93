// Rate limits shared by several edgeguard instances through one Redis (`shared_limits:`).
//
// The same GCRA as rate_limiter.h runs atomically inside Redis as a Lua script (EVALSHA; loaded with SCRIPT
// LOAD on every (re)connect), with Redis's own clock so instances need no clock agreement. Each worker owns
// one RedisLimiter on its event_base: hiredis async + its libevent adapter, so a decision never blocks the
// loop. Every request carries its own timer (shared_limits.timeout); when Redis is slow, down, overloaded
// (too many answers outstanding) or answers with an error, the caller gets a decision at once from the
// fallback: the local table (fail_open, the default) or a refusal (fail_open: false), and the matching
// counter goes up. A reply arriving after its timeout is dropped.
//
// Reconnects after a lost connection are retried every second. hiredis resolves a host name with
// getaddrinfo when it (re)connects, never per request; use an IP literal to rule out even that.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/access/rate_limiter.h"

struct redisAsyncContext;

namespace edgeguard {

// Shared by every worker's RedisLimiter; exported as metrics.
struct RedisLimiterCounters {
    std::atomic<uint64_t> decisions{0};         // answered by Redis in time
    std::atomic<uint64_t> fallback_timeout{0};  // Redis slower than shared_limits.timeout
    std::atomic<uint64_t> fallback_down{0};     // not connected
    std::atomic<uint64_t> fallback_error{0};    // error reply, lost connection mid-request, unparseable reply
    std::atomic<uint64_t> fallback_overload{0};  // too many requests outstanding
    std::atomic<uint64_t> connects{0};
    std::atomic<uint64_t> disconnects{0};
    uint64_t fallbacks() const {
        return fallback_timeout.load() + fallback_down.load() + fallback_error.load() +
               fallback_overload.load();
    }
};

enum class DecisionSource { Redis, LocalFallback, RefusedFallback };

// What the caller needs to decide without Redis, and the key both sides agree on.
struct SharedLimitRequest {
    std::string_view redis_key;  // from redis_rate_limit_key()
    uint64_t local_key = 0;      // from rate_limit_key(), for the fallback table
    GcraParams params;
    RateLimitTable* fallback = nullptr;  // the limit's local table (RateLimiter::tables_for)
    Nanos now{0};                        // for the fallback table's clock
};

// Completion: called exactly once per decide(), on the worker's thread, possibly before decide() returns
// (immediate fallback). Plain function pointer + argument: no allocation per request.
using SharedLimitCallback = void (*)(void* arg, const RateLimitDecision& decision, DecisionSource source);

// "eg:rl:<limit>:ip:<address>", ":route:<name>" or ":hdr:<sha256 prefix of the value>" (header values such as
// tokens are never stored in Redis). Identical on every instance, unlike the seeded local hash.
std::string redis_rate_limit_key(const RateLimitConfig& limit, const RouteConfig& route,
                                 const IpAddress& client, std::string_view header_value);

// The Lua script, exposed for tests and for operators who want to read what runs in their Redis.
const std::string& gcra_lua_script();

class RedisLimiter {
  public:
    RedisLimiter(event_base* base, SharedLimitsConfig config, std::shared_ptr<RedisLimiterCounters> counters);
    ~RedisLimiter();  // pending callbacks are NOT called: destroy after no caller waits, or before its owners
    RedisLimiter(const RedisLimiter&) = delete;
    RedisLimiter& operator=(const RedisLimiter&) = delete;

    void start();  // connects (asynchronously)
    void decide(const SharedLimitRequest& request, SharedLimitCallback done, void* arg);
    // The caller behind `arg` is going away (client closed while a decision is pending): its callback will
    // not be called. Only needed between decide() and the callback.
    void cancel(void* arg);
    bool connected() const { return connected_; }
    size_t in_flight() const { return in_flight_; }

    static constexpr size_t kMaxInFlight = 4096;

  private:
    struct Pending;
    void connect();
    void schedule_reconnect();
    void fall_back(const SharedLimitRequest& request, SharedLimitCallback done, void* arg);
    void finish_fallback(Pending& p);
    Pending* acquire_pending();
    void release_pending(Pending* p);

    static void on_connect(const redisAsyncContext* ctx, int status);
    static void on_disconnect(const redisAsyncContext* ctx, int status);
    static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata);
    static void on_timeout(evutil_socket_t, short, void* arg);
    static void on_reconnect_timer(evutil_socket_t, short, void* arg);

    event_base* base_;
    SharedLimitsConfig config_;
    std::shared_ptr<RedisLimiterCounters> counters_;
    redisAsyncContext* ctx_ = nullptr;
    bool connected_ = false;
    bool closing_ = false;
    size_t in_flight_ = 0;
    event* reconnect_timer_ = nullptr;
    std::string script_sha1_;
    std::vector<std::unique_ptr<Pending>> all_pending_;  // owns every Pending ever made; reused via free_
    std::vector<Pending*> free_;
};

}  // namespace edgeguard
