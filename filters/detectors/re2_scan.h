// Iterating RE2 matches over a string_view: the loop every RE2-backed detector needs.
#pragma once

#include <re2/re2.h>

#include <string_view>

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

// Whether `re` matches anywhere in `text`: the DFA alone, no submatch extraction.
inline bool contains_match(const RE2& re, std::string_view text) {
    return re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, nullptr, 0);
}

inline size_t offset_in(std::string_view text, const re2::StringPiece& piece) {
    return static_cast<size_t>(piece.data() - text.data());
}

}  // namespace edgeguard::privacy
