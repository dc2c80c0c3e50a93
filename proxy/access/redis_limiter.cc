#include "proxy/access/redis_limiter.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>

#include <cmath>

namespace edgeguard {

namespace {

constexpr timeval kReconnectDelay{1, 0};

// GCRA in microseconds (Lua numbers are doubles: exact up to 2^53, which microseconds since 1970 are far
// below, nanoseconds are not). Redis's TIME is the one clock every instance shares. Returns {allowed, a, b}:
// allowed -> a = slack (now - allow_at), b = new TAT - now;
//                          denied  -> a = wait until allowed,   b = TAT - now.
const char* const kScript = R"lua(
if redis.replicate_commands then redis.replicate_commands() end
local emission = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local stored = redis.call('GET', KEYS[1])
local tat = now
if stored then
  local v = tonumber(stored)
  if v and v > now then tat = v end
end
local candidate = tat + emission
local allow_at = candidate - tolerance
if now < allow_at then
  return {0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], candidate, 'PX', math.ceil((candidate - now) / 1000) + 1000)
return {1, now - allow_at, candidate - now}
)lua";

std::string hex_digest(const EVP_MD* md, std::string_view data) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(data.data(), data.size(), digest, &len, md, nullptr) != 1) return "";
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(kHex[digest[i] >> 4]);
        out.push_back(kHex[digest[i] & 0xf]);
    }
    return out;
}

