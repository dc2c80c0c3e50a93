// A small per-thread memo from short strings to a value: open addressing, a cheap multiply-mix hash, exact
// string comparison (never hash-only, so distinct inputs cannot collide into a wrong answer). It forgets
// everything when 3/4 full, which bounds memory when clients send many distinct strings.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

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
        uint64_t tail = 0;
        if (i < s.size()) std::memcpy(&tail, s.data() + i, s.size() - i);  // data() may be null when empty
        h = (h ^ tail) * 0x94D049BB133111EBull;
        h ^= h >> 31;
    };
    mix(a);
    if (!b.empty()) mix(b);
    return h;
}

template <class Value>
class StringMemo {
public:
    explicit StringMemo(size_t capacity_pow2 = 8192) : slots_(capacity_pow2) {}

    // Looks up the pair (a, b) (b may be empty); null when absent.
    const Value* find(std::string_view a, std::string_view b, uint64_t hash) const {
        const size_t mask = slots_.size() - 1;
        for (size_t i = hash & mask;; i = (i + 1) & mask) {
            const Slot& s = slots_[i];
            if (!s.used) return nullptr;
            if (s.hash == hash && s.split == a.size() && s.text.size() == a.size() + b.size() &&
                // Empty views may carry a null data(); memcmp on null is undefined even for 0 bytes.
                (a.empty() || std::memcmp(s.text.data(), a.data(), a.size()) == 0) &&
                (b.empty() || std::memcmp(s.text.data() + a.size(), b.data(), b.size()) == 0)) {
                return &s.value;
            }
        }
    }

    void insert(std::string_view a, std::string_view b, uint64_t hash, const Value& value) {
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
        ++used_;
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
        uint64_t hash = 0;
        std::string text;
        Value value{};
    };
    std::vector<Slot> slots_;
    size_t used_ = 0;
};

}  // namespace edgeguard::privacy
