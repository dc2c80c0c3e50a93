// The detectors skip text they cannot match: DetectorSet's feature gates, the 16-byte skips of
// byte_search.h, ContextWords' anchors and the digit-start readings of pattern_starts.h. A skip that jumps
// over something a detector would have matched loses personal data silently, so each is checked against
// what it replaces on large generated corpora (the byte loop, a naive word search, RE2's unanchored search,
// the detectors run ungated), and planted values are found at text and 16-byte block edges in every form
// the detectors accept.
#include <gtest/gtest.h>
#include <re2/re2.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/pattern_starts.h"
#include "filters/detectors/re2_scan.h"
#include "filters/detectors/registry.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

// Random text from `tokens`, `count` of them.
std::string soup(std::mt19937& rng, const std::vector<std::string>& tokens, size_t count) {
    std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1);
    std::string s;
    for (size_t i = 0; i < count; ++i) s += tokens[pick(rng)];
    return s;
}

TEST(ByteSearch, EveryFinderReturnsWhatTheByteLoopReturns) {
    std::mt19937 rng(20261207);
    // Bytes the finders look for, their neighbours in the byte order, and non-ASCII bytes.
    const std::string alphabet = std::string("0189/:%$psrgAx_-?&#J ") + "\x7f\x80\xd0\xff" + "a";
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1), length(0, 70);
    const ByteSetFinder secret_firsts("psrgAx"), marks("?&#"), eight("0123456_");
    for (int round = 0; round < 4000; ++round) {
        std::string text(length(rng), ' ');
        for (char& c : text) c = alphabet[pick(rng)];
        for (size_t from = 0; from <= text.size(); ++from) {
            size_t digit = from;
            while (digit < text.size() && !(text[digit] >= '0' && text[digit] <= '9')) ++digit;
            ASSERT_EQ(find_ascii_digit(text, from), digit) << text << " from " << from;
            for (const ByteSetFinder* finder : {&secret_firsts, &marks, &eight}) {
                const std::string_view set = finder == &secret_firsts ? "psrgAx"
                                             : finder == &marks       ? "?&#"
                                                                      : "0123456_";
                size_t hit = from;
                while (hit < text.size() && set.find(text[hit]) == std::string_view::npos) ++hit;
                ASSERT_EQ(finder->next(text, from), hit) << text << " from " << from << " set " << set;
            }
            size_t stop = from;
            while (stop < text.size() && static_cast<unsigned char>(text[stop]) < 0x80 && text[stop] != '%')
                ++stop;
            ASSERT_EQ(find_non_ascii_or(text, from, '%'), stop) << text << " from " << from;
        }
    }
    EXPECT_FALSE(ByteSetFinder("123456789").fits());
    EXPECT_FALSE(ByteSetFinder("").fits());
}

// What ContextWords promises, the slow way: any word at any position, ASCII case-insensitively.
bool naive_found_in(const std::vector<std::string_view>& words, bool whole_words, std::string_view text) {
    for (size_t i = 0; i < text.size(); ++i) {
        for (std::string_view w : words) {
            if (w.size() > text.size() - i) continue;
            bool same = true;
            for (size_t k = 0; k < w.size() && same; ++k)
                same = ascii_lower(text[i + k]) == ascii_lower(w[k]);
            if (!same) continue;
            if (whole_words && ((i > 0 && is_ascii_alnum(text[i - 1])) ||
                                (i + w.size() < text.size() && is_ascii_alnum(text[i + w.size()]))))
                continue;
            return true;
        }
    }
    return false;
}

