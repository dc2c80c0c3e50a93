// Iterating RE2 matches over a string_view: the loop every RE2-backed detector needs.
#pragma once

#include <re2/re2.h>

#include <string_view>

#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_index.h"

namespace edgeguard::privacy {

inline RE2::Options detector_re2_options() {
    RE2::Options o;
    o.set_log_errors(false);
    o.set_max_mem(8 << 20);
    return o;
}

// Calls on_match(groups) for each non-overlapping match; groups[0] is the whole match. `kGroups` counts
// groups[0].
template <int kGroups, typename OnMatch>
void for_each_re2_match(const RE2& re, std::string_view text, OnMatch&& on_match) {
    re2::StringPiece input(text.data(), text.size());
    re2::StringPiece groups[kGroups];
    size_t pos = 0;
    while (pos < text.size() && re.Match(input, pos, text.size(), RE2::UNANCHORED, groups, kGroups)) {
        size_t end = static_cast<size_t>(groups[0].data() - text.data()) + groups[0].size();
        on_match(groups);
        pos = end > pos ? end : pos + 1;
    }
}

// Whether `re` matches anywhere in `text`, for a pattern whose every match starts at an ASCII digit p with
// may_start(text, p) true (the caller's reading of the pattern's first bytes). Only those positions are
// tried, each anchored, with the DFA alone (no submatches, nothing allocated): in prose a handful of short
// runs instead of a DFA pass over the whole text. The same answer as an unanchored search: a match starts
// somewhere, and only where may_start admits.
// With the text's index (index_for), the digits come from its bitmap.
template <typename MayStart>
bool contains_match_at_digit(const RE2& re, std::string_view text, const TextIndex* index, MayStart&& may_start) {
    const re2::StringPiece input(text.data(), text.size());
    for (size_t p = next_digit(text, index, 0); p < text.size(); p = next_digit(text, index, p + 1)) {
        if (may_start(text, p) && re.Match(input, p, text.size(), RE2::ANCHOR_START, nullptr, 0)) return true;
    }
    return false;
}

// The same for a pattern whose every start lies in a number stretch with at least
// TextIndex::kMinStretchDigits digits (a run of four digits, blanks allowed between): only those stretches
// are read.
template <typename MayStart>
bool contains_match_in_number_stretch(const RE2& re, std::string_view text, const TextIndex& index,
                                      MayStart&& may_start) {
    const re2::StringPiece input(text.data(), text.size());
    for (const NumberStretch& s : index.number_stretches()) {
        for (size_t p = index.next_digit(s.begin); p < s.end; p = index.next_digit(p + 1)) {
            if (may_start(text, p) && re.Match(input, p, text.size(), RE2::ANCHOR_START, nullptr, 0)) return true;
        }
    }
    return false;
}

inline size_t offset_in(std::string_view text, const re2::StringPiece& piece) {
    return static_cast<size_t>(piece.data() - text.data());
}

}  // namespace edgeguard::privacy
