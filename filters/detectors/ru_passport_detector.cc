// Russian internal passports: series (4 digits, "45 10" or "4510") and a 6-digit number. There is no
// checksum, so a hit needs a context word in the text ("паспорт", "серия", "passport") or a passport-like
// key; without one, ten digits are just ten digits.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/pattern_starts.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

class RuPassportDetector final : public GatedDetector {
  public:
    RuPassportDetector()
        : number_(kRuPassportPattern, detector_re2_options()) {}

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
        // A series ("4510", "45 10") is four digits with at most a space between: a number stretch.
        const TextIndex* index = index_for(text, ctx);
        const bool candidate = index != nullptr
                                   ? contains_match_in_number_stretch(number_, text, *index, may_start_ru_passport)
                                   : contains_match_at_digit(number_, text, nullptr, may_start_ru_passport);
        if (!candidate) return;
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
