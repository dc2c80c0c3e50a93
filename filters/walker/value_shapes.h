// Cheap exact tests on string values and raw JSON text that the walk makes on every member: the shapes that
// are never personal data (UUIDs, ISO-8601 timestamps) and the escape scan that lets a string be used in
// place.
#pragma once

#include <simdjson.h>

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "filters/detectors/json_number.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace edgeguard::privacy::walk {

inline char lower_ascii(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

inline bool is_ws(char c) {
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

// Shapes that are never personal data and that every event carries several of: canonical UUIDs
// ($session_id, uuid, $device_id) and ISO-8601 timestamps. Skipping them is exact, not a heuristic:
// neither shape can contain an email, a phone, a card, an IBAN, an IP or a token.
constexpr std::array<bool, 256> make_hex_table() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'f'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'F'; ++c) t[c] = true;
    return t;
}
constexpr std::array<bool, 256> kHexDigit = make_hex_table();

// SWAR helpers over eight ASCII bytes (every byte < 0x80, so no addition below carries into the next byte).
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHigh = 0x8080808080808080ull;
// 0x80 in each byte that lies in [lo, hi].
constexpr uint64_t ascii_bytes_in_range(uint64_t w, uint8_t lo, uint8_t hi) {
    return (w + kOnes * (0x80 - lo)) & ~(w + kOnes * (0x7F - hi)) & kHigh;
}
// 0x80 in each byte equal to c.
constexpr uint64_t ascii_bytes_equal(uint64_t w, char c) {
    return ~((w ^ (kOnes * static_cast<uint8_t>(c))) + kOnes * 0x7F) & kHigh;
}
constexpr uint64_t ascii_hex_bytes(uint64_t w) {
    return ascii_bytes_in_range(w, '0', '9') | ascii_bytes_in_range(w | (kOnes * 0x20), 'a', 'f');
}

#if defined(__SSE2__)
// 0xFFFF when each of the sixteen bytes at `p` is a hex digit, or a '-' where `dashes` has 0xFF (signed
// compares: bytes >= 0x80 read as negative and fail every range).
inline uint32_t uuid_block_mask(const char* p, __m128i dashes) {
    const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i lower =
        _mm_or_si128(w, _mm_set1_epi8(0x20));  // only 'A'..'F' and 'a'..'f' land in 'a'..'f'
    const __m128i digit =
        _mm_and_si128(_mm_cmpgt_epi8(w, _mm_set1_epi8('0' - 1)), _mm_cmplt_epi8(w, _mm_set1_epi8('9' + 1)));
    const __m128i letter = _mm_and_si128(_mm_cmpgt_epi8(lower, _mm_set1_epi8('a' - 1)),
                                         _mm_cmplt_epi8(lower, _mm_set1_epi8('f' + 1)));
    const __m128i dash = _mm_cmpeq_epi8(w, _mm_set1_epi8('-'));
    const __m128i ok =
        _mm_or_si128(_mm_andnot_si128(dashes, _mm_or_si128(digit, letter)), _mm_and_si128(dashes, dash));
    return static_cast<uint32_t>(_mm_movemask_epi8(ok));
}
#endif

inline bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
#if defined(__SSE2__)
    // Three sixteen-byte blocks (offsets 0, 16 and 20, the last overlapping): a UUID is one of the most
    // common strings of a batch (uuid, distinct_id, $session_id, $device_id, $window_id), and the walk
    // asks for every string member of 36 bytes.
    const char* p = s.data();
    const __m128i dashes0 = _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0);   // 8, 13
    const __m128i dashes16 = _mm_setr_epi8(0, 0, -1, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0);  // 18, 23
    const __m128i dashes20 = _mm_setr_epi8(0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);   // 23
    return (uuid_block_mask(p, dashes0) & uuid_block_mask(p + 16, dashes16) &
            uuid_block_mask(p + 20, dashes20)) == 0xFFFF;
#else
    if constexpr (std::endian::native == std::endian::little) {
        // Five overlapping words (offsets 0, 8, 16, 24, 28) instead of 36 byte steps: a UUID is one of
        // the most common strings of a batch (uuid, distinct_id, $session_id, $device_id, $window_id).
        uint64_t w[5];
        std::memcpy(&w[0], s.data(), 8);
        std::memcpy(&w[1], s.data() + 8, 8);
        std::memcpy(&w[2], s.data() + 16, 8);
        std::memcpy(&w[3], s.data() + 24, 8);
        std::memcpy(&w[4], s.data() + 28, 8);
        if ((w[0] | w[1] | w[2] | w[3] | w[4]) & kHigh) return false;
        // Dashes at 8 and 13 (bytes 0 and 5 of w[1]), 18 and 23 (bytes 2 and 7 of w[2]); hex everywhere else.
        constexpr uint64_t kDashes1 = 0x0000800000000080ull;
        constexpr uint64_t kDashes2 = 0x8000000000800000ull;
        const bool ok =
            ascii_hex_bytes(w[0]) == kHigh &&
            ((ascii_hex_bytes(w[1]) & ~kDashes1) | (ascii_bytes_equal(w[1], '-') & kDashes1)) == kHigh &&
            ((ascii_hex_bytes(w[2]) & ~kDashes2) | (ascii_bytes_equal(w[2], '-') & kDashes2)) == kHigh &&
            ascii_hex_bytes(w[3]) == kHigh && ascii_hex_bytes(w[4]) == kHigh;
        return ok;
    }
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return false;
    bool hex = true;
    for (size_t i = 0; i < 36; ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        hex &= dash | kHexDigit[static_cast<unsigned char>(s[i])];
    }
    return hex;
