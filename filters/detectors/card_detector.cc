// Payment card numbers: 12..19 digits, optionally in groups (one separator kind, or dots and mixed
// separators in a card's grouping), that pass Luhn AND fall in an issuer range that issues that length (Mir
// 2200-2204 and Mastercard 2221-2720 included; prefix 1 only as a 15-digit UATP, which keeps epoch-ms/us
// timestamps out). 13 digits need card context; product-code keys (barcode, ean, gtin, upc, sku) never
// hold a card of 14 digits or fewer.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/text_scan.h"
#include "filters/detectors/validators.h"

namespace edgeguard::privacy {
namespace {

// Lower-case ASCII words of a key: split at anything but letters and digits and at camelCase humps.
template <typename Fn>
void for_each_key_word(std::string_view key, Fn&& fn) {
    char word[32];
    size_t n = 0;
    auto flush = [&] {
        if (n > 0 && n <= sizeof word) fn(std::string_view(word, n));
        n = 0;
    };
    for (size_t i = 0; i < key.size(); ++i) {
        const char c = key[i];
        if (!is_ascii_alnum(c)) {
            flush();
            continue;
        }
        if (c >= 'A' && c <= 'Z' && i > 0 && key[i - 1] >= 'a' && key[i - 1] <= 'z') flush();
        if (n < sizeof word) word[n] = ascii_lower(c);
        ++n;
    }
    flush();
}

// A key that names a card (`card`, `card_number`, `ccNumber`, `pan`, `credit`, `visa`).
bool card_key(std::string_view key) {
    bool yes = false;
    for_each_key_word(key, [&](std::string_view w) {
        yes = yes || w == "card" || w == "cc" || w == "pan" || w == "credit" || w == "visa" || w == "cardnumber" ||
              w == "ccnumber" || w == "creditcard";
    });
    return yes;
}

// A key that names a product code: EAN-8/13, UPC-A, GTIN-14 and ISBN numbers pass Luhn about one time in
// ten, and Maestro/Visa lengths overlap theirs.
bool barcode_key(std::string_view key) {
    bool yes = false;
    for_each_key_word(key, [&](std::string_view w) {
        yes = yes || w == "barcode" || w == "ean" || w == "ean13" || w == "ean8" || w == "gtin" || w == "gtin13" ||
              w == "gtin14" || w == "upc" || w == "sku" || w == "isbn" || w == "article" || w == "artikul";
    });
    return yes;
}

// Groupings a card is printed in: 4-4-4-4, 4-4-4-4-3, 4-6-5 (Amex), 4-6-4 (Diners); 13 digits 4-4-4-1 and
// 4-3-3-3.
bool card_grouping(const NumberRun& run, size_t first, size_t last) {
    return group_lengths_are(run, first, last, {4, 4, 4, 4}) || group_lengths_are(run, first, last, {4, 4, 4, 4, 3}) ||
           group_lengths_are(run, first, last, {4, 6, 5}) || group_lengths_are(run, first, last, {4, 6, 4}) ||
           group_lengths_are(run, first, last, {4, 4, 4, 1}) || group_lengths_are(run, first, last, {4, 3, 3, 3});
}

bool card_run_ok(std::string_view text, const NumberRun& run, size_t first, size_t last, std::string_view key) {
    if (run.plus && first == 0) return false;
    std::string_view d = run.digits_of(first, last);
    if (d.size() < 12 || d.size() > 19) return false;
    // One byte between groups. One separator kind (space or dash) in any grouping; dots, or a mix of
    // kinds ("4111.1111.1111.1111", "4111 1111-1111 1111"), only in a card's grouping.
    char sep = 0;
    bool uniform = true;
    for (size_t g = first; g < last; ++g) {
        const std::string_view gap = gap_text(text, run, g);
        if (gap.size() != 1) return false;
        const char c = gap[0];
        if (c != ' ' && c != '-' && c != '.') return false;
        if (c == '.' || (sep != 0 && c != sep)) uniform = false;
        sep = c;
    }
    if (!uniform && !card_grouping(run, first, last)) return false;
    if (d.size() <= 14 && barcode_key(key)) return false;
    // Visa stopped issuing 13-digit numbers long ago, and EAN-13 product codes have 13 digits: a 13-digit
    // number is a card only when printed in a card's grouping or under a card-like key.
    if (d.size() == 13 && !(last > first && card_grouping(run, first, last)) && !card_key(key)) return false;
    return card_number_valid(d);
}

class CardDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "card"; }
    DetectorGate gate() const override { return DetectorGate::when(kGateNumberRun12); }
    void find(std::string_view text, const DetectorContext& ctx, std::vector<DetectorMatch>& out) const override {
        constexpr uint32_t kMinDigits = 12;
        NumberRunScanner scanner(text, kSepSpace | kSepDash | kSepDot, index_for(text, ctx), kMinDigits);
        NumberRun run;
        while (scanner.next(run)) {
            if (run.digit_count < kMinDigits) continue;
            for_each_accepted_subrun(
                run, [&](const NumberRun& r, size_t a, size_t b) { return card_run_ok(text, r, a, b, ctx.key); },
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
