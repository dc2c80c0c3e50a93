#include "filters/detectors/text_features.h"

#include <array>

namespace edgeguard::privacy {
namespace {

// Per-byte feature bits; digits, dots and colons are also counted, so their bits sit at fixed positions.
constexpr std::array<uint16_t, 256> make_byte_table() {
    std::array<uint16_t, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = kHasDigit;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = kHasUpper;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = kHasLower;
    for (int c = 0x80; c <= 0xff; ++c) t[c] = kHasNonAscii;
    t['@'] = kHasAt;
    t['.'] = kHasDot;
    t[':'] = kHasColon;
    t['_'] = kHasUnderscore;
    t['%'] = kHasPercent;
    t['='] = kHasEquals;
    t['-'] = kHasDash;
    t['?'] = kHasQueryMark;
    t['#'] = kHasQueryMark;
    t['&'] = kHasQueryMark;
    t['+'] = kHasPlus;
    return t;
}
constexpr std::array<uint16_t, 256> kByteTable = make_byte_table();

}  // namespace

TextFeatures compute_text_features(std::string_view text) {
    TextFeatures f;
    uint32_t flags = 0, digits = 0, dots = 0, colons = 0;
    for (unsigned char c : text) {
        uint32_t bits = kByteTable[c];
        flags |= bits;
        digits += bits & kHasDigit;
        dots += (bits >> 2) & 1;    // kHasDot
        colons += (bits >> 3) & 1;  // kHasColon
    }
    f.flags = flags;
    f.digits = digits;
    f.dots = dots;
    f.colons = colons;
    f.length = text.size();
    return f;
}

}  // namespace edgeguard::privacy
