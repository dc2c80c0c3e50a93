// Detectors against the shared privacy cases and the project's own positives, look-alikes and evasions.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "filters/detectors/normalize.h"
#include "filters/detectors/registry.h"
#include "filters/detectors/validators.h"

// GCC pairs the malloc inside the replaced operator new with std::free in operator delete across inlining
// and warns; the pairing is correct by construction here.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

// Counts heap allocations so the "no allocation when nothing matches" promise of DetectorSet::scan can be
// checked. Only this test binary replaces operator new.
static std::atomic<size_t> g_allocations{0};
void* operator new(size_t size) {
    g_allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept {
    std::free(p);
}
void operator delete(void* p, size_t) noexcept {
    std::free(p);
}

namespace edgeguard::privacy {
namespace {

const DetectorSet& default_set() {
    static const DetectorSet set = DetectorSet::builtin();
    return set;
}

std::vector<DetectorMatch> scan(std::string_view text, std::string_view key = {}) {
    std::vector<DetectorMatch> out;
    default_set().scan(text, DetectorContext{key}, out);
    return out;
}

std::string describe(std::string_view text, const std::vector<DetectorMatch>& matches) {
    std::string s;
    for (const DetectorMatch& m : matches) {
        s += std::string(m.detector) + "[" + std::string(text.substr(m.begin, m.end - m.begin)) + "] ";
    }
    return s.empty() ? "no match" : s;
}

bool has_detector(const std::vector<DetectorMatch>& matches, std::string_view id) {
    for (const DetectorMatch& m : matches)
        if (m.detector == id) return true;
    return false;
}

// privacy-cases.jsonl "kind" -> the built-in detector that must report it (longest prefix wins).
std::string_view detector_for_kind(std::string_view kind) {
    static const std::pair<std::string_view, std::string_view> kMap[] = {
        {"email", "email"},
        {"ru_phone", "phone"},
        {"fi_phone", "phone"},
        {"de_phone", "phone"},
        {"card_pan", "card"},
        {"iban", "iban"},
        {"ru_inn_individual", "inn"},
        {"ru_snils", "snils"},
        {"ru_passport", "ru_passport"},
        {"ru_person_name", "name"},
        {"ru_address", "address"},
        {"dob", "dob"},
        {"ipv4", "ip"},
        {"ipv6", "ip"},
        {"jwt", "jwt"},
        {"bearer_token", "jwt"},
        {"aws_access_key_id", "secret"},
        {"posthog_personal_key", "secret"},
        {"stripe_secret_key", "secret"},
        {"github_pat", "secret"},
        {"secret_in_url", "url_secret"},
        {"crypto_btc", "crypto"},
    };
    std::string_view best, best_prefix;
    for (const auto& [prefix, id] : kMap) {
        if (kind.substr(0, prefix.size()) == prefix && prefix.size() > best_prefix.size()) {
            best_prefix = prefix;
            best = id;
        }
    }
    return best;
}

TEST(DetectorPrivacyCases, EveryCaseComesOutRightThroughTheDefaultSet) {
    const std::string path = std::string(EDGEGUARD_SHARED_DIR) + "/privacy-cases.jsonl";
    std::ifstream file(path);
    if (!file) GTEST_SKIP() << "shared cases absent: " << path;
    simdjson::dom::parser parser;
    std::string line;
    int checked = 0, personal = 0;
    while (std::getline(file, line)) {
        if (line.empty()) continue;
        simdjson::dom::element doc;
        ASSERT_EQ(parser.parse(line).get(doc), simdjson::SUCCESS) << line;
        std::string_view value, kind;
        bool pii = false;
        ASSERT_EQ(doc["value"].get(value), simdjson::SUCCESS);
        ASSERT_EQ(doc["kind"].get(kind), simdjson::SUCCESS);
        ASSERT_EQ(doc["pii"].get(pii), simdjson::SUCCESS);
        auto matches = scan(value);
        SCOPED_TRACE(std::string(kind) + ": " + std::string(value));
        if (pii) {
            std::string_view expected = detector_for_kind(kind);
            ASSERT_FALSE(expected.empty()) << "no detector mapped for kind " << kind;
            EXPECT_TRUE(has_detector(matches, expected))
                << "want " << expected << ", got " << describe(value, matches);
            ++personal;
        } else {
            EXPECT_TRUE(matches.empty()) << describe(value, matches);
        }
        for (const DetectorMatch& m : matches) {
            EXPECT_LT(m.begin, m.end);
            EXPECT_LE(m.end, value.size());
        }
        ++checked;
    }
    EXPECT_GE(checked, 92);
    EXPECT_GE(personal, 55);
}

// Project fixtures: value, detector expected to report it (empty = nothing may match), the exact matched
// substring (empty = any span).
struct Fixture {
    const char* value;
    const char* detector;
    const char* span;
};

void check_fixtures(const std::vector<Fixture>& fixtures, std::string_view key = {}) {
    for (const Fixture& f : fixtures) {
        std::string_view value = f.value;
        auto matches = scan(value, key);
        SCOPED_TRACE(std::string(value));
        if (*f.detector == '\0') {
            EXPECT_TRUE(matches.empty()) << describe(value, matches);
            continue;
        }
        bool found = false;
        for (const DetectorMatch& m : matches) {
            if (m.detector != f.detector) continue;
            if (*f.span == '\0' || value.substr(m.begin, m.end - m.begin) == f.span) found = true;
        }
        EXPECT_TRUE(found) << "want " << f.detector << "[" << f.span << "], got " << describe(value, matches);
    }
}

TEST(DetectorEmail, UnicodeIdnPunycodeAndLookAlikes) {
    check_fixtures({
        {"write to maria.ivanova@yandex.ru please", "email", "maria.ivanova@yandex.ru"},
        {"Ёлка@почта.рф", "email", "Ёлка@почта.рф"},
        {"test.user@xn--80ak6aa92e.com", "email", "test.user@xn--80ak6aa92e.com"},
        {"\"o'brien@example.ie\"", "email", "o'brien@example.ie"},
        {"icon@3x.webp", "", ""},
        {"npm i @posthog/react@1.2.3", "", ""},
        {"git@github.com:PostHog/posthog.git", "", ""},
        {"@mention and a lone @", "", ""},
        {"user@localhost", "", ""},
    });
}

TEST(DetectorPhone, RuFormatsE164AndLookAlikes) {
    check_fixtures({
        {"+7-916-123-45-67", "phone", "+7-916-123-45-67"},
        {"тел: 8(495)123-45-67", "phone", "8(495)123-45-67"},
        {"7 916 123 45 67", "phone", "7 916 123 45 67"},
        {"(916) 123-45-67", "phone", "916) 123-45-67"},
        {"+44 20 7946 0958", "phone", "+44 20 7946 0958"},
        {"0049 30 12345678", "phone", "0049 30 12345678"},
        {"001-437-544 01", "", ""},  // SNILS-shaped, checksum fails: not a "00" dial-out
        {"+33 1 23 45 67 89", "phone", "+33 1 23 45 67 89"},
        {"soita 040 123 4567", "phone", "040 123 4567"},
        {"050-123 4567", "phone", "050-123 4567"},
        {"0401234567", "", ""},  // bare, ungrouped: an id as often as a phone
        {"build 2024-06-10 14:23:45", "", ""},
        {"1718031234", "", ""},               // epoch seconds
        {"v1.2.3.4567890", "", ""},           // version string
        {"c0a8-0101-9161234567ab", "", ""},   // hex id fragment
        {"12.03.2024 - 19.03.2024", "", ""},  // dotted date range
        {"price 1 299 000 RUB", "", ""},
        {"order 8916123456701", "", ""},  // 13 digits: neither phone nor card
    });
}

TEST(DetectorCard, LuhnPlusIinTable) {
    check_fixtures({
        {"card 4111111111111111 exp 12/29", "card", "4111111111111111"},
        {"5105-1051-0510-5100", "card", "5105-1051-0510-5100"},
        {"2720 9999 9999 9996", "card", "2720 9999 9999 9996"},
        {"2204 0000 0000 0000", "card", "2204 0000 0000 0000"},
        {"6011111111111117", "card", "6011111111111117"},
        {"3530111333300000", "card", "3530111333300000"},
        {"1718031234566000", "",
         ""},  // epoch microseconds, Luhn-valid or not: prefix 1 is not a 16-digit card
        {"2205 0000 0000 0007", "", ""},  // just past Mir, before Mastercard 2-series
        {"4111 11111-111 1111", "", ""},  // mixed separators outside a card's grouping
        {"0000000000000000", "", ""},
        {"4111111111111111abc", "", ""},  // glued to an identifier
    });
    EXPECT_TRUE(card_number_valid("2200700123456781"));
    EXPECT_FALSE(card_number_valid("1234567812345670"));
    EXPECT_TRUE(luhn_valid("1234567812345670"));
}

TEST(DetectorIban, Mod97CountryLengthCaseAndSpaces) {
    check_fixtures({
        {"IBAN: NL91 ABNA 0417 1643 00", "iban", "NL91 ABNA 0417 1643 00"},
        {"nl91abna0417164300", "iban", "nl91abna0417164300"},
        {"NL91 ABNA 0417 1643 01", "", ""},
        {"NL91ABNA04171643", "", ""},  // wrong length for NL
        {"XX12 3456 7890 1234 56", "", ""},
    });
    EXPECT_TRUE(mod97_valid("3214282912345698765432161182"));
}

TEST(DetectorIp, PublicOnlyAndVersionContext) {
    check_fixtures({
        {"from 8.8.8.8", "ip", "8.8.8.8"},
        {"[2001:4860:4860::8888]:443", "ip", "2001:4860:4860::8888"},
        {"10.0.0.1 172.16.5.4 192.168.1.1 100.64.0.1 169.254.1.1 198.51.100.7 203.0.113.9", "", ""},
        {"fe80::1 fd00::1 ::1 2001:db8::1 b:: ff02::1", "", ""},
        {"release 81.23.45.67", "", ""},
        {"1.2.3.4.5", "", ""},
        {"01.02.03.04", "", ""},
        {"aa:bb:cc:dd:ee:ff", "", ""},
        {"12:30:45", "", ""},
    });
    check_fixtures({{"81.23.45.67", "", ""}}, "os_version");
    check_fixtures({{"81.23.45.67", "", ""}}, "v");
    check_fixtures({{"81.23.45.67", "ip", "81.23.45.67"}}, "$ip");
    check_fixtures({{"18.0.1.23", "", ""}}, "$app_version");
    check_fixtures({{"app 18.0.1.23", "ip", "18.0.1.23"}}, "$screen_name");  // without context it is an IP
}

TEST(DetectorJwtAndSecrets, StructureAndPrefixes) {
    check_fixtures({
        {"eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "jwt", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."},
        {"eyJmb28iOiJiYXIifQ.eyJzdWIiOiIxIn0.c2ln", "", ""},  // header without "alg"
        {"eyJhbGciOiJub25lIn0", "", ""},
        {"rk_live_abcdefghijklmnop1234", "secret", "rk_live_abcdefghijklmnop1234"},
        {"ASIAY34FZKBOKMUTVV7A", "secret", "ASIAY34FZKBOKMUTVV7A"},
        {"github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "secret", ""},
        {"xoxb-123456789012-abcdefABCDEF", "secret", ""},
        {"-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "secret", ""},
        {"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----", "", ""},
        {"phc_9a8B7c6D5e4F3g2H1i0JkLmNoPqRsTuVwXyZ12345", "", ""},
        {"sk_test_51HqLyjWDarjtT1zdp7dcXe2k", "", ""},
        {"ghp_short", "", ""},
        {"XAKIAIOSFODNN7EXAMPLE", "", ""},
    });
}

TEST(DetectorRuIds, InnSnilsPassport) {
    check_fixtures({
        {"ИНН физлица 500100732259.", "inn", "500100732259"},
        {"7707083893", "", ""},  // valid INN-10: a company
        {"500100732258", "", ""},
        {"987 654 321 83", "snils", "987 654 321 83"},
        {"98765432183", "snils", "98765432183"},
        {"001-001-998 00", "", ""},  // below the checksum range
        {"Passport: 4510 123456", "ru_passport", "4510 123456"},
        {"4510 123456", "", ""},  // no context: just digits
        {"серия 4510 № 123456", "ru_passport", "4510 № 123456"},
    });
    check_fixtures({{"4510 123456", "ru_passport", "4510 123456"}}, "passport_number");
}

TEST(DetectorNamesAddressesDob, ContextAndSuffixSignals) {
    check_fixtures({
        {"Клиент: Петров Пётр Петрович", "name", "Петров Пётр Петрович"},
        {"Мария Ивановна Сидорова", "name", "Мария Ивановна Сидорова"},
        {"Ivanov Ivan Ivanovich", "name", "Ivanov Ivan Ivanovich"},
        {"Экран Настройки Профиля", "", ""},
        {"Открыт Каталог Товаров", "", ""},
        {"ул. Ленина, д. 5, кв. 3", "address", "ул. Ленина, д. 5, кв. 3"},
        {"Санкт-Петербург", "", ""},
        {"улица", "", ""},
        {"born 1990-07-15", "dob", "1990-07-15"},
        {"дата рождения 5 марта 1990", "dob", "5 марта 1990"},
        {"2024-06-10", "", ""},
        {"created 12.03.1985", "", ""},
    });
    check_fixtures({{"12.03.1985", "dob", "12.03.1985"}}, "birth_date");
}

TEST(DetectorUrlSecretAndCrypto, QueryValuesAndChecksums) {
    check_fixtures({
        {"https://x.io/cb?code=abc123&state=xyz", "url_secret", "abc123"},
        {"https://x.io/#access_token=tok.en.value&expires_in=3600", "url_secret", "tok.en.value"},
        {"/reset?user=1&password=hunter2", "url_secret", "hunter2"},
        {"https://x.io/p?utm_source=a&utm_medium=b&ref=c", "", ""},
        {"https://x.io/?page=2", "", ""},
        {"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "crypto",
         "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"},
        {"bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdx", "", ""},
        {"3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "crypto", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"},
    });
}

TEST(DetectorCleanLookAlikes, PostHogStructuralValuesPass) {
    check_fixtures({
        {"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", "", ""},
        {"$screen", "", ""},
        {"ProductDetailScreen", "", ""},
        {"iOS 17.5.1", "", ""},
        {"1.0.0 (4521)", "", ""},
        {"https://app.example.com/products/12345?variant=blue", "", ""},
        {"ru-RU", "", ""},
        {"Europe/Moscow", "", ""},
        {"iPhone15,2", "", ""},
        {"9.99", "", ""},
        {"4590.00", "", ""},
        {"1718031234.566", "", ""},
        {"da39a3ee5e6b4b0d3255bfef95601890afd80709", "", ""},
        {"5d41402abc4b2a76b9719d911017c592", "", ""},
        {"experiment_variant_b", "", ""},
        {"ORD-2024-000123-XYZ", "", ""},
        {"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "", ""},
        {"2.31.0-beta.1+build.20240610", "", ""},
        {"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15", "", ""},
    });
}

TEST(DetectorNormalization, EvasionsAreUndoneAndSpansPointAtOriginalBytes) {
    // Zero-width space and soft hyphen inside an email: the span covers them in the original.
    const std::string zw = "mail: an\u00ADna\u200B@mail.ru";
    auto m = scan(zw);
    ASSERT_EQ(m.size(), 1u) << describe(zw, m);
    EXPECT_EQ(m[0].detector, "email");
    EXPECT_EQ(zw.substr(m[0].begin, m[0].end - m[0].begin), "an\u00ADna\u200B@mail.ru");

    // Fullwidth digits in a phone.
    const std::string fw = "звони \uFF18\uFF19\uFF11\uFF16\uFF11\uFF12\uFF13\uFF14\uFF15\uFF16\uFF17 ok";
    m = scan(fw);
    ASSERT_EQ(m.size(), 1u) << describe(fw, m);
    EXPECT_EQ(m[0].detector, "phone");
    EXPECT_EQ(fw.substr(m[0].begin, m[0].end - m[0].begin),
              "\uFF18\uFF19\uFF11\uFF16\uFF11\uFF12\uFF13\uFF14\uFF15\uFF16\uFF17");

    // NBSP and narrow NBSP as group separators of a card.
    const std::string nb = "4111\u00A01111\u202F1111\u00A01111";
    m = scan(nb);
    ASSERT_EQ(m.size(), 1u) << describe(nb, m);
    EXPECT_EQ(m[0].detector, "card");
    EXPECT_EQ(m[0].begin, 0u);
    EXPECT_EQ(m[0].end, nb.size());

    // Arabic-Indic digits (another Unicode Nd script).
    const std::string ar = "+٧ ٩١٦ ١٢٣ ٤٥ ٦٧";
    m = scan(ar);
    ASSERT_EQ(m.size(), 1u) << describe(ar, m);
    EXPECT_EQ(m[0].detector, "phone");
    EXPECT_EQ(m[0].end, ar.size());

    // Percent-encoded '@' in a URL: the span is the encoded value in the original text.
    const std::string url = "https://x.io/u/anna.s%40mail.ru/profile";
    m = scan(url);
    ASSERT_EQ(m.size(), 1u) << describe(url, m);
    EXPECT_EQ(m[0].detector, "email");
    EXPECT_EQ(url.substr(m[0].begin, m[0].end - m[0].begin), "anna.s%40mail.ru");

    // Percent-encoded zero-width space between local part and '@'.
    const std::string pz = "?q=ivan%E2%80%8B%40mail.ru";
    m = scan(pz);
    ASSERT_FALSE(m.empty());
    EXPECT_EQ(pz.substr(m[0].begin, m[0].end - m[0].begin), "ivan%E2%80%8B%40mail.ru");
}

TEST(DetectorNormalization, AsciiTakesTheFastPathAndMapsAreExact) {
    NormalizedText view;
    NormalizeOptions options;
    EXPECT_FALSE(normalize_for_matching("plain ascii 100% sure", options, view));
    options.percent_decode = true;
    EXPECT_FALSE(normalize_for_matching("100% sure", options, view));  // no %XX escape: nothing changes
    ASSERT_TRUE(normalize_for_matching("a%20b", options, view));
    EXPECT_EQ(view.view(), "a b");
    EXPECT_EQ(view.original_begin(1), 1u);
    EXPECT_EQ(view.original_end(2), 4u);

    NormalizeOptions unicode_only;
    const std::string text = "x\u200By\u00A0z\uFF10";
    ASSERT_TRUE(normalize_for_matching(text, unicode_only, view));
    EXPECT_EQ(view.view(), "xy z0");
    EXPECT_EQ(view.original_begin(1), 4u);  // 'y' after the 3-byte zero-width space
    EXPECT_EQ(view.original_begin(2), 5u);  // NBSP starts at 5 ...
    EXPECT_EQ(view.original_end(3), 7u);    // ... and ends at 7
    EXPECT_EQ(view.original_end(5), text.size());

    // Invalid UTF-8 survives unchanged byte for byte.
    const std::string bad = "\xff\xfe\xc3";
    EXPECT_FALSE(normalize_for_matching(bad, unicode_only, view));

    EXPECT_TRUE(looks_like_url("https://a.b/c"));
    EXPECT_TRUE(looks_like_url("/path?x=1"));
    EXPECT_TRUE(looks_like_url("a=1&b=2"));
    EXPECT_FALSE(looks_like_url("Save 20% = win"));
}

TEST(DetectorRegistry, BuiltinIdsCustomRegexAndErrors) {
    auto ids = builtin_detector_ids();
    EXPECT_GE(ids.size(), 12u);
    for (std::string_view id : ids) {
        std::string error;
        auto d = make_builtin_detector(id, &error);
        ASSERT_NE(d, nullptr) << id << ": " << error;
        EXPECT_EQ(d->id(), id);
    }
    std::string error;
    EXPECT_EQ(make_builtin_detector("no_such_detector", &error), nullptr);
    EXPECT_NE(error.find("no_such_detector"), std::string::npos);

    error.clear();
    EXPECT_EQ(make_regex_detector("bad", "(unclosed", "", &error), nullptr);
    EXPECT_FALSE(error.empty());
    error.clear();
    EXPECT_EQ(make_regex_detector("x", "\\d+", "crc64", &error), nullptr);
    EXPECT_NE(error.find("crc64"), std::string::npos);

    auto luhn = make_regex_detector("order_card", "\\b\\d{16}\\b", "luhn", &error);
    ASSERT_NE(luhn, nullptr) << error;
    std::vector<DetectorMatch> out;
    luhn->find("a 1234567812345670 b 1234567812345671", {}, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].begin, 2u);
    EXPECT_EQ(out[0].detector, "order_card");

    auto snils = make_regex_detector("snils_custom", R"(\d{3}-\d{3}-\d{3} \d{2})", "snils", &error);
    ASSERT_NE(snils, nullptr);
    out.clear();
    snils->find("112-233-445 95 / 112-233-445 96", {}, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].end, 14u);

    for (std::string_view v : regex_validator_names()) {
        EXPECT_NE(make_regex_detector("v", "x", v, &error), nullptr) << v;
    }

    // A custom detector inside a set runs on the normalized view and maps back.
    std::vector<std::unique_ptr<Detector>> list;
    list.push_back(make_regex_detector("ticket", "TCK-\\d{6}", "", &error));
    DetectorSet set(std::move(list));
    const std::string text = "see TCK-\uFF11\uFF12\uFF13\uFF14\uFF15\uFF16 now";
    out.clear();
    set.scan(text, {}, out);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].begin, 4u);
    EXPECT_EQ(out[0].end, text.size() - 4);
}

TEST(DetectorSetScan, OverlapsResolvedLongestThenListOrder) {
    // Phone and SNILS both validate; phone is listed first and wins the identical span.
    auto m = scan("79165863966");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].detector, "phone");
    // IPv4 inside an IPv4-mapped IPv6: one match, the longer span.
    m = scan("::ffff:81.23.45.67");
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(m[0].begin, 0u);
    // Several hits in one string come back sorted and disjoint, appended after existing entries.
    std::vector<DetectorMatch> out{{0, 1, "sentinel"}};
    const std::string text = "a@b.com, +7 916 123 45 67, 8.8.8.8";
    default_set().scan(text, {}, out);
    ASSERT_EQ(out.size(), 4u) << describe(text, {out.begin() + 1, out.end()});
    EXPECT_EQ(out[0].detector, "sentinel");
    for (size_t i = 2; i < out.size(); ++i) EXPECT_LE(out[i - 1].end, out[i].begin);
    EXPECT_TRUE(default_set().any(text, {}));
    EXPECT_FALSE(default_set().any("nothing to see", {}));
}

