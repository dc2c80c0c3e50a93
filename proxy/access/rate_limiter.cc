#include "proxy/access/rate_limiter.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <random>
#include <thread>

namespace edgeguard {

namespace {

constexpr int64_t kNsPerSecond = 1'000'000'000;
constexpr int64_t kLocked = std::numeric_limits<int64_t>::min();  // a slot being handed to a new key
constexpr size_t kProbeWindow = 8;
constexpr size_t kMaxSlotsPerShard = 4096;  // 64 KiB of slots per shard

uint32_t ceil_seconds(int64_t ns) {
    if (ns <= 0) return 0;
    const int64_t s = (ns + kNsPerSecond - 1) / kNsPerSecond;
    return s > std::numeric_limits<uint32_t>::max() ? std::numeric_limits<uint32_t>::max()
                                                    : static_cast<uint32_t>(s);
}

uint64_t mix(uint64_t x) {  // splitmix64 finalizer
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

uint64_t process_seed() {
    // Chosen once at startup and never changed: colliding keys cannot be precomputed offline.
    static const uint64_t seed = [] {
        std::random_device rd;
        return (static_cast<uint64_t>(rd()) << 32) ^ rd();
    }();
    return seed;
}

uint64_t hash_tagged(uint64_t tag, const void* data, size_t len) {
    const auto* p = static_cast<const unsigned char*>(data);
    uint64_t h = mix(process_seed() ^ (tag * 0x9e3779b97f4a7c15ULL) ^ len);
    while (len >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        h = mix(h ^ w);
        p += 8;
        len -= 8;
    }
    uint64_t tail = 0;
    std::memcpy(&tail, p, len);
    h = mix(h ^ tail ^ (static_cast<uint64_t>(len) << 56));
    return h == 0 ? 1 : h;  // 0 marks an empty slot
}

size_t next_pow2(size_t v) {
    size_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

}  // namespace

GcraParams GcraParams::from(double rate_per_second, uint32_t burst) {
    GcraParams p;
    p.burst = burst == 0 ? 1 : burst;
    // burst * T must stay far from int64 overflow (TATs are added to clock readings): cap it at ~126 years,
    // which only bites for rates below one request per century per burst slot.
    const double max_t = 4e18 / static_cast<double>(p.burst);
    const double t = rate_per_second > 0 ? 1e9 / rate_per_second : max_t;
    p.emission_ns = std::max<int64_t>(1, static_cast<int64_t>(std::llround(std::min(t, max_t))));
    p.tolerance_ns = p.emission_ns * static_cast<int64_t>(p.burst);
    return p;
}

RateLimitDecision gcra_decide(const GcraParams& p, int64_t tat_ns, int64_t now_ns, int64_t& new_tat_ns) {
    RateLimitDecision d;
    d.limit = p.burst;
    const int64_t base = std::max(tat_ns, now_ns);
    const int64_t candidate = base + p.emission_ns;
    const int64_t allow_at = candidate - p.tolerance_ns;
    if (now_ns < allow_at) {
        d.allowed = false;
        d.remaining = 0;
        d.retry_after = Nanos(allow_at - now_ns);
        d.retry_after_seconds = std::max<uint32_t>(1, ceil_seconds(allow_at - now_ns));
        d.reset_seconds = ceil_seconds(base - now_ns);
        new_tat_ns = tat_ns;
        return d;
    }
    d.allowed = true;
    d.remaining = static_cast<uint32_t>(std::min<int64_t>((now_ns - allow_at) / p.emission_ns, p.burst));
    d.reset_seconds = ceil_seconds(candidate - now_ns);
    new_tat_ns = candidate;
    return d;
}

// Plain integers accessed through std::atomic_ref: the table comes zero-filled from calloc, so an untouched
// slot costs no resident memory and needs no constructor.
struct RateLimitTable::Slot {
    uint64_t key;  // 0 = never used
    int64_t tat;   // ns on the caller's clock; <= now means idle (full bucket); kLocked while being claimed
};

RateLimitTable::RateLimitTable(size_t max_keys) {
    slot_count_ = next_pow2(std::max<size_t>(max_keys * 2, kProbeWindow));
    const size_t per_shard = std::min(slot_count_, kMaxSlotsPerShard);
    shard_bits_ = static_cast<size_t>(__builtin_ctzll(per_shard));
    shard_mask_ = slot_count_ / per_shard - 1;
    slots_ = static_cast<Slot*>(std::calloc(slot_count_, sizeof(Slot)));
    if (slots_ == nullptr) throw std::bad_alloc();  // construction happens at config load, never per request
}

RateLimitTable::~RateLimitTable() {
    std::free(slots_);
}

size_t RateLimitTable::memory_bytes() const {
    return slot_count_ * sizeof(Slot);
}

RateLimitDecision RateLimitTable::decide(uint64_t key, const GcraParams& params, Nanos now_d) {
    const int64_t now = now_d.count();
    const size_t per_shard = size_t{1} << shard_bits_;
    const size_t shard_base = ((key >> 40) & shard_mask_) << shard_bits_;
    const size_t start = static_cast<size_t>(key) & (per_shard - 1);
    auto slot_at = [&](size_t j) -> Slot& { return slots_[shard_base + ((start + j) & (per_shard - 1))]; };

    for (;;) {
        // 1. The key's own slot, if it has one.
        Slot* own = nullptr;
        for (size_t j = 0; j < kProbeWindow && own == nullptr; ++j) {
            Slot& s = slot_at(j);
            if (std::atomic_ref<uint64_t>(s.key).load(std::memory_order_acquire) == key) own = &s;
        }
        if (own != nullptr) {
            std::atomic_ref<int64_t> tat(own->tat);
            std::atomic_ref<uint64_t> owner(own->key);
            bool reclaimed = false;
            for (unsigned spins = 0;; ++spins) {
                int64_t t = tat.load(std::memory_order_acquire);
                if (t == kLocked) {
                    // Another thread is handing this slot over, a few instructions; yield in case it was
                    // preempted.
                    if (spins > 64) std::this_thread::yield();
                    continue;
                }
                if (owner.load(std::memory_order_acquire) != key) {
                    reclaimed = true;  // went idle and was given to another key; look again
                    break;
                }
                int64_t next = 0;
                RateLimitDecision d = gcra_decide(params, t, now, next);
                if (!d.allowed) return d;
                if (tat.compare_exchange_weak(t, next, std::memory_order_acq_rel)) return d;
            }
            if (reclaimed) continue;
        }

        // 2. A new (or expired) key: take any idle slot in the window. Idle slots hold no information.
        for (size_t j = 0; j < kProbeWindow; ++j) {
            Slot& s = slot_at(j);
            std::atomic_ref<int64_t> tat(s.tat);
            int64_t t = tat.load(std::memory_order_acquire);
            if (t == kLocked || t > now) continue;
            if (!tat.compare_exchange_strong(t, kLocked, std::memory_order_acq_rel)) continue;
            std::atomic_ref<uint64_t>(s.key).store(key, std::memory_order_release);
            int64_t next = 0;
            RateLimitDecision d = gcra_decide(params, now, now, next);
            tat.store(d.allowed ? next : now, std::memory_order_release);
            return d;
        }

        // 3. Every slot this key may use belongs to a live key: fail open, counted.
        table_full_.fetch_add(1, std::memory_order_relaxed);
        int64_t unused = 0;
        return gcra_decide(params, now, now, unused);
    }
}

uint64_t rate_limit_key_hash(std::string_view bytes) {
    return hash_tagged(0, bytes.data(), bytes.size());
}

uint64_t rate_limit_key(const RateLimitConfig& limit, const RouteConfig& route, const IpAddress& client,
                        std::string_view header_value) {
    switch (limit.key) {
        case RateLimitConfig::Key::Route:
            return hash_tagged(2, route.name.data(), route.name.size());
        case RateLimitConfig::Key::Header:
            if (!header_value.empty()) return hash_tagged(3, header_value.data(), header_value.size());
            break;
        case RateLimitConfig::Key::ClientIp:
            break;
    }
    return hash_tagged(1, client.bytes.data(), client.bytes.size());
}

RateLimiter::RateLimiter(size_t max_keys_per_limit) : max_keys_(max_keys_per_limit) {}

std::vector<std::shared_ptr<RateLimitTable>> RateLimiter::tables_for(const Config& config) {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::shared_ptr<RateLimitTable>> out;
    out.reserve(config.rate_limits.size());
    for (const RateLimitConfig& limit : config.rate_limits) {
        auto& table = tables_[limit.name];
        if (!table) table = std::make_shared<RateLimitTable>(max_keys_);
        out.push_back(table);
    }
    // Tables of limits no longer configured are dropped once no snapshot refers to them.
    for (auto it = tables_.begin(); it != tables_.end();) {
        bool used = false;
        for (const RateLimitConfig& limit : config.rate_limits) used = used || limit.name == it->first;
        it = used ? std::next(it) : tables_.erase(it);
    }
    return out;
}

RateLimitDecision RateLimiter::check(RateLimitTable& table, const RateLimitConfig& limit,
                                     const RouteConfig& route, const IpAddress& client,
                                     std::string_view header_value, Nanos now) {
    if (!limit.exempt.empty() && limit.exempt.contains(client)) return RateLimitDecision{};
    const GcraParams params = GcraParams::from(limit.rate_per_second, limit.burst);
    return table.decide(rate_limit_key(limit, route, client, header_value), params, now);
}

}  // namespace edgeguard