TEST(ContextWordsAnchors, FindWhatANaiveSearchFinds) {
    // The detectors' own lists (anchored and first-pair paths both) and a list of one-byte words.
    const std::vector<std::vector<std::string_view>> lists = {
        {"ович", "евич", "ьич", "овна", "евна", "ична", "ovich", "evich", "ovna", "evna", "ichna"},
        {"birth", "рожд", "Рожд", "РОЖД", "родил", "Родил", "д.р.", "Д.р.", "д/р"},
        {"dob", "born", "bday"},
        {"passport", "паспорт", "Паспорт", "ПАСПОРТ", "серия", "Серия", "СЕРИЯ", "серии"},
        {"ул.",  "Ул.",    "улиц",   "Улиц",  "УЛ.",    "пр-т",   "просп", "Просп", "пер.",
         "Пер.", "переул", "Переул", "шоссе", "Шоссе",  "ш.",     "б-р",   "бульв", "Бульв",
         "наб",  "Наб",    "пл.",    "Пл.",   "площад", "Площад", "мкр",   "Мкр",   "микрорайон"},
        {"д.", "Д.", "дом", "Дом"},
        {"x", "Q9"},
    };
    std::vector<std::string> tokens = {
        " ",    "a",     "v",     "V",    "c",        "C",       "o",   "i",   "e",   "1",   ".",     "/",
        "-",    "д",     "р",     "о",    "в",        "и",       "ч",   "ь",   "н",   "а",   "е",     "Д",
        "Р",    "с",     "п",     "\xd0", "\xb2",     "x",       "q",   "9",   "ov",  "ich", "OVICH", "Evna",
        "BoRn", "bday1", "adobe", "dob",  "Иванович", "паспорт", "ул.", "дом", "д.р."};
    std::mt19937 rng(7);
    std::uniform_int_distribution<size_t> count(0, 24);
    EXPECT_FALSE(ContextWords({}, false).found_in("anything"));  // no words: nothing found
    // ContextWords takes an initializer list, so each list is built where it is written.
    const auto check = [&](const ContextWords& cw, const std::vector<std::string_view>& words, bool whole) {
        for (int round = 0; round < 20000; ++round) {
            const std::string text = soup(rng, tokens, count(rng));
            ASSERT_EQ(cw.found_in(text), naive_found_in(words, whole, text)) << "[" << text << "]";
        }
    };
    check(ContextWords(
              {"ович", "евич", "ьич", "овна", "евна", "ична", "ovich", "evich", "ovna", "evna", "ichna"},
              false),
          lists[0], false);
    check(ContextWords({"birth", "рожд", "Рожд", "РОЖД", "родил", "Родил", "д.р.", "Д.р.", "д/р"}, false),
          lists[1], false);
    check(ContextWords({"dob", "born", "bday"}, true), lists[2], true);
    check(ContextWords({"passport", "паспорт", "Паспорт", "ПАСПОРТ", "серия", "Серия", "СЕРИЯ", "серии"},
                       false),
          lists[3], false);
    check(ContextWords(
              {"ул.",  "Ул.",    "улиц",   "Улиц",  "УЛ.",    "пр-т",   "просп", "Просп", "пер.",
               "Пер.", "переул", "Переул", "шоссе", "Шоссе",  "ш.",     "б-р",   "бульв", "Бульв",
               "наб",  "Наб",    "пл.",    "Пл.",   "площад", "Площад", "мкр",   "Мкр",   "микрорайон"},
              false),
          lists[4], false);
    check(ContextWords({"д.", "Д.", "дом", "Дом"}, false), lists[5], false);
    check(ContextWords({"x", "Q9"}, false), lists[6], false);
    check(ContextWords({"x", "Q9"}, true), lists[6], true);
}

