// A direct-mapped index from the first bytes of a raw JSON object key to the key memo slot that last held a
// key starting with them, read before the key is scanned.
//
// Why: the key memo's "next key" hint (string_memo.h) answers when members come in the order they came
// before; a batch mixing event types and SDKs (or one SDK that builds its properties from a hash map) sends
// them in orders of their own, and every such key then paid an escape scan, a hash, a probe and a link.
// This index needs neither the key's length nor its hash: up to 16 bytes of raw text, cut at the first
// quote, pick an entry. An entry is only a guess, confirmed by the memo's exact comparison against the raw
// text and its closing quote (StringMemo::raw_key_slot), so a stale entry (the memo was cleared, the slot
// now holds another key) or two keys sharing their first 16 bytes cost the fallback, never a wrong answer.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "filters/string_memo.h"

namespace edgeguard::privacy::walk {

class RawKeyIndex {
  public:
    static constexpr uint32_t kNoSlot = StringMemo<bool>::kNoSlot;
    static constexpr unsigned kBits = 10;  // 1,024 entries (4 KiB): a batch's few dozen keys rarely share one

    RawKeyIndex() { slots_.fill(kNoSlot); }

    // The entry for the key whose content starts at `raw`. Reads 16 bytes from `raw`: the JSON text must be
    // followed by simdjson::SIMDJSON_PADDING bytes, as every walked text is.
    [[gnu::always_inline]] static uint32_t position(const char* raw) {
        uint64_t lo, hi;
        uint32_t len;
#if defined(__SSE2__)
        const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw));
        const auto quotes = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(w, _mm_set1_epi8('"'))));
        len = static_cast<uint32_t>(std::countr_zero(quotes | 0x10000u));
        // Bytes from the quote on belong to the value, which must not move the key's entry.
        const __m128i keep =
            _mm_cmpgt_epi8(_mm_set1_epi8(static_cast<char>(len)),
                           _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
        const __m128i k = _mm_and_si128(w, keep);
        lo = static_cast<uint64_t>(_mm_cvtsi128_si64(k));
        hi = static_cast<uint64_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(k, k)));
#else
        len = 0;
        while (len < 16 && raw[len] != '"') ++len;
        unsigned char bytes[16] = {};
        std::memcpy(bytes, raw, len);
        std::memcpy(&lo, bytes, 8);
        std::memcpy(&hi, bytes + 8, 8);
#endif
        const uint64_t h = (lo * 0x9E3779B97F4A7C15ull) ^ ((hi + len) * 0xC2B2AE3D27D4EB4Full);
        return static_cast<uint32_t>((h ^ (h >> 29)) >> (64 - kBits));
    }

    uint32_t slot_at(uint32_t position) const {
        return slots_[position];
    }
    void remember(uint32_t position, uint32_t slot) {
        if (enabled) slots_[position] = slot;
    }

    // Off (tests compare against the memo's own lookup): nothing is remembered, so every probe misses.
    bool enabled = true;
    uint64_t hits = 0;  // keys found through the index (tests check that it answered)

  private:
    std::array<uint32_t, size_t{1} << kBits> slots_;
};

}  // namespace edgeguard::privacy::walk
