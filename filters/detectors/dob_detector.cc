// Dates of birth: an ordinary date ("12.03.1985", "1985-03-12", "12 марта 1985") is personal only next to
// a birth context word in the text ("дата рождения", "д.р.", "born", "birthday", "DOB") or under a
// birth-like key. Bare dates and event timestamps pass.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/pattern_starts.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

class DobDetector final : public GatedDetector {
  public:
    DobDetector() : date_(kDatePattern, detector_re2_options()) {}

    std::string_view id() const override { return "dob"; }
    // Every date shape has a 4-digit year and, between its parts, either two of '.', '/', '-' or two
    // blanks around a month name (ASCII or Cyrillic letters). The context (a word in the text or the key)
    // is left to find(): nearly every value the walker scans has a key, so a gate on it excludes nothing.
    DetectorGate gate() const override {
        constexpr uint64_t kDate = kGateDigits5 | kGateNumberRun4;
        return DetectorGate::when_any(kDate | kGateDateSeparators2, kDate | kHasSpace | kGateAnyLetter);
    }
    void find(std::string_view text, const DetectorContext& ctx,
              std::vector<DetectorMatch>& out) const override {
        // Most long texts hold no date, and the context search reads the whole text: ask whether there is a
        // date at all first, then for the context.
        const auto may_start = [](std::string_view t, size_t p) { return may_continue_date(t, p) && may_start_date(t, p); };
        if (!contains_match_at_digit(date_, text, index_for(text, ctx), may_start)) return;
        bool context = birth_context(ctx.key) || birth_context(text);
        if (!context) return;
        for_each_re2_match<9>(date_, text, [&](const re2::StringPiece* g) {
            size_t begin = offset_in(text, g[0]);
            size_t end = begin + g[0].size();
            if (glued_on_left(text, begin) || glued_on_right(text, end)) return;
            int day = 0, month = 1, year = 0;
            auto num = [](const re2::StringPiece& p) {
                int v = 0;
                for (char c : p) v = v * 10 + (c - '0');
                return v;
            };
            if (!g[1].empty()) {
                day = num(g[1]), month = num(g[2]), year = num(g[3]);
            } else if (!g[4].empty()) {
                year = num(g[4]), month = num(g[5]), day = num(g[6]);
            } else {
                day = num(g[7]), year = num(g[8]);
            }
            if (day >= 1 && day <= 31 && month >= 1 && month <= 12 && year >= 1900 && year <= 2100)
                out.push_back({begin, end, id()});
        });
    }

  private:
    bool birth_context(std::string_view s) const { return words_.found_in(s) || whole_words_.found_in(s); }
    const ContextWords words_{{"birth", "рожд", "Рожд", "РОЖД", "родил", "Родил", "д.р.", "Д.р.", "д/р"},
                              false};
    const ContextWords whole_words_{{"dob", "born", "bday"}, true};
    RE2 date_;
};

}  // namespace

std::unique_ptr<GatedDetector> make_dob_detector() {
    return std::make_unique<DobDetector>();
}

}  // namespace edgeguard::privacy
