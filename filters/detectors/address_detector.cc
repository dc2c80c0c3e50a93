// Russian street addresses down to the house: a street marker ("ул.", "улица", "проспект", "пер.", ...)
// followed within a few words by a house marker and number ("д. 7", "дом 7"), optionally preceded by the
// city ("г. Москва") and followed by building and flat ("корп. 2", "кв. 12"). A city alone passes: GeoIP
// adds city-level location to every event.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

constexpr const char* kAddressPattern =
    R"((?i)(?:(?:г\.|город)\s*[а-яё][а-яё-]*,?\s*)?)"
    R"((?:ул\.|улица|пр-т|просп\.|проспект|пер\.|переулок|ш\.|шоссе|б-р|бульвар|наб\.|набережная|пл\.|площадь|мкр\.?|микрорайон)\s*)"
    R"([а-яёa-z\d][а-яёa-z\d .-]*?,?\s*(?:д\.|дом)\s*\d+[а-яёa-z/\d-]*)"
    R"((?:,?\s*(?:корп\.|корпус|к\.|стр\.|строение)\s*\d+)?)"
    R"((?:,?\s*(?:кв\.|квартира|оф\.|офис)\s*\d+)?)";

class AddressDetector final : public GatedDetector {
  public:
    AddressDetector() : re_(kAddressPattern, detector_re2_options()) {}
    std::string_view id() const override { return "address"; }
    DetectorGate gate() const override { return DetectorGate::when(kHasNonAscii | kHasDigit | kGateLength8); }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        if (!street_words_.found_in(text) || !house_words_.found_in(text)) return;
        for_each_re2_match<1>(re_, text, [&](const re2::StringPiece* g) {
            size_t begin = offset_in(text, g[0]);
            out.push_back({begin, begin + g[0].size(), id()});
        });
    }

  private:
    // Cheap literal pre-checks before the RE2 pass (Cyrillic compares byte for byte: both capitalisations).
    const ContextWords street_words_{
        {"ул.",  "Ул.",    "улиц",   "Улиц",  "УЛ.",    "пр-т",   "просп", "Просп", "пер.",
         "Пер.", "переул", "Переул", "шоссе", "Шоссе",  "ш.",     "б-р",   "бульв", "Бульв",
         "наб",  "Наб",    "пл.",    "Пл.",   "площад", "Площад", "мкр",   "Мкр",   "микрорайон"},
        false};
    const ContextWords house_words_{{"д.", "Д.", "дом", "Дом"}, false};
    RE2 re_;
};

}  // namespace

std::unique_ptr<GatedDetector> make_address_detector() {
    return std::make_unique<AddressDetector>();
}

}  // namespace edgeguard::privacy
