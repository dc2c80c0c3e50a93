#include "filters/detectors/pattern_starts.h"

#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {

// Whether a match of the date pattern can start at p: the pattern's digit groups and separators read by
// hand, every way its \d{1,2} can split (RE2's \d is ASCII). For the month form only "\d{1,2} " and the
// month's first letters are read: an ASCII month name (case-insensitive) or any non-ASCII byte, which
// covers Cyrillic months and the Unicode case folds (?i) allows. A superset of the pattern's starts.
bool may_start_date(std::string_view t, size_t p) {
    // Byte tests written out: this runs at every digit of long prose, and most digits fail the first two.
    const size_t n = t.size();
    const auto digit = [&](size_t at) { return at < n && is_ascii_digit(t[at]); };
    const auto digits = [&](size_t at, size_t count) {
        if (at + count > n) return false;
        for (size_t k = at; k < at + count; ++k)
            if (!is_ascii_digit(t[k])) return false;
        return true;
    };
    const auto date_separator = [&](size_t at) {
        return at < n && (t[at] == '.' || t[at] == '/' || t[at] == '-');
    };
    const auto month_at = [&](size_t at) {
        if (at < n && static_cast<unsigned char>(t[at]) >= 0x80) return true;
        if (at + 3 > n) return false;
        const auto first = static_cast<unsigned>(ascii_lower(t[at]) - 'a');
        if (first >= 26 || ((kMonthInitials >> first) & 1) == 0) return false;  // most words fail here
        static constexpr std::string_view kMonths = "jan feb mar apr may jun jul aug sep oct nov dec ";
        const char word[3] = {ascii_lower(t[at]), ascii_lower(t[at + 1]), ascii_lower(t[at + 2])};
        for (size_t m = 0; m < kMonths.size(); m += 4)
            if (kMonths[m] == word[0] && kMonths[m + 1] == word[1] && kMonths[m + 2] == word[2]) return true;
        return false;
    };
    if (!may_continue_date(t, p)) return false;
    for (size_t day = 1; day <= 2; ++day) {
        if (day == 2 && !digit(p + 1)) break;
        const size_t after_day = p + day;
        if (after_day < n && t[after_day] == ' ' && month_at(after_day + 1)) return true;
        if (!date_separator(after_day)) continue;
        for (size_t month = 1; month <= 2; ++month) {
            if (!digit(after_day + month)) break;
            const size_t after_month = after_day + 1 + month;
            if (date_separator(after_month) && digits(after_month + 1, 4)) return true;
        }
    }
    return digits(p, 4) && p + 4 < n && t[p + 4] == '-' && digit(p + 5) &&
           (p + 6 < n && t[p + 6] == '-' ? digit(p + 7) : digit(p + 6) && p + 7 < n && t[p + 7] == '-' && digit(p + 8));
}

// Whether a match can start at p: the series ("4510" or "45 10"), blanks, then six digits or the start of
// a number word ("№", "номер", "no", "nr": 'n', 'N' or a non-ASCII byte). RE2's \d is ASCII. A superset of
// the pattern's starts.
bool may_start_ru_passport(std::string_view t, size_t p) {
    const auto digits = [&](size_t at, size_t count) {
        if (at + count > t.size()) return false;
        for (size_t k = at; k < at + count; ++k)
            if (!is_ascii_digit(t[k])) return false;
        return true;
    };
    const auto after_series = [&](size_t at) {
        while (at < t.size() && (t[at] == ' ' || t[at] == '\t')) ++at;
        if (at >= t.size()) return false;
        const auto c = static_cast<unsigned char>(t[at]);
        return digits(at, 6) || c == 'n' || c == 'N' || c >= 0x80;
    };
    if (!digits(p, 2)) return false;
    if (digits(p + 2, 2) && after_series(p + 4)) return true;
    return p + 2 < t.size() && t[p + 2] == ' ' && digits(p + 3, 2) && after_series(p + 5);
}

}  // namespace edgeguard::privacy
