#include "filters/detectors/text_features.h"

namespace edgeguard::privacy {

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
    set(f.date_separators >= 2, kGateDateSeparators2);
    set(f.length >= 8, kGateLength8);
    set(f.length >= 15, kGateLength15);
    set(f.length >= 27, kGateLength27);
    set(f.has(kHasUpper | kHasLower), kGateAsciiLetter);
    set(f.has(kHasUpper | kHasLower | kHasNonAscii), kGateAnyLetter);
    return m;
}

}  // namespace edgeguard::privacy
