#include "filters/detectors/text_features.h"

#include <algorithm>
#include <array>

namespace edgeguard::privacy {
namespace {

// Per byte: feature flags (low 16 bits) plus run-class bits used by the run trackers.
constexpr uint32_t kClassDigit = 1u << 16;
constexpr uint32_t kClassNumberSeparator = 1u << 17;
constexpr uint32_t kClassAlnum = 1u << 18;

constexpr std::array<uint32_t, 256> make_byte_table() {
    std::array<uint32_t, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = kHasDigit | kClassDigit | kClassAlnum;
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = kHasUpper | kClassAlnum | (c > 'F' ? kHasNonHexLetter : 0);
    for (int c = 'a'; c <= 'z'; ++c) t[c] = kHasLower | kClassAlnum | (c > 'f' ? kHasNonHexLetter : 0);
    for (int c = 0x80; c <= 0xff; ++c) t[c] = kHasNonAscii;
    t['@'] = kHasAt;
    t['.'] = kHasDot | kClassNumberSeparator;  // dotted phones and cards ("916.123.45.67")
    t[':'] = kHasColon;
    t['_'] = kHasUnderscore;
    t['%'] = kHasPercent;
    t['='] = kHasEquals;
    t['-'] = kHasDash | kClassNumberSeparator;
    t['?'] = kHasQueryMark;
    t['#'] = kHasQueryMark;
    t['&'] = kHasQueryMark;
    t['+'] = kHasPlus | kClassNumberSeparator;
    t[' '] = kHasSpace | kClassNumberSeparator;
    t['('] = kClassNumberSeparator;
    t[')'] = kClassNumberSeparator;
    return t;
}
constexpr std::array<uint32_t, 256> kByteTable = make_byte_table();

// Counts packed in one 64-bit add per byte: digits in bits 0..20, dots in 21..41, colons in 42..62.
constexpr std::array<uint64_t, 256> make_count_table() {
    std::array<uint64_t, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = 1;
    t['.'] = uint64_t{1} << 21;
    t[':'] = uint64_t{1} << 42;
    return t;
}
constexpr std::array<uint64_t, 256> kCountTable = make_count_table();
constexpr size_t kChunk = (size_t{1} << 20);  // below 2^21 so packed counts cannot overflow

// Both run trackers live in one 64-bit register (number run low, alnum run high) so a byte costs one
// add-and-mask on the dependency chain; the longest runs are folded with OR, which gives an upper bound
// (never below the longest run, never more than twice it): enough for gates, which may open too often
// but never too rarely.
struct RunStep {
    uint64_t increment;
    uint64_t keep;
};
constexpr std::array<RunStep, 256> make_run_table() {
    std::array<RunStep, 256> t{};
    for (int c = 0; c < 256; ++c) {
        const uint32_t bits = kByteTable[c];
        const bool digit = bits & kClassDigit, separator = bits & kClassNumberSeparator,
                   alnum = bits & kClassAlnum;
        t[c].increment = (digit ? 1 : 0) | (alnum ? uint64_t{1} << 32 : 0);
        t[c].keep = ((digit || separator) ? 0xFFFFFFFFull : 0) | (alnum ? 0xFFFFFFFFull << 32 : 0);
    }
    return t;
}
constexpr std::array<RunStep, 256> kRunTable = make_run_table();

}  // namespace

TextFeatures compute_text_features(std::string_view text) {
    TextFeatures f;
    uint32_t flags = 0;
    uint64_t runs = 0, longest = 0;
    for (size_t chunk = 0; chunk < text.size(); chunk += kChunk) {
        const size_t stop = std::min(text.size(), chunk + kChunk);
        uint64_t counts = 0;
        for (size_t i = chunk; i < stop; ++i) {
            const auto c = static_cast<unsigned char>(text[i]);
            flags |= kByteTable[c];
            counts += kCountTable[c];
            runs = (runs + kRunTable[c].increment) & kRunTable[c].keep;
            longest |= runs;
        }
        f.digits += static_cast<uint32_t>(counts & 0x1FFFFF);
        f.dots += static_cast<uint32_t>((counts >> 21) & 0x1FFFFF);
        f.colons += static_cast<uint32_t>((counts >> 42) & 0x1FFFFF);
    }
    f.flags = flags & 0xFFFF;
    f.max_number_digits = static_cast<uint32_t>(longest);
    f.max_alnum_run = static_cast<uint32_t>(longest >> 32);
    f.length = text.size();
    return f;
}

uint64_t gate_mask(const TextFeatures& f, const DetectorContext& ctx) {
    uint64_t m = f.flags;
    auto set = [&m](bool on, uint64_t bit) { m |= on ? bit : 0; };
    set(!ctx.key.empty(), kGateKey);
    set(f.digits >= 4, kGateDigits4);
    set(f.digits >= 5, kGateDigits5);
    set(f.digits >= 7, kGateDigits7);
    set(f.digits >= 10, kGateDigits10);
    set(f.max_number_digits >= 4, kGateNumberRun4);
    set(f.max_number_digits >= 8, kGateNumberRun8);
    set(f.max_number_digits >= 11, kGateNumberRun11);
    set(f.max_number_digits >= 12, kGateNumberRun12);
    set(f.max_alnum_run >= 4, kGateAlnumRun4);
    set(f.max_alnum_run >= 10, kGateAlnumRun10);
    set(f.max_alnum_run >= 26, kGateAlnumRun26);
    set(f.dots >= 2, kGateDots2);
    set(f.dots >= 3, kGateDots3);
    set(f.colons >= 2, kGateColons2);
    set(f.length >= 8, kGateLength8);
    set(f.length >= 15, kGateLength15);
    set(f.length >= 27, kGateLength27);
    set(f.has(kHasUpper | kHasLower), kGateAsciiLetter);
    set(f.has(kHasUpper | kHasLower | kHasNonAscii), kGateAnyLetter);
    return m;
}

}  // namespace edgeguard::privacy
