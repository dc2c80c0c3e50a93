// Phone numbers: Russian (+7 / 8 / 7 with a geographic or mobile code, 10-digit 9xx mobiles), Finnish
// domestic mobiles in groups, and any international number written with '+' or "00" (E.164: country code
// not starting with 0, 8..15 digits).
// Dotted groups are phones only in Russian phone shapes (phone_run_ok); runs glued to identifiers (UUID
// fragments, timestamps) never reach here.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

// First digit of a Russian national number: 3/4/8 geographic and toll-free, 9 mobile.
bool ru_national_lead(char c) {
    return c == '3' || c == '4' || c == '8' || c == '9';
}

bool phone_digits_ok(const NumberRun& run, size_t first, size_t last) {
    std::string_view d = run.digits_of(first, last);
    if (d.size() < 8) return false;
    const size_t groups = last - first + 1;
    const bool plus = run.plus && first == 0;
    if (plus) {
        if (d[0] == '7') return d.size() == 11 && ru_national_lead(d[1]);
        return d.size() >= 8 && d.size() <= 15 && d[0] != '0';
    }
    // "00" dial-out prefix written as its own group with the country code ("0049 30 ...", "00358 40 ...");
    // a bare leading "001-" is a SNILS or an id, not a dial-out.
    const size_t first_len = run.groups[first].digit_end - run.groups[first].digit_begin;
    if (d.size() >= 11 && d.size() <= 17 && d[0] == '0' && d[1] == '0' && d[2] != '0' && first_len >= 4 &&
        first_len <= 5 && groups >= 2)
        return true;
    if (d.size() == 11 && (d[0] == '7' || d[0] == '8') && ru_national_lead(d[1])) return true;
    if (d.size() == 10 && d[0] == '9') return true;
    // 10-digit geographic number without trunk prefix only when written in phone groups ("495 123-45-67").
    if (d.size() == 10 && ru_national_lead(d[0]) && groups >= 3 &&
        run.groups[first].digit_end - run.groups[first].digit_begin == 3)
        return true;
    // Finnish domestic mobile ("040 123 4567", "050-123 4567"): trunk 0 + 4x/50, written in groups (a bare
    // ten-digit string starting with 0 is more often an id than a phone).
    if ((d.size() == 9 || d.size() == 10) && d[0] == '0' && (d[1] == '4' || (d[1] == '5' && d[2] == '0')) &&
        groups >= 2 && first_len == 3)
        return true;
    return false;
}

// Dotted groups are read only in the shapes a Russian number is written in: 8.9XX.XXX.XX.XX, +7.9XX.XXX.XX.XX
// and 9XX.XXX.XX.XX (one dot between groups). Versions, IPs (no octet reaches 300), dates and decimals have
// other shapes.
bool phone_run_ok(std::string_view text, const NumberRun& run, size_t first, size_t last) {
    if (!has_dot_gap(text, run, first, last)) return phone_digits_ok(run, first, last);
    for (size_t g = first; g < last; ++g)
        if (gap_text(text, run, g) != ".") return false;
    const std::string_view d = run.digits_of(first, last);
    const bool plus = run.plus && first == 0;
    if (group_lengths_are(run, first, last, {1, 3, 3, 2, 2}))
        return (d[0] == '7' || (!plus && d[0] == '8')) && ru_national_lead(d[1]);
    return !plus && group_lengths_are(run, first, last, {3, 3, 2, 2}) && ru_national_lead(d[0]);
}

class PhoneDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "phone"; }
    DetectorGate gate() const override { return DetectorGate::when(kGateNumberRun8); }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        constexpr uint32_t kMinDigits = 8;
        NumberRunScanner scanner(text, kSepSpace | kSepDash | kSepParen | kSepDot, index_for(text, ctx), kMinDigits);
        NumberRun run;
        while (scanner.next(run)) {
            if (run.digit_count < kMinDigits) continue;
            const auto accept = [&](const NumberRun& r, size_t a, size_t b) { return phone_run_ok(text, r, a, b); };
            for_each_accepted_subrun(run, accept, [&](size_t b, size_t e) {
                out.push_back({b, e, id()});
            });
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_phone_detector() {
    return std::make_unique<PhoneDetector>();
}

}  // namespace edgeguard::privacy
