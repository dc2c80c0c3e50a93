// Payment card numbers: 12..19 digits, optionally in groups separated by one kind of separator, that pass
// Luhn AND fall in an issuer range that issues that length (Mir 2200-2204 and Mastercard 2221-2720
// included; prefix 1 only as a 15-digit UATP, which keeps epoch-ms/us timestamps out).
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

bool card_run_ok(std::string_view text, const NumberRun& run, size_t first, size_t last) {
    if (run.plus && first == 0) return false;
    std::string_view d = run.digits_of(first, last);
    if (d.size() < 12 || d.size() > 19) return false;
    // One separator kind throughout, one byte between groups ("4111 1111 1111 1111", "4111-1111-...").
    char sep = 0;
    for (size_t g = first; g < last; ++g) {
        size_t gap_begin = run.groups[g].text_end, gap_end = run.groups[g + 1].text_begin;
        if (gap_end - gap_begin != 1) return false;
        char c = text[gap_begin];
        if (c != ' ' && c != '-') return false;
        if (sep != 0 && c != sep) return false;
        sep = c;
    }
    return card_number_valid(d);
}

class CardDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "card"; }
    DetectorGate gate() const override { return DetectorGate::when(kGateNumberRun12); }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        NumberRunScanner scanner(text, kSepSpace | kSepDash);
        NumberRun run;
        while (scanner.next(run)) {
            if (run.digit_count < 12) continue;
            for_each_accepted_subrun(
                run, [&](const NumberRun& r, size_t a, size_t b) { return card_run_ok(text, r, a, b); },
                [&](size_t b, size_t e) {
                    out.push_back({b, e, id()});
                });
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_card_detector() {
    return std::make_unique<CardDetector>();
}

}  // namespace edgeguard::privacy
