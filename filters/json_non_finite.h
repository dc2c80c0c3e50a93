// The number tokens the feature-flags service's json5 parser accepts and strict JSON does not: `NaN`,
// `Infinity`, and either with a sign. A profile with `non_finite_numbers: accept` walks a copy of the body in
// which each such token (outside strings) is replaced by a JSON number of the same length that no detector
// reads (`0e0`, `-0e000000`), so every offset still points into the original, which is what is forwarded.
#pragma once

#include <string>
#include <string_view>

namespace edgeguard::privacy {

// Fills `out` with `json` where non-finite number tokens are replaced; false (out untouched) when there
// is none. Text inside strings is never changed. Linear, one pass.
bool mask_non_finite_numbers(std::string_view json, std::string& out);

}  // namespace edgeguard::privacy
