#include "filters/detectors/byte_search.h"

#include <algorithm>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgeguard::privacy {
namespace {

bool base64_byte(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
           c == '-' || c == '_';
}

// Bit i: text[i] is in the alphabet, for the `count` (<= 64) bytes at p.
uint64_t base64_mask_portable(const unsigned char* p, size_t count) {
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
    for (; i < count; ++i) m |= base64_byte(p[i]) ? uint64_t{1} << i : 0;
    return m;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline uint32_t base64_mask_avx2(const unsigned char* p) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i letter =
        _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(-128 + 26)),
                          _mm256_add_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)),
                                          _mm256_set1_epi8(static_cast<char>(0x80 - 'a'))));
    const __m256i digit = _mm256_cmpgt_epi8(_mm256_set1_epi8(static_cast<char>(-128 + 10)),
                                            _mm256_add_epi8(v, _mm256_set1_epi8(static_cast<char>(0x80 - '0'))));
    const __m256i marks =
        _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('+')), _mm256_cmpeq_epi8(v, _mm256_set1_epi8('/'))),
                        _mm256_or_si256(_mm256_cmpeq_epi8(v, _mm256_set1_epi8('-')), _mm256_cmpeq_epi8(v, _mm256_set1_epi8('_'))));
    return static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_or_si256(_mm256_or_si256(letter, digit), marks)));
}
#endif

// Bit i of the result: bits i .. i+k-1 of m all set (1 <= k <= 64).
inline uint64_t runs_of_at_least(uint64_t m, size_t k) {
    for (size_t have = 1; have < k && m != 0;) {
        const size_t step = std::min(have, k - have);
        m &= m >> step;
        have += step;
    }
    return m;
}

template <typename BlockMask>
[[gnu::always_inline]] inline bool contains_run(std::string_view text, size_t min_run, BlockMask&& block_mask) {
    const auto* p = reinterpret_cast<const unsigned char*>(text.data());
    size_t carry = 0;  // alphabet bytes ending the previous block
    for (size_t at = 0; at < text.size(); at += 64) {
        const uint64_t m = block_mask(p + at, std::min<size_t>(64, text.size() - at));
        if (m == ~uint64_t{0}) {
            carry += 64;
            if (carry >= min_run) return true;
            continue;
        }
        if (carry + static_cast<size_t>(__builtin_ctzll(~m)) >= min_run) return true;
        if (runs_of_at_least(m, min_run) != 0) return true;
        carry = static_cast<size_t>(__builtin_clzll(~m));
    }
    return false;
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) inline uint64_t base64_block_avx2(const unsigned char* p, size_t count) {
    if (count < 64) return base64_mask_portable(p, count);
    return uint64_t{base64_mask_avx2(p)} | (uint64_t{base64_mask_avx2(p + 32)} << 32);
}

__attribute__((target("avx2"))) bool contains_base64_run_avx2(std::string_view text, size_t min_run) {
    return contains_run(text, min_run, base64_block_avx2);
}
#endif

}  // namespace

bool cpu_has_avx2() {
#if defined(__x86_64__)
    static const bool has = __builtin_cpu_supports("avx2");
    return has;
#else
    return false;
#endif
}

bool contains_base64_run(std::string_view text, size_t min_run) {
    if (min_run == 0) return true;
    if (min_run > 64 || text.size() < min_run) return false;
#if defined(__x86_64__)
    if (cpu_has_avx2()) return contains_base64_run_avx2(text, min_run);
#endif
    return contains_run(text, min_run, base64_mask_portable);
}

}  // namespace edgeguard::privacy
