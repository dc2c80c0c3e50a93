// Russian INN of an individual: 12 contiguous digits with both check digits. A valid 10-digit INN belongs
// to a legal entity (public register) and is deliberately not reported as personal data.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

class InnDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "inn"; }
    DetectorGate gate() const override { return DetectorGate::when(kGateNumberRun12); }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        NumberRunScanner scanner(text, 0, index_for(text, ctx), 12);
        NumberRun run;
        while (scanner.next(run)) {
            if (!run.plus && run.digit_count == 12 && inn12_valid(run.digits_of(0, 0)))
                out.push_back({run.begin, run.end, id()});
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_inn_detector() {
    return std::make_unique<InnDetector>();
}

}  // namespace edgeguard::privacy