TEST(PatternStarts, AnchoredTriesAgreeWithRe2sUnanchoredSearch) {
    const std::vector<std::string> tokens = {
        "1", "2", "12", "31", "2024", "1985", "123456", "4510", "45", " ", "\t", ".", "/", "-", ":", "x", "a",
        "n", "N", "no", "NO.", "nr", "№", "номер", "Номер", "марта", "Январь", "мая", "Mar", "MAR", "mAy",
        "sep", "ſep", "Dec", "dex", "born ", "\xd0", "ja", "janu",
        // Date and passport fragments, so that matches are common.
        "12.03.", "1.2.", "31/12/", "1985-03-", "2024-1-", "5 марта ", "05 Sep ", "7 ſeptember ", " 1990",
        "45 10 ", "4510 № ", "45 10\tномер ", "123456"};
    std::mt19937 rng(12);
    std::uniform_int_distribution<size_t> count(1, 12);
    const RE2 date(kDatePattern, detector_re2_options());
    const RE2 passport(kRuPassportPattern, detector_re2_options());
    ASSERT_TRUE(date.ok());
    ASSERT_TRUE(passport.ok());
    int date_hits = 0, passport_hits = 0;
    for (int round = 0; round < 60000; ++round) {
        const std::string text = soup(rng, tokens, count(rng));
        const re2::StringPiece input(text.data(), text.size());
        for (const auto& [re, may_start, hits] :
             {std::tuple{&date, &may_start_date, &date_hits},
              std::tuple{&passport, &may_start_ru_passport, &passport_hits}}) {
            const bool anywhere = re->Match(input, 0, text.size(), RE2::UNANCHORED, nullptr, 0);
            ASSERT_EQ(contains_match_at_digit(*re, text, nullptr, *may_start), anywhere)
                << "[" << text << "] " << re->pattern();
            *hits += anywhere;
            // Stronger: every position where a match starts is admitted.
            for (size_t p = 0; p < text.size(); ++p) {
                if (re->Match(input, p, text.size(), RE2::ANCHOR_START, nullptr, 0)) {
                    ASSERT_TRUE((*may_start)(text, p)) << "[" << text << "] at " << p << " " << re->pattern();
                }
            }
        }
    }
    EXPECT_GT(date_hits, 1000);  // the corpus does hold dates and passport numbers
    EXPECT_GT(passport_hits, 1000);
}

// A built-in detector with its gate hidden: DetectorSet then runs it on every text.
class Ungated final : public Detector {
  public:
    explicit Ungated(std::unique_ptr<Detector> inner) : inner_(std::move(inner)) {}
    std::string_view id() const override { return inner_->id(); }
    void find(std::string_view text, const DetectorContext& ctx,
              std::vector<DetectorMatch>& out) const override {
        inner_->find(text, ctx, out);
    }

  private:
    std::unique_ptr<Detector> inner_;
};

DetectorSet ungated_builtins() {
    std::vector<std::unique_ptr<Detector>> all;
    std::string error;
    for (std::string_view id : builtin_detector_ids())
        all.push_back(std::make_unique<Ungated>(make_builtin_detector(id, &error)));
    return DetectorSet(std::move(all));
}

std::string describe(std::string_view text, const std::vector<DetectorMatch>& matches) {
    std::string s;
    for (const DetectorMatch& m : matches)
        s += std::string(m.detector) + "[" + std::string(text.substr(m.begin, m.end - m.begin)) + "] ";
    return s.empty() ? "no match" : s;
}

bool same_matches(const std::vector<DetectorMatch>& a, const std::vector<DetectorMatch>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (a[i].begin != b[i].begin || a[i].end != b[i].end || a[i].detector != b[i].detector) return false;
    return true;
}

