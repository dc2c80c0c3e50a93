// IBANs: country code, two check digits and the BBAN, case-insensitive, optionally in space-separated
// groups; the length must be the country's and mod-97 must be 1.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

class IbanDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "iban"; }
    DetectorGate gate() const override {
        return DetectorGate::when(kGateLength15 | kGateDigits7 | kGateAlnumRun4 | kGateAsciiLetter);
    }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        const size_t n = text.size();
        const TextIndex* index = index_for(text, ctx);
        // Candidates start two letters before a digit: skip from digit to digit.
        for (size_t i = 0; i + 15 <= n; ++i) {
            const size_t digit = next_digit(text, index, i + 2);
            if (digit >= n) break;
            i = digit - 2;
            if (i + 15 > n) break;
            if (!(is_ascii_alpha(text[i]) && is_ascii_alpha(text[i + 1]) && is_ascii_digit(text[i + 3]))) continue;
            if (i > 0 && is_word_byte(text[i - 1])) continue;
            // Collect up to 34 alphanumerics, single spaces allowed between them; try every length at which
            // the token could end, longest first is unnecessary: the country fixes the length.
            size_t end = i, significant = 0;
            size_t best_end = 0;
            while (end < n && significant < 34) {
                char c = text[end];
                if (is_ascii_alnum(c)) {
                    ++significant;
                    ++end;
                    if (significant >= 15 && (end == n || !is_word_byte(text[end])) &&
                        iban_valid(text.substr(i, end - i)))
                        best_end = end;
                } else if (c == ' ' && end + 1 < n && is_ascii_alnum(text[end + 1]) && significant >= 4) {
                    ++end;
                } else {
                    break;
                }
            }
            if (best_end != 0) {
                out.push_back({i, best_end, id()});
                i = best_end - 1;
            }
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_iban_detector() {
    return std::make_unique<IbanDetector>();
}

}  // namespace edgeguard::privacy
