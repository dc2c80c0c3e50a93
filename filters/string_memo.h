// A small per-thread memo from short strings to a value: open addressing, a cheap multiply-mix hash, exact
// string comparison (never hash-only, so distinct inputs cannot collide into a wrong answer). It forgets
// everything when 3/4 full, which bounds memory when clients send many distinct strings.
//
// Lookups in document order repeat: events of one batch (and of the next request from the same SDK) share
// their shape, so the key that followed key K last time is very likely to follow it again. Each slot keeps
// the slot that was looked up right after it as a hint; a caller that passes the previous slot gets the
// hinted slot checked first (an exact comparison, so a stale hint only costs the fallback to hashing).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

namespace memo_detail {
// The last 0..7 bytes of a string as one word, without a variable-length memcpy (which becomes a call).
inline uint64_t load_tail(const char* p, size_t n) {
    if (n >= 4) {
        uint32_t lo, hi;
        std::memcpy(&lo, p, 4);
        std::memcpy(&hi, p + n - 4, 4);
        return (uint64_t{hi} << 32) | lo;
    }
    if (n == 0) return 0;
    const auto b0 = static_cast<unsigned char>(p[0]);
    const auto b1 = static_cast<unsigned char>(p[n / 2]);
    const auto b2 = static_cast<unsigned char>(p[n - 1]);
    return uint64_t{b0} | (uint64_t{b1} << 8) | (uint64_t{b2} << 16);
}

// Equality of two byte ranges of length n, inline: the memo's strings are short and a libc memcmp call
// per lookup costs more than the comparison itself.
[[gnu::always_inline]] inline bool equal_bytes(const char* a, const char* b, size_t n) {
    if (n >= 8) {
        size_t i = 0;
        for (; i + 8 < n; i += 8) {
            uint64_t x, y;
            std::memcpy(&x, a + i, 8);
            std::memcpy(&y, b + i, 8);
            if (x != y) return false;
        }
        uint64_t x, y;  // the last eight bytes, overlapping what was compared already
        std::memcpy(&x, a + n - 8, 8);
        std::memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    return load_tail(a, n) == load_tail(b, n);
}
}  // namespace memo_detail

inline uint64_t fast_string_hash(std::string_view a, std::string_view b = {}) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (a.size() * 0x100000001B3ull) ^ (b.size() << 32);
    auto mix = [&](std::string_view s) {
        size_t i = 0;
        for (; i + 8 <= s.size(); i += 8) {
            uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
            h ^= h >> 29;
        }
        h = (h ^ memo_detail::load_tail(s.data() + i, s.size() - i)) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    };
    mix(a);
    if (!b.empty()) mix(b);
    return h;
}

template <class Value>
class StringMemo {
public:
    static constexpr uint32_t kNoSlot = ~uint32_t{0};

    explicit StringMemo(size_t capacity_pow2 = 8192) : slots_(capacity_pow2) {}

    // Looks up the pair (a, b) (b may be empty); null when absent.
    const Value* find(std::string_view a, std::string_view b, uint64_t hash) const {
        const uint32_t i = find_slot(a, b, hash);
        return i == kNoSlot ? nullptr : &slots_[i].value;
    }

    // The slot holding (a, b), or kNoSlot.
    uint32_t find_slot(std::string_view a, std::string_view b, uint64_t hash) const {
        const size_t mask = slots_.size() - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask) {
            const Slot& s = slots_[i];
            if (!s.used) return kNoSlot;
            if (s.hash == hash && holds(s, a, b)) return static_cast<uint32_t>(i);
        }
    }

    // The slot hinted to follow `previous` when it holds (a, b) exactly; kNoSlot otherwise.
    uint32_t predicted_slot(uint32_t previous, std::string_view a, std::string_view b) const {
        if (previous >= slots_.size()) return kNoSlot;
        const uint32_t next = slots_[previous].next_hint;
        if (next >= slots_.size()) return kNoSlot;
        const Slot& s = slots_[next];
        return s.used && holds(s, a, b) ? next : kNoSlot;
    }

    // Remembers that `next` was looked up right after `previous`.
    void link(uint32_t previous, uint32_t next) {
        if (previous < slots_.size()) slots_[previous].next_hint = next;
    }

    const Value& value_at(uint32_t slot) const { return slots_[slot].value; }

    // Inserts (a, b) (which must be absent) and returns its slot.
    uint32_t insert(std::string_view a, std::string_view b, uint64_t hash, const Value& value) {
        if ((used_ + 1) * 4 > slots_.size() * 3) clear();
        const size_t mask = slots_.size() - 1;
        size_t i = hash & mask;
        while (slots_[i].used) i = (i + 1) & mask;
        Slot& s = slots_[i];
        s.used = true;
        s.hash = hash;
        s.split = static_cast<uint32_t>(a.size());
        s.text.assign(a);
        s.text.append(b);
        s.value = value;
        s.next_hint = kNoSlot;
        ++used_;
        return static_cast<uint32_t>(i);
    }

    void clear() {
        for (auto& s : slots_) s.used = false;  // keeps each slot's string capacity for reuse
        used_ = 0;
    }

    uint64_t owner = 0;  // whose answers these are (a profile's unique id)

private:
    struct Slot {
        bool used = false;
        uint32_t split = 0;
        uint32_t next_hint = kNoSlot;
        uint64_t hash = 0;
        std::string text;
        Value value{};
    };

    static bool holds(const Slot& s, std::string_view a, std::string_view b) {
        return s.split == a.size() && s.text.size() == a.size() + b.size() &&
               memo_detail::equal_bytes(s.text.data(), a.data(), a.size()) &&
               memo_detail::equal_bytes(s.text.data() + a.size(), b.data(), b.size());
    }

    std::vector<Slot> slots_;
    size_t used_ = 0;
};

}  // namespace edgeguard::privacy