#endif
}

bool is_iso_timestamp(std::string_view s);

// A validated JSON number token that neither json_integer_may_be_identifier nor json_float_integer_digits
// can accept, told by its length: without an exponent the integer part has at most as many digits as the
// token has bytes, so a token shorter than kMinIdentifierDigits cannot reach that many (prices, sizes,
// densities, counts: the numbers every event carries).
inline bool number_too_short_for_identifier(std::string_view token) {
    if (token.size() >= kMinIdentifierDigits) return false;
    for (const char c : token)
        if ((c | 0x20) == 'e') return false;
    return true;
}

// The text of a JSON string starting right after its opening quote (`content`) when it has no escapes; a
// null view otherwise (the caller unescapes). `limit` is the end of the JSON text, which must be followed
// by simdjson::SIMDJSON_PADDING zero bytes.
inline std::string_view unescaped_in_place(const char* content, const char* limit) {
    // Control characters are left to simdjson's unescaper, which rejects them.
    const char* p = content;
#if defined(__SSE2__)
    static_assert(simdjson::SIMDJSON_PADDING >= 16, "the scan reads up to 15 bytes past the text");
    // Sixteen bytes at a time (SSE2 is part of x86-64). Reading past `limit` is safe and exact: run()
    // put SIMDJSON_PADDING zero bytes after the text, and a zero byte is flagged (< 0x20), so the scan
    // stops at `limit` at the latest and answers "not in place" there, as the byte loop did.
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i below_space = _mm_set1_epi8(0x1F);
    for (;; p += 16) {
        const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(w, below_space), w);
        const __m128i flagged =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, backslash)), control);
        const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(flagged));
        if (mask != 0) {
            p += std::countr_zero(mask);
            if (p < limit && *p == '"') return std::string_view(content, static_cast<size_t>(p - content));
            return {};
        }
    }
#endif
    if constexpr (std::endian::native == std::endian::little) {
        // Eight bytes at a time: the lowest byte flagged as '"', '\\' or < 0x20 is the first such byte
        // (the borrow of these tests only runs upwards, so it can only add flags above a real one).
        constexpr uint64_t kOnes = 0x0101010101010101ull;
        constexpr uint64_t kHigh = 0x8080808080808080ull;
        for (; p + 8 <= limit; p += 8) {
            uint64_t w;
            std::memcpy(&w, p, 8);
            const uint64_t quote = w ^ (kOnes * '"');
            const uint64_t backslash = w ^ (kOnes * '\\');
            const uint64_t flagged = (((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                                      ((w - kOnes * 0x20) & ~w)) &
                                     kHigh;
            if (flagged != 0) {
                p += std::countr_zero(flagged) / 8;
                if (*p == '"') return std::string_view(content, static_cast<size_t>(p - content));
                return {};
            }
        }
    }
    for (; p < limit; ++p) {
        const unsigned char c = static_cast<unsigned char>(*p);
        if (c == '"') return std::string_view(content, static_cast<size_t>(p - content));
        if (c == '\\' || c < 0x20) return {};
    }
    return {};
}

// The content length of the JSON string whose content starts at `content` (after its opening quote) when
// the raw text is a canonical UUID or an ISO-8601 timestamp closed by its quote; 0 otherwise. Neither shape
// has a byte an escape could stand for, so the raw text is the value. `limit` is the end of the JSON text,
// which must be followed by simdjson::SIMDJSON_PADDING zero bytes (the tests read up to 36 bytes past
// `content`, and a zero byte is never a quote).
inline size_t raw_never_personal_shape(const char* content, const char* limit) {
    if (content[36] == '"' && content + 36 < limit && is_uuid(std::string_view(content, 36))) return 36;
    if (content[4] != '-' || content[10] != 'T') return 0;
    const std::string_view s = unescaped_in_place(content, limit);
    return s.data() != nullptr && is_iso_timestamp(s) ? s.size() : 0;
}

}  // namespace edgeguard::privacy::walk
