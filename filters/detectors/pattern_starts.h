// The RE2 patterns of the detectors that look for digit shapes in free text (dates of birth, RU passport
// numbers), each with a hand reading of where a match can start. contains_match_at_digit (re2_scan.h) tries
// the pattern only at digits these admit: on long prose a handful of anchored runs instead of a DFA pass over
// every byte. Each reading is a superset of the pattern's starts; tests/unit/filters/detector_skips_test.cc
// checks it against RE2's own unanchored search.
#pragma once

#include <cstddef>
#include <string_view>

namespace edgeguard::privacy {

// "12.03.1985", "1985-03-12", "12 марта 1985" / "5 Mar 1990".
inline constexpr const char* kDatePattern =
    R"((\d{1,2})[./-](\d{1,2})[./-](\d{4})|(\d{4})-(\d{1,2})-(\d{1,2})|(\d{1,2}) (?i:январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|декабр|jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[а-яёa-z]* (\d{4}))";
bool may_start_date(std::string_view text, size_t p);

// Series ("4510" / "45 10") and number ("123456"), optionally "№" / "номер" / "no." between.
inline constexpr const char* kRuPassportPattern =
    R"((\d{2} ?\d{2})[ \t]*(?:(?i:№|номер|no\.?|nr\.?)[ \t]*)?(\d{6}))";
bool may_start_ru_passport(std::string_view text, size_t p);

}  // namespace edgeguard::privacy
