#include "filters/walker/value_shapes.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace edgeguard::privacy::walk {

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
bool is_iso_timestamp(std::string_view s) {
    auto digits = [&](size_t at, size_t n) {
        if (at + n > s.size()) return false;
        for (size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
        }
        return true;
    };
    if (s.size() < 20 || s.size() > 35) return false;
#if defined(__SSE2__)
    // "YYYY-MM-DDTHH:MM" as one sixteen-byte test (every event carries a timestamp or two): the separators
    // where the template has them, digits everywhere else.
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s.data()));
    const __m128i separators = _mm_setr_epi8(0, 0, 0, 0, '-', 0, 0, '-', 0, 0, 'T', 0, 0, ':', 0, 0);
    // Bytes '0'..'9' shifted to -128..-119 are the only ones below -118 after the shift (signed compare).
    const __m128i shifted = _mm_add_epi8(w, _mm_set1_epi8(static_cast<char>(0x80 - '0')));
    const auto digit = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>(-128 + 10)))));
    const auto separator = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(w, separators)));
    constexpr uint32_t kSeparatorBits = (1u << 4) | (1u << 7) | (1u << 10) | (1u << 13);
    if ((separator & kSeparatorBits) != kSeparatorBits || (digit | kSeparatorBits) != 0xFFFF) return false;
    if (s[16] != ':' || !digits(17, 2)) return false;
#else
    if (!digits(0, 4) || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) || s[10] != 'T' ||
        !digits(11, 2) || s[13] != ':' || !digits(14, 2) || s[16] != ':' || !digits(17, 2)) {
        return false;
    }
#endif
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i - start > 9) return false;
    }
    if (i < s.size() && s[i] == 'Z') return i + 1 == s.size();
    return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2) && s[i + 3] == ':' &&
           digits(i + 4, 2);
}

}  // namespace edgeguard::privacy::walk
