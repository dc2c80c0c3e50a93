// Byte-level helpers shared by the hand-written detectors: ASCII classes, token boundaries and a scanner
// for runs of digit groups ("+7 (916) 123-45-67", "4111 1111 1111 1111", "112-233-445 95").
#pragma once

#include <array>
#include <bitset>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string_view>
#include <vector>

#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_index.h"

namespace edgeguard::privacy {

inline bool is_ascii_digit(char c) {
    return c >= '0' && c <= '9';
}
inline bool is_ascii_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
inline bool is_ascii_alnum(char c) {
    return is_ascii_digit(c) || is_ascii_alpha(c);
}
// Word characters for token boundaries. Non-ASCII bytes are not word characters: "ИНН 500100732259" and
// "тел:89161234567" must still bound their numbers.
inline bool is_word_byte(char c) {
    return is_ascii_alnum(c) || c == '_';
}
inline char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// Case-insensitive (ASCII) substring search; UTF-8 needles match byte for byte.
bool contains_ascii_ci(std::string_view haystack, std::string_view needle);
// `word` (ASCII, case-insensitive) with no ASCII letter or digit on either side: "dob" but not "adobe".
bool contains_word_ascii_ci(std::string_view haystack, std::string_view word);
// Any of `needles`, byte for byte.
template <size_t N>
bool contains_any_exact(std::string_view haystack, const std::string_view (&needles)[N]) {
    for (std::string_view n : needles)
        if (haystack.find(n) != std::string_view::npos) return true;
    return false;
}
size_t find_ascii_ci(std::string_view haystack, std::string_view needle, size_t from = 0);

// True when a token ending right before `pos` ... is glued to an identifier on its left: a word byte, or
// '-', '.', ',' with an alphanumeric before it ("ORD-2024", "v2.1", "3.14").
bool glued_on_left(std::string_view text, size_t pos);
// Same on the right of a token ending at `end` (exclusive).
bool glued_on_right(std::string_view text, size_t end);

// True when the bytes right before `pos` are a plain ASCII word that a number may be glued to and still be
// read on its own: "tel79161234567", "card4111111111111111", "k@a.co4111111111111111". The word must
// start at a token boundary: not after a digit or '_' (hex hashes, base64 ids, "0x..." alternate letters
// and digits; "sk_live_abc..." is one token), not after an identifier's '-' ("SM-G991...", UUID groups).
// Version and build markers ("v", "ver", "version", "build", "rev", "r", "b", "release") never count:
// "build20241128" is a build tag.
bool after_plain_word(std::string_view text, size_t pos);

// A fixed list of context words looked for in one pass. Each word has an anchor: its rarest byte in prose
// ('v' of "ovich", a Cyrillic letter's second byte, never 'e' or a space), and the text is compared only
// where an anchor byte stands, found 16 bytes at a time (English text then skips a Cyrillic word list
// without stopping, and "ovich" stops at every 'v', not every 'o'). Every occurrence of a word has its
// anchor, so nothing is missed. When the anchors need more than ByteSetFinder holds, a table of the words'
// first two bytes picks the positions instead (skipping to the first bytes when they are few). ASCII compares case-insensitively, other bytes exactly (list
// the Cyrillic capitalisations you need). With `whole_words`, a hit needs no ASCII alphanumeric on either
// side ("dob" but not "adobe"). Words must outlive the object (string literals).
class ContextWords {
  public:
    ContextWords(std::initializer_list<std::string_view> words, bool whole_words);
    bool found_in(std::string_view text) const;

  private:
    bool word_at(std::string_view text, size_t i, std::string_view w) const;

    std::array<bool, 256> first_bytes_{};
    std::bitset<65536> first_pairs_;  // (first byte << 8 | second byte), both ASCII cases
    ByteSetFinder anchor_finder_{std::string_view()};  // every anchor byte, both ASCII cases; unused if !fits()
    ByteSetFinder first_byte_finder_{std::string_view()};  // the first-pair path's first bytes, if few enough
    std::vector<uint8_t> anchor_offset_;                  // per word: where its anchor sits in it
    // (anchor byte << 8 | the byte after it) of every word, both ASCII cases; every second byte for a word
    // whose anchor is its last byte. Most anchor bytes in prose fail this test and cost no word compare.
    std::bitset<65536> anchor_pairs_;
    std::array<uint64_t, 256> words_by_anchor_{};  // per anchor byte: the words (bit i = word i) it anchors
    bool has_single_byte_word_ = false;
    std::vector<std::string_view> words_;
    bool whole_words_;
};

enum SeparatorBits : uint32_t {
    kSepSpace = 1u << 0,
    kSepDash = 1u << 1,
    kSepParen = 1u << 2,
    // One '.' between groups. Dotted digits are mostly versions, IPs, dates and decimals: a detector that
    // takes dots accepts them only in the digit-group shapes of what it finds (group_lengths_are).
    kSepDot = 1u << 3,
};

// One maximal run of digit groups joined by short separator sequences, bounded by non-identifier bytes.
struct NumberRun {
    static constexpr size_t kMaxGroups = 12;
    static constexpr size_t kMaxDigits = 24;
    size_t begin = 0;  // includes a leading '+'
    size_t end = 0;
    bool plus = false;
    size_t group_count = 0;
    size_t digit_count = 0;
    char digits[kMaxDigits] = {};
    struct Group {
        uint32_t text_begin, text_end;    // byte span in the text
        uint32_t digit_begin, digit_end;  // span in `digits`
    } groups[kMaxGroups] = {};