TEST(DetectorSetScan, ConcurrentScansAgreeWithSerialOnes) {
    const std::vector<std::string> texts = {
        "ivan.petrov@example.ru", "+7 (916) 123-45-67",
        "4111 1111 1111 1111",    "2a01:4f9:c010:1234::1",
        "ivan\u200B@mail.ru",     "clean $screen name",
        "Иванов Иван Иванович",   "3f2b8c1e-9a4d-4f6b-8c2e-1d5a7b9e0f12",
    };
    std::vector<std::string> expected;
    for (const auto& t : texts) expected.push_back(describe(t, scan(t)));
    std::vector<std::thread> threads;
    std::vector<int> mismatches(4, 0);
    for (int w = 0; w < 4; ++w) {
        threads.emplace_back([&, w] {
            for (int round = 0; round < 200; ++round) {
                for (size_t i = 0; i < texts.size(); ++i) {
                    if (describe(texts[i], scan(texts[i])) != expected[i]) ++mismatches[w];
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    for (int w = 0; w < 4; ++w) EXPECT_EQ(mismatches[w], 0);
}

// Seeded random strings built from the bytes detectors care about: every span stays inside the text,
// spans come back sorted and disjoint, and a second scan gives the same answer.
TEST(DetectorSetScan, RandomInputsGiveWellFormedSpans) {
    static const std::string kAlphabet[] = {
        "0",   "1",    "4",      "7",      "9",      " ", "-", "+",    "(",    ")",       ".", ":",
        "@",   "%",    "%4",     "%40",    "_",      "=", "?", "&",    "#",    "a",       "Z", "x",
        "eyJ", "phx_", "\u00A0", "\u200B", "\uFF17", "д", "Д", "ович", "\xff", "\xe2\x80"};
    std::mt19937 rng(12345);
    for (int round = 0; round < 3000; ++round) {
        std::string text;
        const int pieces = static_cast<int>(rng() % 60);
        for (int i = 0; i < pieces; ++i) text += kAlphabet[rng() % std::size(kAlphabet)];
        auto first = scan(text, round % 3 == 0 ? "version" : "");
        auto again = scan(text, round % 3 == 0 ? "version" : "");
        ASSERT_EQ(describe(text, first), describe(text, again));
        for (size_t i = 0; i < first.size(); ++i) {
            ASSERT_LT(first[i].begin, first[i].end);
            ASSERT_LE(first[i].end, text.size());
            if (i > 0) {
                ASSERT_LE(first[i - 1].end, first[i].begin);
            }
        }
    }
}

TEST(DetectorSetScan, CleanValuesScanWithoutHeapAllocation) {
    const std::vector<std::string> clean = {
        "01906f6e-7c5b-7a3e-9b2f-3d4c5e6f7a8b",
        "ProductDetailScreen",
        "2.31.0-beta.1",
        "2024-06-10T14:23:45.123Z",
        "1718031234566",
        "https://app.example.com/p/12345?variant=blue&utm_source=news",
        "ORD-2024-000123",
        "Корзина: 3 товара на сумму 4\u00A0590 \u20BD",
        "Нажата кнопка «Оформить заказ»",
        "100%25 done",
    };
    std::vector<DetectorMatch> out;
    out.reserve(16);
    for (const auto& v : clean) default_set().scan(v, {}, out);  // warm the per-thread scratch
    ASSERT_TRUE(out.empty()) << describe(clean[0], out);
    const size_t before = g_allocations.load();
    for (int round = 0; round < 10; ++round)
        for (const auto& v : clean) default_set().scan(v, {}, out);
    EXPECT_EQ(g_allocations.load() - before, 0u);
    EXPECT_TRUE(out.empty());
}

TEST(DetectorSetScan, HostileInputsStayBounded) {
    std::string digits(100000, '7');
    EXPECT_TRUE(scan(digits).empty());
    std::string ats(50000, '@');
    EXPECT_TRUE(scan(ats).empty());
    std::string mixed;
    for (int i = 0; i < 20000; ++i) mixed += "1.2.3.4:";
    (void)scan(mixed);
    std::string bad_utf8;
    for (int i = 0; i < 10000; ++i) bad_utf8 += "\xe2\x80";
    (void)scan(bad_utf8);
    // A value larger than one scan window: hits on both sides of every window seam are found exactly once,
    // at their offsets in the whole value.
    std::string big;
    std::vector<size_t> planted;
    while (big.size() < 3 * (size_t{1} << 20) + 5000) {
        big.append(1000 + planted.size() % 7, 'x');
        big += " \u00A0";  // NBSP keeps the normalizing path on in every window
        planted.push_back(big.size());
        big += "ivan.petrov@example.ru ";
    }
    auto hits = scan(big);
    ASSERT_EQ(hits.size(), planted.size());
    for (size_t i = 0; i < hits.size(); ++i) {
        EXPECT_EQ(hits[i].begin, planted[i]);
        EXPECT_EQ(hits[i].end, planted[i] + 22);
    }
    std::string pem = "-----BEGIN PRIVATE KEY-----";
    EXPECT_EQ(scan(pem).size(), 1u);
}

}  // namespace
}  // namespace edgeguard::privacy