uint32_t ceil_seconds_us(long long us) {
    if (us <= 0) return 0;
    return static_cast<uint32_t>((us + 999'999) / 1'000'000);
}

}  // namespace

struct RedisLimiter::Pending {
    RedisLimiter* owner = nullptr;
    event* timer = nullptr;
    SharedLimitCallback done = nullptr;
    void* arg = nullptr;
    uint64_t local_key = 0;
    GcraParams params;
    RateLimitTable* fallback = nullptr;
    Nanos now{0};
    bool answered = false;  // the caller has its decision (from Redis or a timeout fallback)
};

const std::string& gcra_lua_script() {
    static const std::string script(kScript);
    return script;
}

std::string redis_rate_limit_key(const RateLimitConfig& limit, const RouteConfig& route,
                                 const IpAddress& client, std::string_view header_value) {
    std::string key = "eg:rl:" + limit.name;
    switch (limit.key) {
        case RateLimitConfig::Key::Route:
            return key + ":route:" + route.name;
        case RateLimitConfig::Key::Header:
            if (!header_value.empty())
                return key + ":hdr:" + hex_digest(EVP_sha256(), header_value).substr(0, 32);
            break;
        case RateLimitConfig::Key::ClientIp:
            break;
    }
    return key + ":ip:" + client.str();
}

RedisLimiter::RedisLimiter(event_base* base, SharedLimitsConfig config,
                           std::shared_ptr<RedisLimiterCounters> counters)
    : base_(base), config_(std::move(config)), counters_(std::move(counters)) {
    script_sha1_ = hex_digest(EVP_sha1(), gcra_lua_script());
    reconnect_timer_ = evtimer_new(base_, &RedisLimiter::on_reconnect_timer, this);
}

RedisLimiter::~RedisLimiter() {
    closing_ = true;
    if (ctx_ != nullptr) {
        redisAsyncContext* ctx = ctx_;
        ctx_ = nullptr;
        redisAsyncFree(
            ctx);  // runs the outstanding reply callbacks with no reply; closing_ makes them no-ops
    }
    for (auto& p : all_pending_) {
        if (p->timer != nullptr) event_free(p->timer);
    }
    if (reconnect_timer_ != nullptr) event_free(reconnect_timer_);
}

void RedisLimiter::start() {
    connect();
}

void RedisLimiter::connect() {
    if (closing_ || ctx_ != nullptr) return;
    redisAsyncContext* ctx =
        redisAsyncConnect(config_.redis_address.host.c_str(), config_.redis_address.port);
    if (ctx == nullptr || ctx->err != 0) {
        if (ctx != nullptr) redisAsyncFree(ctx);
        schedule_reconnect();
        return;
    }
    ctx->data = this;
    if (redisLibeventAttach(ctx, base_) != REDIS_OK) {
        redisAsyncFree(ctx);
        schedule_reconnect();
        return;
    }
    redisAsyncSetConnectCallback(ctx, &RedisLimiter::on_connect);
    redisAsyncSetDisconnectCallback(ctx, &RedisLimiter::on_disconnect);
    ctx_ = ctx;
    // Queued now, sent first once connected: commands on one connection run in order, so every EVALSHA after
    // this finds the script.
    if (config_.redis_db != 0) redisAsyncCommand(ctx_, nullptr, nullptr, "SELECT %u", config_.redis_db);
    redisAsyncCommand(ctx_, nullptr, nullptr, "SCRIPT LOAD %s", gcra_lua_script().c_str());
}

void RedisLimiter::schedule_reconnect() {
    if (closing_ || reconnect_timer_ == nullptr || evtimer_pending(reconnect_timer_, nullptr)) return;
    evtimer_add(reconnect_timer_, &kReconnectDelay);
}

void RedisLimiter::on_reconnect_timer(evutil_socket_t, short, void* arg) {
    static_cast<RedisLimiter*>(arg)->connect();
}

void RedisLimiter::on_connect(const redisAsyncContext* ctx, int status) {
    auto* self = static_cast<RedisLimiter*>(ctx->data);
    if (self == nullptr || self->closing_) return;
    if (status != REDIS_OK) {
        // hiredis frees the context after a failed connect.
        self->ctx_ = nullptr;
        self->connected_ = false;
        self->schedule_reconnect();
        return;
    }
    self->connected_ = true;
    self->counters_->connects.fetch_add(1, std::memory_order_relaxed);
}

void RedisLimiter::on_disconnect(const redisAsyncContext* ctx, int) {
    auto* self = static_cast<RedisLimiter*>(ctx->data);
    if (self == nullptr || self->closing_) return;
    if (self->connected_) self->counters_->disconnects.fetch_add(1, std::memory_order_relaxed);
    self->ctx_ = nullptr;
    self->connected_ = false;
    self->schedule_reconnect();
}

RedisLimiter::Pending* RedisLimiter::acquire_pending() {
    if (!free_.empty()) {
        Pending* p = free_.back();
        free_.pop_back();
        return p;
    }
    auto p = std::make_unique<Pending>();
    p->owner = this;
    p->timer = evtimer_new(base_, &RedisLimiter::on_timeout, p.get());
    all_pending_.push_back(std::move(p));
    return all_pending_.back().get();
}

void RedisLimiter::release_pending(Pending* p) {
    if (p->timer != nullptr) evtimer_del(p->timer);
    p->done = nullptr;
    p->arg = nullptr;
    p->answered = false;
    free_.push_back(p);
}

void RedisLimiter::fall_back(const SharedLimitRequest& r, SharedLimitCallback done, void* arg) {
    if (config_.fail_open) {
        RateLimitDecision d;
        if (r.fallback != nullptr) d = r.fallback->decide(r.local_key, r.params, r.now);
        done(arg, d, DecisionSource::LocalFallback);
        return;
    }
    RateLimitDecision refused;
    refused.allowed = false;
    refused.limit = r.params.burst;
    refused.retry_after = std::chrono::seconds(1);
    refused.retry_after_seconds = 1;
    refused.reset_seconds = 1;
    done(arg, refused, DecisionSource::RefusedFallback);
}

void RedisLimiter::finish_fallback(Pending& p) {
    SharedLimitRequest r;
    r.local_key = p.local_key;
    r.params = p.params;
    r.fallback = p.fallback;
    r.now = p.now;
    p.answered = true;
    fall_back(r, p.done, p.arg);
}

void RedisLimiter::decide(const SharedLimitRequest& r, SharedLimitCallback done, void* arg) {
    if (!connected_ || ctx_ == nullptr) {
        counters_->fallback_down.fetch_add(1, std::memory_order_relaxed);
        fall_back(r, done, arg);
        return;
    }
    if (in_flight_ >= kMaxInFlight) {
        counters_->fallback_overload.fetch_add(1, std::memory_order_relaxed);
        fall_back(r, done, arg);
        return;
    }
    Pending* p = acquire_pending();
    p->done = done;
    p->arg = arg;
    p->local_key = r.local_key;
    p->params = r.params;
    p->fallback = r.fallback;
    p->now = r.now;
    p->answered = false;

    // The script counts in microseconds.
    const long long emission_us = std::max<long long>(1, r.params.emission_ns / 1000);
    const long long tolerance_us = emission_us * static_cast<long long>(r.params.burst);
    const std::string emission = std::to_string(emission_us);
    const std::string tolerance = std::to_string(tolerance_us);
    const char* argv[] = {"EVALSHA",          script_sha1_.c_str(), "1",
                          r.redis_key.data(), emission.c_str(),     tolerance.c_str()};
    const size_t argvlen[] = {
        7, script_sha1_.size(), 1, r.redis_key.size(), emission.size(), tolerance.size()};
    if (redisAsyncCommandArgv(ctx_, &RedisLimiter::on_reply, p, 6, argv, argvlen) != REDIS_OK) {
        release_pending(p);
        counters_->fallback_error.fetch_add(1, std::memory_order_relaxed);
        fall_back(r, done, arg);
        return;
    }
    ++in_flight_;
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(config_.timeout).count();
    const timeval tv{static_cast<time_t>(us / 1'000'000), static_cast<suseconds_t>(us % 1'000'000)};
    evtimer_add(p->timer, &tv);
}

void RedisLimiter::cancel(void* arg) {
    for (auto& p : all_pending_) {
        if (p->arg != arg || p->done == nullptr || p->answered) continue;
        // Stays queued in hiredis until Redis answers; the reply is then dropped like a late one.
        p->answered = true;
        evtimer_del(p->timer);
    }
}

void RedisLimiter::on_timeout(evutil_socket_t, short, void* arg) {
    auto* p = static_cast<Pending*>(arg);
    if (p->answered || p->done == nullptr) return;
    p->owner->counters_->fallback_timeout.fetch_add(1, std::memory_order_relaxed);
    // The Pending stays queued in hiredis until Redis answers (or the connection drops); that reply is
    // dropped.
    p->owner->finish_fallback(*p);
}

void RedisLimiter::on_reply(redisAsyncContext* ctx, void* reply_ptr, void* privdata) {
    auto* p = static_cast<Pending*>(privdata);
    auto* self = static_cast<RedisLimiter*>(ctx->data);
    if (p == nullptr || self == nullptr || self->closing_) return;
    --self->in_flight_;
    if (!p->answered) {
        evtimer_del(p->timer);
        const auto* reply = static_cast<const redisReply*>(reply_ptr);
        const bool ok = reply != nullptr && reply->type == REDIS_REPLY_ARRAY && reply->elements == 3 &&
                        reply->element[0]->type == REDIS_REPLY_INTEGER &&
                        reply->element[1]->type == REDIS_REPLY_INTEGER &&
                        reply->element[2]->type == REDIS_REPLY_INTEGER;
        if (!ok) {
            if (reply != nullptr && reply->type == REDIS_REPLY_ERROR && self->ctx_ != nullptr &&
                std::string_view(reply->str, reply->len).rfind("NOSCRIPT", 0) == 0) {
                // Someone flushed the script cache; load it again for the next requests.
                redisAsyncCommand(self->ctx_, nullptr, nullptr, "SCRIPT LOAD %s", gcra_lua_script().c_str());
            }
            self->counters_->fallback_error.fetch_add(1, std::memory_order_relaxed);
            self->finish_fallback(*p);
        } else {
            const long long allowed = reply->element[0]->integer;
            const long long a = reply->element[1]->integer;
            const long long b = reply->element[2]->integer;
            const long long emission_us = std::max<long long>(1, p->params.emission_ns / 1000);
            RateLimitDecision d;
            d.limit = p->params.burst;
            if (allowed == 1) {
                d.allowed = true;
                d.remaining = static_cast<uint32_t>(std::min<long long>(a / emission_us, p->params.burst));
                d.reset_seconds = ceil_seconds_us(b);
            } else {
                d.allowed = false;
                d.retry_after = std::chrono::microseconds(a);
                d.retry_after_seconds = std::max<uint32_t>(1, ceil_seconds_us(a));
                d.reset_seconds = ceil_seconds_us(b);
            }
            p->answered = true;
            self->counters_->decisions.fetch_add(1, std::memory_order_relaxed);
            p->done(p->arg, d, DecisionSource::Redis);
        }
    }
    self->release_pending(p);
}

}  // namespace edgeguard
