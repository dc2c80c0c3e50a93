// The RE2 patterns of the detectors that look for digit shapes in free text (dates of birth, RU passport
// numbers), each with a hand reading of where a match can start. contains_match_at_digit (re2_scan.h) tries
// the pattern only at digits these admit: on long prose a handful of anchored runs instead of a DFA pass over
// every byte. Each reading is a superset of the pattern's starts; tests/unit/filters/detector_skips_test.cc
// checks it against RE2's own unanchored search.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace edgeguard::privacy {

// "12.03.1985", "1985-03-12", "12 марта 1985" / "5 Mar 1990".
inline constexpr const char* kDatePattern =
    R"((\d{1,2})[./-](\d{1,2})[./-](\d{4})|(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2}) (?i:январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|декабр|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[а-яёa-z]* (\d{4}))";
bool may_start_date(std::string_view text, size_t p);
// The first letters of the English month names (bit 0 = 'a').
inline constexpr uint32_t kMonthInitials = (1u << ('j' - 'a')) | (1u << ('f' - 'a')) | (1u << ('m' - 'a')) |
                                           (1u << ('a' - 'a')) | (1u << ('s' - 'a')) | (1u << ('o' - 'a')) |
                                           (1u << ('n' - 'a')) | (1u << ('d' - 'a'));

// A necessary condition for may_start_date at p, inline and cheap enough for every digit of prose: a digit
// that continues with a blank and a month's first letter (or a non-ASCII byte), a separator and a digit, or
// a second digit and then a blank, a separator or a digit. Most digits of prose ("02:00", "25%") fail it.
inline bool may_continue_date(std::string_view t, size_t p) {
    if (p + 2 >= t.size()) return false;  // the shortest date ("1.1.1900") is longer
    const auto digit = [](char c) { return c >= '0' && c <= '9'; };
    const auto separator = [](char c) { return c == '.' || c == '/' || c == '-'; };
    const char first = t[p], next = t[p + 1], after = t[p + 2];
    if (!digit(first)) return false;
    if (next == ' ') {
        const auto c = static_cast<unsigned char>(after);
        const unsigned letter = static_cast<unsigned>((c | 0x20) - 'a');
        return c >= 0x80 || (letter < 26 && ((kMonthInitials >> letter) & 1) != 0);
    }
    if (separator(next)) return digit(after);
    return digit(next) && (after == ' ' || separator(after) || digit(after));
}

// Series ("4510" / "45 10") and number ("123456"), optionally "№" / "номер" / "no." between.
inline constexpr const char* kRuPassportPattern =
    R"((\d{2} ?\d{2})[ \t]*(?:(?i:№|номер|no\.?|nr\.?)[ \t]*)?(\d{6}))";
bool may_start_ru_passport(std::string_view text, size_t p);

}  // namespace edgeguard::privacy
