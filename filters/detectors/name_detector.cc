// Full names with a Russian patronymic: "Иванов Иван Иванович", "Иван Иванович Иванов", "Анна Сергеевна",
// and transliterated "Ivanov Ivan Ivanovich". The patronymic suffix (-ович/-евич/-ьич/-овна/-евна/-ична)
// is a cheap high-precision signal that needs no NER; capitalised UI text without one passes.
#include <cstring>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

constexpr const char* kNamePattern =
    R"((?:[А-ЯЁ][а-яё]+[ \t]+)?[А-ЯЁ][а-яё]+[ \t]+[А-ЯЁ][а-яё]*(?:ович|евич|ьич|овна|евна|ична|инична)(?:[ \t]+[А-ЯЁ][а-яё]+)?)"
    R"(|(?:[A-Z][a-z]+[ \t]+)?[A-Z][a-z]+[ \t]+[A-Z][a-z]*(?:ovich|evich|ovna|evna|ichna)(?:[ \t]+[A-Z][a-z]+)?)";

class NameDetector final : public GatedDetector {
  public:
    NameDetector() : re_(kNamePattern, detector_re2_options()) {}
    std::string_view id() const override { return "name"; }
    DetectorGate gate() const override {
        return DetectorGate::when_any(kGateLength8 | kHasSpace | kHasNonAscii,
                                      kGateLength8 | kHasSpace | kHasUpper);
    }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        if (!patronymic_suffixes_.found_in(text)) return;
        for_each_re2_match<1>(re_, text, [&](const re2::StringPiece* g) {
            size_t begin = offset_in(text, g[0]);
            size_t end = begin + g[0].size();
            // The match must end at a word end: "Ивановича" in "Ивановичами" is not a name.
            if (end < text.size() &&
                (is_word_byte(text[end]) || static_cast<unsigned char>(text[end]) >= 0x80))
                return;
            if (begin > 0 && is_word_byte(text[begin - 1])) return;
            out.push_back({begin, end, id()});
        });
    }

  private:
    const ContextWords patronymic_suffixes_{
        {"ович", "евич", "ьич", "овна", "евна", "ична", "ovich", "evich", "ovna", "evna", "ichna"}, false};
    RE2 re_;
};

}  // namespace

std::unique_ptr<GatedDetector> make_name_detector() {
    return std::make_unique<NameDetector>();
}

}  // namespace edgeguard::privacy
