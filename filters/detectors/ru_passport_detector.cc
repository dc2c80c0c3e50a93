// Russian internal passports: series (4 digits, "45 10" or "4510") and a 6-digit number. There is no
// checksum, so a hit needs a context word in the text ("паспорт", "серия", "passport") or a passport-like
// key; without one, ten digits are just ten digits.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

// Whether a match can start at p: the series ("4510" or "45 10"), blanks, then six digits or the start of
// a number word ("№", "номер", "no", "nr": 'n', 'N' or a non-ASCII byte). RE2's \d is ASCII. A superset of
// the pattern's starts.
bool may_start_series(std::string_view t, size_t p) {
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

class RuPassportDetector final : public GatedDetector {
  public:
    RuPassportDetector()
        : number_(R"((\d{2} ?\d{2})[ \t]*(?:(?i:№|номер|no\.?|nr\.?)[ \t]*)?(\d{6}))",
                  detector_re2_options()) {}

    std::string_view id() const override { return "ru_passport"; }
    // Context words are Cyrillic or "passport" (non-hex letters), or the key.
    DetectorGate gate() const override {
        constexpr uint64_t kNumber = kGateDigits10 | kGateNumberRun4;
        return DetectorGate::when_any(kNumber | kGateKey, kNumber | kHasNonAscii, kNumber | kHasNonHexLetter);
    }
    void find(std::string_view text, const DetectorContext& ctx,
              std::vector<DetectorMatch>& out) const override {
        // Most texts with ten digits hold no series and number, and the context search reads the whole text:
        // ask whether there is a candidate at all first, then for the context.
        if (!contains_match_at_digit(number_, text, may_start_series)) return;
        bool context = context_words_.found_in(ctx.key) || context_words_.found_in(text);
        if (!context) return;
        for_each_re2_match<3>(number_, text, [&](const re2::StringPiece* g) {
            size_t begin = offset_in(text, g[1]);
            size_t end = offset_in(text, g[2]) + g[2].size();
            if (!glued_on_left(text, begin) && !glued_on_right(text, end)) out.push_back({begin, end, id()});
        });
    }

  private:
    // Cyrillic compares byte for byte: the usual three capitalisations are listed.
    const ContextWords context_words_{
        {"passport", "паспорт", "Паспорт", "ПАСПОРТ", "серия", "Серия", "СЕРИЯ", "серии"}, false};
    RE2 number_;
};

}  // namespace

std::unique_ptr<GatedDetector> make_ru_passport_detector() {
    return std::make_unique<RuPassportDetector>();
}

}  // namespace edgeguard::privacy
