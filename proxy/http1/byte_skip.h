// The first of a few stop bytes, 16 bytes at a time: head lines are mostly bytes that need no decision,
// and a byte-at-a-time loop costs several instructions a byte. Shared by the strict head scanner and the
// field index built from the lines it accepted.
#pragma once

#include <cstddef>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace edgeguard {

// Index of the first byte of data[i, len) that is one of `Stops`, or `len`.
#if defined(__SSE2__)
template <char... Stops>
inline size_t skip_until(const char* data, size_t i, size_t len) {
    while (i + 16 <= len) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(data + i));
        const __m128i hits = (_mm_cmpeq_epi8(v, _mm_set1_epi8(Stops)) | ...);
        const int mask = _mm_movemask_epi8(hits);
        if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
        i += 16;
    }
    while (i < len && ((data[i] != Stops) && ...)) ++i;
    return i;
}
#else
template <char... Stops>
inline size_t skip_until(const char* data, size_t i, size_t len) {
    while (i < len && ((data[i] != Stops) && ...)) ++i;
    return i;
}
#endif

}  // namespace edgeguard
