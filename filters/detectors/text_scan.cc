#include "filters/detectors/text_scan.h"

#include "filters/detectors/byte_search.h"

namespace edgeguard::privacy {

size_t find_ascii_ci(std::string_view haystack, std::string_view needle, size_t from) {
    if (needle.empty()) return from <= haystack.size() ? from : std::string_view::npos;
    if (haystack.size() < needle.size()) return std::string_view::npos;
    const char first = ascii_lower(needle[0]);
    for (size_t i = from; i + needle.size() <= haystack.size(); ++i) {
        if (ascii_lower(haystack[i]) != first) continue;
        size_t k = 1;
        while (k < needle.size() && ascii_lower(haystack[i + k]) == ascii_lower(needle[k])) ++k;
        if (k == needle.size()) return i;
    }
    return std::string_view::npos;
}

bool contains_ascii_ci(std::string_view haystack, std::string_view needle) {
    return find_ascii_ci(haystack, needle) != std::string_view::npos;
}

bool contains_word_ascii_ci(std::string_view haystack, std::string_view word) {
    for (size_t pos = find_ascii_ci(haystack, word); pos != std::string_view::npos;
         pos = find_ascii_ci(haystack, word, pos + 1)) {
        size_t end = pos + word.size();
        if ((pos == 0 || !is_ascii_alnum(haystack[pos - 1])) &&
            (end == haystack.size() || !is_ascii_alnum(haystack[end])))
            return true;
    }
    return false;
}

namespace {

// How often a byte stands in prose, roughly (English letter frequencies in tenths of a percent); the
// anchor of a word is its lowest-scoring byte. A UTF-8 continuation byte names one letter of a script
// (Cyrillic 'в' is D0 B2), a lead byte only the script, so continuation bytes make the better anchors.
int anchor_score(unsigned char b) {
    static constexpr int kLetters[26] = {82, 15, 28, 43, 127, 22, 20, 61, 70, 2,  8, 40, 24,
                                         67, 75, 19, 1,  60, 63,  91, 28, 10, 24, 2, 20, 1};
    if (b >= 0x80 && b <= 0xBF) return 5;
    if (b >= 0xC0) return 300;
    const char lower = ascii_lower(static_cast<char>(b));
    if (lower >= 'a' && lower <= 'z') return kLetters[lower - 'a'];
    if (b == ' ') return 180;
    return 10;  // digits and punctuation
}

}  // namespace

ContextWords::ContextWords(std::initializer_list<std::string_view> words, bool whole_words)
    : words_(words), whole_words_(whole_words) {
    auto cases = [](char c) {
        char lower = ascii_lower(c);
        char upper = (lower >= 'a' && lower <= 'z') ? static_cast<char>(lower - 'a' + 'A') : lower;
        return std::array<unsigned char, 2>{static_cast<unsigned char>(lower),
                                            static_cast<unsigned char>(upper)};
    };
    for (std::string_view w : words_) {
        if (w.size() < 2) {
            has_single_byte_word_ = true;
            continue;
        }
        for (unsigned char a : cases(w[0])) {
            first_bytes_[a] = true;
            for (unsigned char b : cases(w[1])) first_pairs_[(size_t{a} << 8) | b] = true;
        }
    }
    // Anchors: a byte already chosen for another word costs nothing more, so words share them.
    std::array<bool, 256> anchor{};
    bool too_many = false;
    std::string anchor_bytes;
    for (std::string_view w : words_) {
        size_t best = 0;
        int best_score = 0;
        for (size_t k = 0; k < w.size() && k < 256; ++k) {
            const auto b = static_cast<unsigned char>(w[k]);
            const int score = anchor[b] ? 0 : anchor_score(b);
            if (k == 0 || score < best_score) best = k, best_score = score;
        }
        anchor_offset_.push_back(static_cast<uint8_t>(best));
        if (w.empty() || w.size() > 255 || words_.size() > 64) {
            too_many = true;  // an empty word is everywhere: no anchor for it
            continue;
        }
        const size_t index = anchor_offset_.size() - 1;
        for (unsigned char b : cases(w[best])) {
            words_by_anchor_[b] |= uint64_t{1} << index;
            if (best + 1 < w.size()) {
                for (unsigned char next : cases(w[best + 1])) anchor_pairs_[(size_t{b} << 8) | next] = true;
            } else {
                for (size_t next = 0; next < 256; ++next) anchor_pairs_[(size_t{b} << 8) | next] = true;
            }
            if (anchor[b]) continue;
            anchor[b] = true;
            anchor_bytes.push_back(static_cast<char>(b));
        }
    }
    if (!too_many && anchor_bytes.size() <= ByteSetFinder::kMaxBytes) anchor_finder_ = ByteSetFinder(anchor_bytes);
    std::string first_bytes;
    for (size_t b = 0; b < first_bytes_.size(); ++b)
        if (first_bytes_[b]) first_bytes.push_back(static_cast<char>(b));
    if (first_bytes.size() <= ByteSetFinder::kMaxBytes) first_byte_finder_ = ByteSetFinder(first_bytes);
}

bool ContextWords::word_at(std::string_view text, size_t i, std::string_view w) const {
    if (w.size() > text.size() - i) return false;
    size_t k = 0;
    while (k < w.size() && ascii_lower(text[i + k]) == ascii_lower(w[k])) ++k;
    if (k != w.size()) return false;
    if (whole_words_ &&
        ((i > 0 && is_ascii_alnum(text[i - 1])) || (i + k < text.size() && is_ascii_alnum(text[i + k]))))
        return false;
    return true;
}

bool ContextWords::found_in(std::string_view text) const {
    const size_t n = text.size();
    if (anchor_finder_.fits()) {
        const auto word_here = [&](size_t p) {
            const auto c = static_cast<unsigned char>(text[p]);
            // A word ending at its anchor passes any next byte; at the text's end, its pair holds a zero.
            const auto next = p + 1 < n ? static_cast<unsigned char>(text[p + 1]) : 0;
            if (p + 1 < n && !anchor_pairs_[(size_t{c} << 8) | next]) return false;
            for (uint64_t words = words_by_anchor_[c]; words != 0; words &= words - 1) {
                const auto w = static_cast<size_t>(__builtin_ctzll(words));
                const size_t k = anchor_offset_[w];
                if (p >= k && word_at(text, p - k, words_[w])) return true;
            }
            return false;
        };
        return anchor_finder_.find_if(text, 0, word_here) < n;
    }
    const bool skip_to_first_bytes = !has_single_byte_word_ && first_byte_finder_.fits();
    for (size_t i = 0; i < n; ++i) {
        if (skip_to_first_bytes && (i = first_byte_finder_.next(text, i)) >= n) break;
        const auto b0 = static_cast<unsigned char>(text[i]);
        if (!has_single_byte_word_) {
            if (!first_bytes_[b0] || i + 1 >= n) continue;
            if (!first_pairs_[(size_t{b0} << 8) | static_cast<unsigned char>(text[i + 1])]) continue;
        }
        for (std::string_view w : words_)
            if (word_at(text, i, w)) return true;
    }
    return false;
}

bool glued_on_left(std::string_view text, size_t pos) {
    if (pos == 0) return false;
    char c = text[pos - 1];
    if (is_word_byte(c)) return true;
    if ((c == '-' || c == '.' || c == ',') && pos >= 2 && is_ascii_alnum(text[pos - 2])) return true;
    return false;
}

bool glued_on_right(std::string_view text, size_t end) {
    if (end >= text.size()) return false;
    char c = text[end];
    if (is_word_byte(c)) return true;
    if ((c == '-' || c == '.' || c == ',') && end + 1 < text.size() && is_ascii_alnum(text[end + 1]))
        return true;
    return false;
}

bool after_plain_word(std::string_view text, size_t pos) {
    size_t word_begin = pos;
    while (word_begin > 0 && is_ascii_alpha(text[word_begin - 1])) --word_begin;
    if (word_begin == pos) return false;
    if (word_begin > 0) {
        const char before = text[word_begin - 1];
        if (is_word_byte(before)) return false;
        if (before == '-' && word_begin >= 2 && is_ascii_alnum(text[word_begin - 2])) return false;
    }
    static constexpr std::string_view kVersionMarkers[] = {"v",     "ver", "version", "build",
                                                           "rev",   "r",   "b",       "release"};
    const std::string_view word = text.substr(word_begin, pos - word_begin);
    for (std::string_view marker : kVersionMarkers) {
        if (word.size() == marker.size() && find_ascii_ci(word, marker) == 0) return false;
    }
    return true;
}

// Two letters glued to a two-digit group that more groups follow ("DE89 3704 0044 0532 0130 01") are an
// IBAN's country code and check digits: the groups belong to the IBAN (the iban detector validates it), and
// an invalid IBAN must not become a phone or card made of its groups.
bool NumberRunScanner::iban_head(const NumberRun& run) const {
    return run.group_count > 1 && run.groups[0].digit_end - run.groups[0].digit_begin == 2 && run.begin >= 2 &&
           is_ascii_alpha(text_[run.begin - 1]) && is_ascii_alpha(text_[run.begin - 2]) &&
           (run.begin == 2 || !is_ascii_alpha(text_[run.begin - 3]));
}

bool NumberRunScanner::is_separator(char c) const {
    switch (c) {
        case ' ':
            return (separators_ & kSepSpace) != 0;
        case '-':
            return (separators_ & kSepDash) != 0;
        case '(':
        case ')':
            return (separators_ & kSepParen) != 0;
        case '.':
            return (separators_ & kSepDot) != 0;
        default:
            return false;
    }
}

bool NumberRunScanner::enter_stretch() {
    const std::vector<NumberStretch>& all = *stretches_;
    while (stretch_ < all.size() && (all[stretch_].end <= pos_ || all[stretch_].digits < min_digits_)) ++stretch_;
    if (stretch_ == all.size()) return false;
    if (pos_ < all[stretch_].begin) pos_ = all[stretch_].begin;
    return true;
}

bool NumberRunScanner::next(NumberRun& run) {
    const size_t n = text_.size();
    while (pos_ < n) {
        if (stretches_ != nullptr && !enter_stretch()) {
            pos_ = n;
            return false;
        }
        // Next digit that starts a token.
        const size_t start = find_ascii_digit(text_, pos_);
        if (start >= n) {
            pos_ = n;
            return false;
        }
        run.plus = start > 0 && text_[start - 1] == '+';
        run.begin = run.plus ? start - 1 : start;
        run.group_count = 0;
        run.digit_count = 0;
        bool overflow = false;
        size_t i = start;
        for (;;) {
            size_t group_begin = i;
            while (i < n && is_ascii_digit(text_[i])) {
                if (run.digit_count < NumberRun::kMaxDigits) {
                    run.digits[run.digit_count] = text_[i];
                } else {
                    overflow = true;
                }
                ++run.digit_count;
                ++i;
            }
            if (run.group_count < NumberRun::kMaxGroups && !overflow) {
                auto& g = run.groups[run.group_count];
                g.text_begin = static_cast<uint32_t>(group_begin);
                g.text_end = static_cast<uint32_t>(i);
                g.digit_end = static_cast<uint32_t>(run.digit_count);
                g.digit_begin = static_cast<uint32_t>(run.digit_count - (i - group_begin));
            } else {
                overflow = true;
            }
            ++run.group_count;
            // Up to three separator bytes ("-", ") ", " - ") lead to the next group.
            size_t k = i;
            while (k < n && k - i < 3 && is_separator(text_[k])) ++k;
            // A dot separates only alone ("916.123.45.67"; "1..2" and ". " end the run).
            if (k > i && std::string_view(text_.data() + i, k - i).find('.') != std::string_view::npos &&
                k - i != 1)
                k = i;
            if (k > i && k < n && is_ascii_digit(text_[k])) {
                i = k;
                continue;
            }
            break;
        }
        run.end = i;
        pos_ = i;
        if (overflow) continue;
        if (glued_on_right(text_, run.end)) continue;
        if (glued_on_left(text_, run.begin) && !(after_plain_word(text_, run.begin) && !iban_head(run))) continue;
        return true;
    }
    return false;
}

}  // namespace edgeguard::privacy
