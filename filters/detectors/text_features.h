// Cheap byte features of one string, so DetectorSet can skip detectors that have nothing to look at (no '@'
// means no email, fewer than 7 digits means no phone, ...), and the gates detectors declare over them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "filters/detectors/detector.h"

namespace edgeguard::privacy {

inline constexpr uint32_t kHasDigit = 1u << 0;
inline constexpr uint32_t kHasAt = 1u << 1;
inline constexpr uint32_t kHasDot = 1u << 2;
inline constexpr uint32_t kHasColon = 1u << 3;
inline constexpr uint32_t kHasUnderscore = 1u << 4;
inline constexpr uint32_t kHasNonAscii = 1u << 5;
inline constexpr uint32_t kHasPercent = 1u << 6;
inline constexpr uint32_t kHasEquals = 1u << 7;
inline constexpr uint32_t kHasDash = 1u << 8;
inline constexpr uint32_t kHasUpper = 1u << 9;
inline constexpr uint32_t kHasLower = 1u << 10;
inline constexpr uint32_t kHasQueryMark = 1u << 11;  // '?', '#' or '&': a URL query or fragment may follow
inline constexpr uint32_t kHasPlus = 1u << 12;
inline constexpr uint32_t kHasSpace = 1u << 13;
inline constexpr uint32_t kHasNonHexLetter =
    1u << 14;  // an ASCII letter g-z/G-Z: the text is not just hex (UUIDs, hashes)

// Computed by TextIndex (text_index.h) in its one pass over a text.
struct TextFeatures {
    uint32_t flags = 0;
    uint32_t digits = 0;
    uint32_t dots = 0;
    uint32_t colons = 0;
    // '.', '-' and '/': every date shape but "5 March 1990" has two of them.
    uint32_t date_separators = 0;
    // Digits in the longest run of digits and number separators (' ', '-', '(', ')', '+', '.'): "+7 (916)
    // 123-45-67" counts 11, a UUID or hex hash only its longest all-digit stretch. Numeric detectors gate
    // on it.
    uint32_t max_number_digits = 0;
    // Longest run of ASCII alphanumerics (token-shaped secrets and wallet addresses need long ones), read
    // as far as the gates need: a run inside one 64-byte block counts as the largest gate threshold it
    // reaches (4, 10, 26), so the value is at least each threshold exactly when the longest run is.
    uint32_t max_alnum_run = 0;
    size_t length = 0;

    bool has(uint32_t bits) const { return (flags & bits) != 0; }
};

// Gate bits: the feature flags above (bits 0..15) plus thresholds derived from the counts, so a detector's
// gate is a plain bit test that DetectorSet evaluates for all detectors without a call.
inline constexpr uint64_t kGateKey = uint64_t{1} << 20;  // the context carries a key
inline constexpr uint64_t kGateDigits4 = uint64_t{1} << 21;
inline constexpr uint64_t kGateDigits5 = uint64_t{1} << 22;
inline constexpr uint64_t kGateDigits7 = uint64_t{1} << 23;
inline constexpr uint64_t kGateDigits10 = uint64_t{1} << 24;
inline constexpr uint64_t kGateNumberRun4 = uint64_t{1} << 25;
inline constexpr uint64_t kGateNumberRun8 = uint64_t{1} << 26;
inline constexpr uint64_t kGateNumberRun11 = uint64_t{1} << 27;
inline constexpr uint64_t kGateNumberRun12 = uint64_t{1} << 28;
inline constexpr uint64_t kGateAlnumRun4 = uint64_t{1} << 29;
inline constexpr uint64_t kGateAlnumRun10 = uint64_t{1} << 30;
inline constexpr uint64_t kGateAlnumRun26 = uint64_t{1} << 31;
inline constexpr uint64_t kGateDots2 = uint64_t{1} << 32;
inline constexpr uint64_t kGateDots3 = uint64_t{1} << 33;
inline constexpr uint64_t kGateColons2 = uint64_t{1} << 34;
inline constexpr uint64_t kGateLength8 = uint64_t{1} << 35;
inline constexpr uint64_t kGateLength15 = uint64_t{1} << 36;
inline constexpr uint64_t kGateLength27 = uint64_t{1} << 37;
inline constexpr uint64_t kGateAsciiLetter = uint64_t{1} << 38;  // upper or lower
inline constexpr uint64_t kGateAnyLetter = uint64_t{1} << 39;    // ASCII letter or a non-ASCII byte
inline constexpr uint64_t kGateDateSeparators2 = uint64_t{1} << 40;

uint64_t gate_mask(const TextFeatures& features, const DetectorContext& ctx);

// When a detector can possibly match: any one alternative whose bits are all present in gate_mask().
// Unused alternatives hold kGateNever (never set), so open() is three branch-free tests; the default gate
// (first alternative 0) is always open.
inline constexpr uint64_t kGateNever = uint64_t{1} << 63;
struct DetectorGate {
    uint64_t all_of[3] = {0, kGateNever, kGateNever};

    static DetectorGate when(uint64_t a) { return DetectorGate{{a, kGateNever, kGateNever}}; }
    static DetectorGate when_any(uint64_t a, uint64_t b) { return DetectorGate{{a, b, kGateNever}}; }
    static DetectorGate when_any(uint64_t a, uint64_t b, uint64_t c) { return DetectorGate{{a, b, c}}; }
    bool open(uint64_t mask) const {
        return ((mask & all_of[0]) == all_of[0]) | ((mask & all_of[1]) == all_of[1]) |
               ((mask & all_of[2]) == all_of[2]);
    }
};

// A built-in detector that declares, from features alone, when it cannot match.
class GatedDetector : public Detector {
  public:
    // find() reports nothing for a text whose gate_mask() opens none of these alternatives.
    virtual DetectorGate gate() const = 0;
};

}  // namespace edgeguard::privacy