// Values every built-in reports, in the forms the detectors accept (separators, Unicode digits and spaces,
// zero-width characters, percent escapes), with the id that must report each.
struct Planted {
    std::string text;
    std::string_view detector;
};
const std::vector<Planted>& planted_values() {
    static const std::vector<Planted> values = {
        {"ivan.petrov@example.ru", "email"},
        {"ivan\u200B.petrov@example.ru", "email"},
        {"ivan%40example.ru", "email"},
        {"иван@пример.рф", "email"},
        {"+7 916 123-45-67", "phone"},
        {"8 (916) 123-45-67", "phone"},
        {"＋７ ９１６ １２３ ４５ ６７", "phone"},
        {"+7\u00A0916\u00A0123\u00A045\u00A067", "phone"},
        {"8.916.123.45.67", "phone"},
        {"+49 30 901820", "phone"},
        {"4111 1111 1111 1111", "card"},
        {"4111-1111-1111-1111", "card"},
        {"4111111111111111", "card"},
        {"DE89 3704 0044 0532 0130 00", "iban"},
        {"GB82WEST12345698765432", "iban"},
        {"500100732259", "inn"},
        {"112-233-445 95", "snils"},
        {"паспорт 45 10 123456", "ru_passport"},
        {"passport 4510 № 123456", "ru_passport"},
        {"born 12.03.1985", "dob"},
        {"дата рождения 5 марта 1990", "dob"},
        {"DOB: 1985-03-12", "dob"},
        {"born 12/03/1985", "dob"},
        {"д.р. 12-03.1985", "dob"},
        {"born 5 Mar 1990", "dob"},
        {"Иванов Иван Иванович", "name"},
        {"Ivanov Ivan Ivanovich", "name"},
        {"ул. Ленина, д. 7, кв. 12", "address"},
        {"81.23.45.67", "ip"},
        {"2a00:1450:4001:81b::200e", "ip"},
        {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl", "jwt"},
        {"phx_abcdefghijklmnopqrstuvwxyz0123", "secret"},
        {"sk_live_abcdefghijklmnop1234", "secret"},
        {"github_pat_11ABCDEFG0123456789abcdefghijkl", "secret"},
        {"AKIAIOSFODNN7EXAMPLE", "secret"},
        {"xoxb-1234567890-abcdefghij", "secret"},
        {"1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "crypto"},
        {"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "crypto"},
        {"https://app.example.com/reset?token=abc123def456", "url_secret"},
    };
    return values;
}

// Prose of the kind LLM prompts and log bodies carry: digits, dates without context, '%', '?', '-' and all.
std::string prose(size_t bytes, size_t salt) {
    static constexpr const char* kSentences[] = {
        "The dashboard shows weekly active users broken down by plan and country. ",
        "After the last deploy the checkout page takes 2.4 seconds to load on mobile. ",
        "Could you explain why the retention curve drops after day 7 for the March cohort? ",
        "Our export job runs every night at 02:00 UTC and writes about 1.2 GB of parquet files. ",
        "The feature flag new-onboarding is rolled out to 25% of users in the EU region. ",
        "Order 2024-000123 was shipped yesterday and should arrive within two business days. ",
        "Версия 3.2 вышла 12 марта, отчёт за квартал готов. ",
    };
    std::string out;
    for (size_t i = salt; out.size() < bytes; ++i) out += kSentences[(i * 5) % std::size(kSentences)];
    out.resize(bytes);
    return out;
}

TEST(DetectorSetGates, GatedScanEqualsUngatedScanOnAGeneratedCorpus) {
    const DetectorSet gated = DetectorSet::builtin();
    const DetectorSet ungated = ungated_builtins();
    std::vector<std::string> tokens = {
        " ",        "  ",     "-",        ".",     ",",     ":",        "/",     "?",        "&",
        "=",        "#",      "@",        "+",     "_",     "%",        "(",     ")",        "\n",
        "\u00A0",   "\u200B", "５",       "a",     "Z",     "x",        "tel",   "card",     "1",
        "12",       "2024",   "7",        "0",     "00",    "version ", "born ", "паспорт ", "д. 7",
        "ул. Мира", "Иван ",  "Петрович", "code=", "token", "%40",      "%2"};
    for (const Planted& p : planted_values()) tokens.push_back(p.text);
    std::mt19937 rng(42);
    std::uniform_int_distribution<size_t> count(1, 14), keys(0, 5);
    const std::string_view key_choices[] = {"",           "text",     "card_number",
                                            "birth_date", "passport", "app_version"};
    std::vector<DetectorMatch> a, b;
    size_t with_matches = 0;
    for (int round = 0; round < 20000; ++round) {
        std::string text = soup(rng, tokens, count(rng));
        if (round % 50 == 0) text = prose(600 + round % 977, round) + text + prose(300, round + 1);
        const DetectorContext ctx{key_choices[keys(rng)]};
        a.clear();
        b.clear();
        gated.scan(text, ctx, a);
        ungated.scan(text, ctx, b);
        ASSERT_TRUE(same_matches(a, b))
            << "[" << text << "] key " << ctx.key << "\n gated:   " << describe(text, a)
            << "\n ungated: " << describe(text, b);
        with_matches += !a.empty();
    }
    EXPECT_GT(with_matches, 10000u);
}

TEST(DetectorSetGates, PlantedValuesAreFoundAtTextAndBlockEdges) {
    const DetectorSet gated = DetectorSet::builtin();
    const DetectorSet ungated = ungated_builtins();
    const std::string filler = prose(4096, 3);
    std::vector<DetectorMatch> a, b;
    for (const Planted& p : planted_values()) {
        // Alone, at the very start and end of long prose, and at every offset around two 16-byte block
        // boundaries inside it (the skips read 16 bytes at a time).
        std::vector<std::string> texts = {p.text, p.text + " " + filler, filler + " " + p.text};
        for (size_t offset = 1000; offset < 1040; ++offset) {
            texts.push_back(filler.substr(0, offset) + " " + p.text + " " + filler.substr(offset));
        }
        for (const std::string& text : texts) {
            a.clear();
            b.clear();
            gated.scan(text, {}, a);
            ungated.scan(text, {}, b);
            const size_t at = text.find(p.text);
            bool found = false;
            for (const DetectorMatch& m : a)
                found = found || (m.detector == p.detector && m.begin < at + p.text.size() && m.end > at);
            ASSERT_TRUE(found) << p.detector << " not found in [" << p.text << "] at " << at << ": "
                               << describe(text, a);
            ASSERT_TRUE(same_matches(a, b))
                << "[" << p.text << "] at " << at << "\n gated:   " << describe(text, a)
                << "\n ungated: " << describe(text, b);
        }
    }
}

// A date with no blank in it is found only through its key: the dob gate then rests on the count of '.',
// '-' and '/' alone, so every separator and every mix of them is checked here, glued to nothing.
TEST(DetectorSetGates, DatesUnderABirthKeyAreFoundWithEverySeparator) {
    const DetectorSet gated = DetectorSet::builtin();
    const DetectorSet ungated = ungated_builtins();
    const DetectorContext ctx{"birth_date"};
    std::vector<DetectorMatch> a, b;
    for (std::string_view first : {".", "-", "/"}) {
        for (std::string_view second : {".", "-", "/"}) {
            for (const std::string& text : {"12" + std::string(first) + "03" + std::string(second) + "1985",
                                            "1" + std::string(first) + "3" + std::string(second) + "1985"}) {
                a.clear();
                b.clear();
                gated.scan(text, ctx, a);
                ungated.scan(text, ctx, b);
                ASSERT_TRUE(same_matches(a, b)) << "[" << text << "]\n gated:   " << describe(text, a)
                                                << "\n ungated: " << describe(text, b);
                ASSERT_EQ(a.size(), 1u) << "[" << text << "]: " << describe(text, a);
                EXPECT_EQ(a[0].detector, "dob") << text;
            }
        }
    }
    for (std::string_view text : {"1985-03-12", "1985-3-1"}) {
        a.clear();
        gated.scan(text, ctx, a);
        ASSERT_EQ(a.size(), 1u) << "[" << text << "]: " << describe(text, a);
        EXPECT_EQ(a[0].detector, "dob") << text;
    }
}

}  // namespace
}  // namespace edgeguard::privacy
