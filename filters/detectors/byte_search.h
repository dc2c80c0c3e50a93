// Skipping to the next byte a detector could start at. Detectors read long free text (prompts, log
// bodies) where the bytes they look for (digits, '?', a secret's first letter) are far apart; comparing 16
// bytes at a time (SSE2, part of every x86-64 CPU) instead of one keeps the gaps cheap. Each function returns
// exactly what the byte-by-byte loop in its comment would, so a detector that skips with it sees every
// position it saw before.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace edgeguard::privacy {

// The first i >= from with '0' <= text[i] <= '9', or text.size().
inline size_t find_ascii_digit(std::string_view text, size_t from) {
    const size_t n = text.size();
    size_t i = from;
#if defined(__SSE2__)
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    // Bytes '0'..'9' shifted to -128..-119 are the only ones below -118 after the shift (signed compare).
    const __m128i shift = _mm_set1_epi8(static_cast<char>(0x80 - '0'));
    const __m128i limit = _mm_set1_epi8(static_cast<char>(-128 + 10));
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_add_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), shift);
        const int mask = _mm_movemask_epi8(_mm_cmplt_epi8(v, limit));
        if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    while (i < n && !(text[i] >= '0' && text[i] <= '9')) ++i;
    return i;
}

// The first i >= from with text[i] one of up to 8 given bytes, or text.size().
class ByteSetFinder {
  public:
    static constexpr size_t kMaxBytes = 8;
    // `bytes` holds 1..kMaxBytes bytes (more are ignored: callers check fits()).
    explicit constexpr ByteSetFinder(std::string_view bytes) {
        for (char c : bytes) {
            if (count_ == kMaxBytes) {
                overflow_ = true;
                break;
            }
            bytes_[count_++] = c;
        }
    }
    constexpr bool fits() const { return !overflow_ && count_ > 0; }

    size_t next(std::string_view text, size_t from) const {
        return find_if(text, from, [](size_t) { return true; });
    }

    // The first i >= from with text[i] in the set and accept(i) true, or text.size(): next() in a loop,
    // without setting the search up again at every hit (prose stops at many bytes a word list anchors on).
    template <typename Accept>
    size_t find_if(std::string_view text, size_t from, Accept&& accept) const {
        // One unrolled search per set size: a loop over the bytes would cost more than the compares.
        switch (count_) {
            case 1: return find_if_among<1>(text, from, accept);
            case 2: return find_if_among<2>(text, from, accept);
            case 3: return find_if_among<3>(text, from, accept);
            case 4: return find_if_among<4>(text, from, accept);
            case 5: return find_if_among<5>(text, from, accept);
            case 6: return find_if_among<6>(text, from, accept);
            case 7: return find_if_among<7>(text, from, accept);
            default: return find_if_among<kMaxBytes>(text, from, accept);
        }
    }

  private:
    template <size_t kCount, typename Accept>
    size_t find_if_among(std::string_view text, size_t from, Accept& accept) const {
        const size_t n = text.size();
        size_t i = from;
#if defined(__SSE2__)
        __m128i wanted[kCount];
        for (size_t k = 0; k < kCount; ++k) wanted[k] = _mm_set1_epi8(bytes_[k]);
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        for (; i + 16 <= n; i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            __m128i hit = _mm_cmpeq_epi8(v, wanted[0]);
            for (size_t k = 1; k < kCount; ++k) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, wanted[k]));
            for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0; mask &= mask - 1) {
                const size_t at = i + static_cast<size_t>(__builtin_ctz(mask));
                if (accept(at)) return at;
            }
        }
#endif
        for (; i < n; ++i) {
            for (size_t k = 0; k < kCount; ++k) {
                if (text[i] == bytes_[k]) {
                    if (accept(i)) return i;
                    break;
                }
            }
        }
        return n;
    }

    char bytes_[kMaxBytes] = {};
    size_t count_ = 0;
    bool overflow_ = false;
};

// The first i >= from with text[i] >= 0x80 or text[i] == c, or text.size().
inline size_t find_non_ascii_or(std::string_view text, size_t from, char c) {
    const size_t n = text.size();
    size_t i = from;
#if defined(__SSE2__)
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    const __m128i wanted = _mm_set1_epi8(c);
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const int mask = _mm_movemask_epi8(_mm_or_si128(v, _mm_cmpeq_epi8(v, wanted)));
        if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    while (i < n && static_cast<unsigned char>(text[i]) < 0x80 && text[i] != c) ++i;
    return i;
}

// Whether this CPU runs AVX2 (asked once): the passes that have an AVX2 form choose it at run time, so the
// binary runs on any x86-64.
bool cpu_has_avx2();

// Whether `text` holds `min_run` (1..64) consecutive bytes of the base64 and base64url alphabets (A-Z, a-z,
// 0-9, '+', '/', '-', '_'): the cheap test before looking for encoded runs. 64 bytes at a time as a bitmask
// whose runs are found by shifting, the run reaching a block's end carried into the next (AVX2 when the
// CPU has it).
bool contains_base64_run(std::string_view text, size_t min_run);

}  // namespace edgeguard::privacy
