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

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
#if defined(__SSE2__)
    // Sixteen bytes a step: object members compared whole (object traces) are 20 to 80 bytes long.
    if (n >= 16) {
        auto differ = [](const char* x, const char* y) {
            const __m128i vx = _mm_loadu_si128(reinterpret_cast<const __m128i*>(x));
            const __m128i vy = _mm_loadu_si128(reinterpret_cast<const __m128i*>(y));
            return _mm_movemask_epi8(_mm_cmpeq_epi8(vx, vy)) != 0xFFFF;
        };
        for (size_t i = 0; i + 16 < n; i += 16)
            if (differ(a + i, b + i)) return false;
        return !differ(a + n - 16, b + n - 16);  // the last sixteen, overlapping what was compared already
    }
#endif
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

// Whether the JSON string content at `raw` is exactly the n bytes `stored` holds: `stored` keeps them
// followed by a '"' and has at least 16 readable bytes; `raw` has at least 16 readable bytes too (a walked
// text is followed by simdjson's padding). The content and its closing quote are compared in one step:
// under 16 bytes (most keys and remembered values) that is one masked 16-byte comparison instead of a
// branch per size class and a separate test of the quote.
[[gnu::always_inline]] inline bool equal_quoted(const char* stored, const char* raw, size_t n) {
#if defined(__SSE2__)
    if (n < 16) {
        const __m128i vs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(stored));
        const __m128i vr = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw));
        const auto same = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(vs, vr)));
        const uint32_t wanted = (uint32_t{2} << n) - 1;  // the n bytes and the quote
        return (same & wanted) == wanted;
    }
