// Cheap byte features of one string, computed in a single pass so DetectorSet can skip detectors that have
// nothing to look at (no '@' means no email, fewer than 7 digits means no phone, ...).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "filters/detectors/detector.h"

namespace edgeguard::privacy {

enum TextFeatureBit : uint32_t {
    kHasDigit = 1u << 0,
    kHasAt = 1u << 1,
    kHasDot = 1u << 2,
    kHasColon = 1u << 3,
    kHasUnderscore = 1u << 4,
    kHasNonAscii = 1u << 5,
    kHasPercent = 1u << 6,
    kHasEquals = 1u << 7,
    kHasDash = 1u << 8,
    kHasUpper = 1u << 9,
    kHasLower = 1u << 10,
    kHasQueryMark = 1u << 11,  // '?', '#' or '&': a URL query or fragment may follow
    kHasPlus = 1u << 12,
};

struct TextFeatures {
    uint32_t flags = 0;
    uint32_t digits = 0;
    uint32_t dots = 0;
    uint32_t colons = 0;
    size_t length = 0;

    bool has(uint32_t bits) const { return (flags & bits) != 0; }
};

TextFeatures compute_text_features(std::string_view text);

// A built-in detector that can say from the features alone that it cannot match.
class GatedDetector : public Detector {
public:
    // False only when find() is certain to report nothing for a text with these features.
    virtual bool may_match(const TextFeatures& features, const DetectorContext& ctx) const = 0;
};

}  // namespace edgeguard::privacy
