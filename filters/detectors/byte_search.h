// Skipping to the next byte a detector could start at. Detectors read long free text (prompts, log
// bodies) where the bytes they look for (digits, '?', a secret's first letter) are far apart; comparing 16
// bytes at a time (SSE2, part of every x86-64 CPU) instead of one keeps the gaps cheap. Each function returns
// exactly what the byte-by-byte loop in its comment would, so a detector that skips with it sees every
// position it saw before.
#pragma once

#include <algorithm>
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
        const size_t n = text.size();
        size_t i = from;
#if defined(__SSE2__)
        __m128i wanted[kMaxBytes];
        for (size_t k = 0; k < count_; ++k) wanted[k] = _mm_set1_epi8(bytes_[k]);
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        for (; i + 16 <= n; i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            __m128i hit = _mm_cmpeq_epi8(v, wanted[0]);
            for (size_t k = 1; k < count_; ++k) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, wanted[k]));
            const int mask = _mm_movemask_epi8(hit);
            if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
        }
#endif
        for (; i < n; ++i) {
            for (size_t k = 0; k < count_; ++k)
                if (text[i] == bytes_[k]) return i;
        }
        return n;
    }

    // The first i >= from with text[i] in the set and accept(i) true, or text.size(): next() in a loop,
    // without setting the search up again at every hit (prose stops at many bytes a word list anchors on).
    template <typename Accept>
    size_t find_if(std::string_view text, size_t from, Accept&& accept) const {
        const size_t n = text.size();
        size_t i = from;
#if defined(__SSE2__)
        __m128i wanted[kMaxBytes];
        for (size_t k = 0; k < count_; ++k) wanted[k] = _mm_set1_epi8(bytes_[k]);
        const auto* p = reinterpret_cast<const unsigned char*>(text.data());
        for (; i + 16 <= n; i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            __m128i hit = _mm_cmpeq_epi8(v, wanted[0]);
            for (size_t k = 1; k < count_; ++k) hit = _mm_or_si128(hit, _mm_cmpeq_epi8(v, wanted[k]));
            for (auto mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0; mask &= mask - 1) {
                const size_t at = i + static_cast<size_t>(__builtin_ctz(mask));
                if (accept(at)) return at;
            }
        }
#endif
        for (; i < n; ++i) {
            for (size_t k = 0; k < count_; ++k) {
                if (text[i] == bytes_[k]) {
                    if (accept(i)) return i;
                    break;
                }
            }
        }
        return n;
    }

  private:
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

// Whether `text` holds `min_run` (1..64) consecutive bytes of the base64 and base64url alphabets (A-Z, a-z,
// 0-9, '+', '/', '-', '_'): the cheap test before looking for encoded runs. 64 bytes at a time as a bitmask
// whose runs are found by shifting, the run reaching a block's end carried into the next.
inline bool contains_base64_run(std::string_view text, size_t min_run) {
    const auto alphabet = [](unsigned char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '-' || c == '_';
    };
    const auto block_mask = [&](const unsigned char* p, size_t count) {
        uint64_t m = 0;
        size_t i = 0;
#if defined(__SSE2__)
        const __m128i case_bit = _mm_set1_epi8(0x20), letter_shift = _mm_set1_epi8(static_cast<char>(0x80 - 'a')),
                      letter_limit = _mm_set1_epi8(static_cast<char>(-128 + 26)),
                      digit_shift = _mm_set1_epi8(static_cast<char>(0x80 - '0')),
                      digit_limit = _mm_set1_epi8(static_cast<char>(-128 + 10)), plus = _mm_set1_epi8('+'),
                      slash = _mm_set1_epi8('/'), dash = _mm_set1_epi8('-'), underscore = _mm_set1_epi8('_');
        for (; i + 16 <= count; i += 16) {
            const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
            const __m128i letter = _mm_cmplt_epi8(_mm_add_epi8(_mm_or_si128(v, case_bit), letter_shift), letter_limit);
            const __m128i digit = _mm_cmplt_epi8(_mm_add_epi8(v, digit_shift), digit_limit);
            const __m128i marks = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, plus), _mm_cmpeq_epi8(v, slash)),
                                               _mm_or_si128(_mm_cmpeq_epi8(v, dash), _mm_cmpeq_epi8(v, underscore)));
            const int bits = _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(letter, digit), marks));
            m |= uint64_t{static_cast<uint16_t>(bits)} << i;
        }
#endif
        for (; i < count; ++i) m |= alphabet(p[i]) ? uint64_t{1} << i : 0;
        return m;
    };
    if (min_run == 0) return true;
    if (min_run > 64 || text.size() < min_run) return false;
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t carry = 0;  // alphabet bytes ending the previous block
    for (size_t at = 0; at < text.size(); at += 64) {
        const size_t count = std::min<size_t>(64, text.size() - at);
        const uint64_t m = block_mask(p + at, count);
        if (m == ~uint64_t{0}) {
            carry += 64;
            if (carry >= min_run) return true;
            continue;
        }
        if (carry + static_cast<size_t>(__builtin_ctzll(~m)) >= min_run) return true;
        // Bit i of r: bytes i .. i+have-1 are all in the alphabet.
        uint64_t r = m;
        for (size_t have = 1; have < min_run && r != 0;) {
            const size_t step = std::min(have, min_run - have);
            r &= r >> step;
            have += step;
        }
        if (r != 0) return true;
        carry = static_cast<size_t>(__builtin_clzll(~m));
    }
    return false;
}

}  // namespace edgeguard::privacy