#endif
    return equal_bytes(stored, raw, n + 1);
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

    explicit StringMemo(size_t capacity_pow2 = 8192) : slots_(capacity_pow2), mask_(capacity_pow2 - 1) {}

    // Looks up the pair (a, b) (b may be empty); null when absent.
    const Value* find(std::string_view a, std::string_view b, uint64_t hash) const {
        const uint32_t i = find_slot(a, b, hash);
        return i == kNoSlot ? nullptr : &slots_[i].value;
    }

    // The slot holding (a, b), or kNoSlot.
    uint32_t find_slot(std::string_view a, std::string_view b, uint64_t hash) const {
        for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (!(s.flags & kUsed)) return kNoSlot;
            if (s.hash == hash && holds(s, a, b)) return static_cast<uint32_t>(i);
        }
    }

    // The slot hinted to follow `previous` when it holds (a, b) exactly; kNoSlot otherwise.
    uint32_t predicted_slot(uint32_t previous, std::string_view a, std::string_view b) const {
        if (previous > mask_) return kNoSlot;
        const uint32_t next = slots_[previous].next_hint;
        if (next > mask_) return kNoSlot;
        const Slot& s = slots_[next];
        return (s.flags & kUsed) && holds(s, a, b) ? next : kNoSlot;
    }

    // Like predicted_slot, for a `b` not yet delimited: `raw` points at the content of a JSON string in a
    // text ending at `limit`. A hit needs a slot inserted with `b_is_raw` (its b has no escapes, so it is
    // its own JSON text) whose b equals the bytes at `raw` followed by the closing '"'; the string is then
    // exactly that b, and the caller need not scan for escapes or the quote.
    [[gnu::always_inline]] uint32_t predicted_raw(uint32_t previous, std::string_view a, const char* raw,
                                                  const char* limit) const {
        if (previous > mask_) return kNoSlot;
        return slot_if_raw(slots_[previous].next_hint, a, raw, limit);
    }

    // predicted_raw's test for a slot the caller remembered some other way (kNoSlot or a stale slot is a
    // miss, never a wrong answer: the comparison is exact).
    [[gnu::always_inline]] uint32_t slot_if_raw(uint32_t next, std::string_view a, const char* raw,
                                                const char* limit) const {
        if (next > mask_) return kNoSlot;
        const Slot& s = slots_[next];
        if (!(s.flags & kRaw) || s.split != a.size()) return kNoSlot;  // kRaw is only ever set with kUsed
        const size_t b_size = s.b_size;
        if (raw + b_size >= limit) return kNoSlot;
        const char* text = s.text.data();
        return memo_detail::equal_bytes(text, a.data(), a.size()) &&
                       memo_detail::equal_quoted(text + a.size(), raw, b_size)
                   ? next
                   : kNoSlot;
    }

    // slot_if_raw for a slot the caller knows holds its `a`: one it found holding (a, something) in this
    // generation (slots are only refilled after clear(), which starts a new generation), so only b is
    // compared. kNoSlot is a miss.
    [[gnu::always_inline]] uint32_t slot_if_raw_same_a(uint32_t next, const char* raw,
                                                       const char* limit) const {
        if (next > mask_) return kNoSlot;
        const Slot& s = slots_[next];
        const size_t b_size = s.b_size;
        if (!(s.flags & kRaw) || raw + b_size >= limit) return kNoSlot;
        return memo_detail::equal_quoted(s.text.data() + s.split, raw, b_size) ? next : kNoSlot;
    }

    // Starts at 1 and moves on at every clear(): a slot remembered with the generation it was found in still
    // holds the same strings while the generation is unchanged.
    uint32_t generation() const { return generation_; }
    size_t size() const { return used_; }
    size_t capacity() const { return slots_.size(); }

    // predicted_raw for a memo whose `a` is always empty (object keys).
    [[gnu::always_inline]] uint32_t predicted_raw(uint32_t previous, const char* raw,
                                                  const char* limit) const {
        if (previous > mask_) return kNoSlot;
        return raw_key_slot(slots_[previous].next_hint, raw, limit);
    }

    // predicted_raw's test, for a memo whose `a` is always empty, on a slot the caller found some other way
    // (kNoSlot or a stale slot is a miss, never a wrong answer: the comparison is exact).
    [[gnu::always_inline]] uint32_t raw_key_slot(uint32_t next, const char* raw, const char* limit) const {
        if (next > mask_) return kNoSlot;
        const Slot& s = slots_[next];
        const size_t b_size = s.b_size;
        if (!(s.flags & kRaw) || s.split != 0 || raw + b_size >= limit) return kNoSlot;
        return memo_detail::equal_quoted(s.text.data(), raw, b_size) ? next : kNoSlot;
    }

    // Remembers that `next` was looked up right after `previous`.
    void link(uint32_t previous, uint32_t next) {
        if (previous <= mask_) slots_[previous].next_hint = next;
    }

    const Value& value_at(uint32_t slot) const { return slots_[slot].value; }
    Value& value_at(uint32_t slot) { return slots_[slot].value; }
    size_t b_size_at(uint32_t slot) const { return slots_[slot].b_size; }

    // Inserts (a, b) (which must be absent) and returns its slot. `b_is_raw`: b is a JSON string's content
    // without escapes (see predicted_raw).
    uint32_t insert(std::string_view a, std::string_view b, uint64_t hash, const Value& value,
                    bool b_is_raw = false) {
        if ((used_ + 1) * 4 > slots_.size() * 3) clear();
        size_t i = hash & mask_;
        while (slots_[i].flags & kUsed) i = (i + 1) & mask_;
        Slot& s = slots_[i];
        s.flags = static_cast<uint8_t>(kUsed | (b_is_raw ? kRaw : 0));
        s.hash = hash;
        s.split = static_cast<uint32_t>(a.size());
        s.b_size = static_cast<uint32_t>(b.size());
        s.text.assign(a);
        s.text.append(b);
        s.text.push_back('"');  // equal_quoted compares b and the quote that closes it in the raw text
        if (s.text.size() < a.size() + 16) s.text.resize(a.size() + 16);
        s.value = value;
        s.next_hint = kNoSlot;
        ++used_;
        return static_cast<uint32_t>(i);
    }

    void clear() {
        for (auto& s : slots_) s.flags = 0;  // keeps each slot's string capacity for reuse
        used_ = 0;
        ++generation_;
    }

    uint64_t owner = 0;  // whose answers these are (a profile's unique id)

  private:
    static constexpr uint8_t kUsed = 1;
    static constexpr uint8_t kRaw = 2;  // b is escape-free JSON string content (predicted_raw may answer)

    struct Slot {
        uint8_t flags = 0;
        uint32_t split = 0;   // a's size
        uint32_t b_size = 0;  // b's size
        uint32_t next_hint = kNoSlot;
        uint64_t hash = 0;
        std::string text;  // a, b, '"', then zeros to at least 16 bytes after a (equal_quoted)
        Value value{};
    };

    static bool holds(const Slot& s, std::string_view a, std::string_view b) {
        return s.split == a.size() && s.b_size == b.size() &&
               memo_detail::equal_bytes(s.text.data(), a.data(), a.size()) &&
               memo_detail::equal_bytes(s.text.data() + a.size(), b.data(), b.size());
    }

    std::vector<Slot> slots_;
    uint32_t mask_;
    size_t used_ = 0;
    uint32_t generation_ = 1;
};

}  // namespace edgeguard::privacy