    // Digits of groups first..last (inclusive) without separators.
    std::string_view digits_of(size_t first, size_t last) const {
        return {digits + groups[first].digit_begin, groups[last].digit_end - groups[first].digit_begin};
    }
    size_t span_begin(size_t first) const { return first == 0 ? begin : groups[first].text_begin; }
    size_t span_end(size_t last) const { return groups[last].text_end; }
};

// Yields every bounded run in `text` once, left to right. Runs glued to identifiers ("8046-1297901ea002"
// inside a UUID, "T14" in a timestamp) and runs with too many groups or digits are skipped. A run glued
// only to a plain word on its left (after_plain_word: "tel79161234567") is yielded: the detectors that use
// this scanner (phone, card, inn, snils) validate the digits, and the letters->digits transition is where
// such numbers start. On the right any word byte still glues ("4111111111111111abc" is an id).
//
// A caller that drops every run with fewer than `min_digits` digits may pass the text's index (index_for):
// runs never leave a number stretch, so the scanner then reads only the stretches holding that many digits
// and yields the same runs of that size, skipping the rest of the text.
class NumberRunScanner {
  public:
    NumberRunScanner(std::string_view text, uint32_t separators) : text_(text), separators_(separators) {}
    NumberRunScanner(std::string_view text, uint32_t separators, const TextIndex* index, uint32_t min_digits)
        : text_(text),
          separators_(separators),
          stretches_(index != nullptr && min_digits >= TextIndex::kMinStretchDigits ? &index->number_stretches()
                                                                                    : nullptr),
          min_digits_(min_digits) {}
    bool next(NumberRun& run);

  private:
    bool is_separator(char c) const;
    bool iban_head(const NumberRun& run) const;
    // Moves pos_ to the next stretch with min_digits_ digits unless it is inside one; false when none is left.
    bool enter_stretch();
    std::string_view text_;
    uint32_t separators_;
    const std::vector<NumberStretch>* stretches_ = nullptr;
    uint32_t min_digits_ = 0;
    size_t stretch_ = 0;
    size_t pos_ = 0;
};

// The separator bytes between groups g and g+1 of `run`.
inline std::string_view gap_text(std::string_view text, const NumberRun& run, size_t g) {
    return text.substr(run.groups[g].text_end, run.groups[g + 1].text_begin - run.groups[g].text_end);
}
// Whether any gap between groups first..last holds a '.'.
inline bool has_dot_gap(std::string_view text, const NumberRun& run, size_t first, size_t last) {
    for (size_t g = first; g < last; ++g)
        if (gap_text(text, run, g).find('.') != std::string_view::npos) return true;
    return false;
}
// Whether groups first..last have exactly the digit counts `lengths`.
inline bool group_lengths_are(const NumberRun& run, size_t first, size_t last,
                              std::initializer_list<uint32_t> lengths) {
    if (last - first + 1 != lengths.size()) return false;
    size_t g = first;
    for (uint32_t len : lengths) {
        if (run.groups[g].digit_end - run.groups[g].digit_begin != len) return false;
        ++g;
    }
    return true;
}

// For each start group, the longest sub-run [first, last] that `accept(run, first, last)` admits is
// reported through `emit(begin, end)`; scanning resumes after it.
template <typename Accept, typename Emit>
void for_each_accepted_subrun(const NumberRun& run, Accept&& accept, Emit&& emit) {
    for (size_t first = 0; first < run.group_count;) {
        size_t taken = 0;
        for (size_t last = run.group_count; last-- > first;) {
            if (accept(run, first, last)) {
                emit(run.span_begin(first), run.span_end(last));
                taken = last - first + 1;
                break;
            }
        }
        first += taken > 0 ? taken : 1;
    }
}

}  // namespace edgeguard::privacy
