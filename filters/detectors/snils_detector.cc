// SNILS (Russian insurance number): "XXX-XXX-XXX YY", "XXX XXX XXX YY" or 11 contiguous digits, with the
// mod-101 control number. An 11-digit value that is also a valid RU phone is reported as a phone by the
// registry's tie rule (phone is listed first).
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

bool snils_shape(const NumberRun& run, size_t first, size_t last) {
    if (run.plus && first == 0) return false;
    size_t groups = last - first + 1;
    auto len = [&](size_t g) { return run.groups[g].digit_end - run.groups[g].digit_begin; };
    if (groups == 1) return len(first) == 11;
    if (groups == 4)
        return len(first) == 3 && len(first + 1) == 3 && len(first + 2) == 3 && len(first + 3) == 2;
    if (groups == 2) return len(first) == 9 && len(first + 1) == 2;
    return false;
}

class SnilsDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "snils"; }
    DetectorGate gate() const override { return DetectorGate::when(kGateNumberRun11); }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        constexpr uint32_t kMinDigits = 11;
        NumberRunScanner scanner(text, kSepSpace | kSepDash, index_for(text, ctx), kMinDigits);
        NumberRun run;
        while (scanner.next(run)) {
            if (run.digit_count < kMinDigits) continue;
            for_each_accepted_subrun(
                run,
                [](const NumberRun& r, size_t a, size_t b) {
                    return snils_shape(r, a, b) && snils_valid(r.digits_of(a, b));
                },
                [&](size_t b, size_t e) {
                    out.push_back({b, e, id()});
                });
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_snils_detector() {
    return std::make_unique<SnilsDetector>();
}

}  // namespace edgeguard::privacy
