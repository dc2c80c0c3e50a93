// Numbers glued to the word before them ("tel79161234567", "card4111111111111111", "k@a.co4111111111111111")
// are read on their own when the digits validate; identifier-shaped look-alikes (hex hashes, UUIDs, base64
// ids, version and build tags, model names) stay clean; and filtering twice equals filtering once.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "filter_test_support.h"
#include "filters/detectors/registry.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

std::vector<DetectorMatch> scan(std::string_view text) {
    static const DetectorSet set = DetectorSet::builtin();
    std::vector<DetectorMatch> out;
    set.scan(text, DetectorContext{}, out);
    return out;
}

std::string describe(std::string_view text, const std::vector<DetectorMatch>& matches) {
    std::string s;
    for (const DetectorMatch& m : matches)
        s += std::string(m.detector) + "[" + std::string(text.substr(m.begin, m.end - m.begin)) + "] ";
    return s.empty() ? "no match" : s;
}

struct Expected {
    const char* text;
    std::vector<std::pair<std::string, std::string>> spans;  // (detector, matched text), in order
};

void expect_spans(const Expected& e) {
    const std::string_view text = e.text;
    const auto matches = scan(text);
    std::vector<std::pair<std::string, std::string>> got;
    for (const DetectorMatch& m : matches)
        got.emplace_back(std::string(m.detector), std::string(text.substr(m.begin, m.end - m.begin)));
    EXPECT_EQ(got, e.spans) << text << ": " << describe(text, matches);
}

TEST(GluedDigits, NumbersGluedToAWordAreReadOnTheirOwn) {
    for (const Expected& e : std::vector<Expected>{
             {"tel79161234567", {{"phone", "79161234567"}}},
             {"tel+79161234567", {{"phone", "+79161234567"}}},
             {"phone89161234567 please", {{"phone", "89161234567"}}},
             {"Tel9161234567", {{"phone", "9161234567"}}},
             {"card4111111111111111", {{"card", "4111111111111111"}}},
             {"card4111 1111 1111 1111", {{"card", "4111 1111 1111 1111"}}},
             {"pan5555555555554444;", {{"card", "5555555555554444"}}},
             {"inn500100732259", {{"inn", "500100732259"}}},
             {"snils11223344595", {{"snils", "11223344595"}}},
             {"https://shop.example/cb/card4111111111111111", {{"card", "4111111111111111"}}},
             {"https://example.com4111111111111111", {{"card", "4111111111111111"}}},
             {"тел79161234567", {{"phone", "79161234567"}}},  // Cyrillic never glued
         }) {
        expect_spans(e);
    }
}

TEST(GluedDigits, AnAddressGluedToAReportedNumberIsAnAddress) {
    for (const Expected& e : std::vector<Expected>{
             {"k@a.co4111111111111111", {{"email", "k@a.co"}, {"card", "4111111111111111"}}},
             {"mail x@y.example.co79161234567 now", {{"email", "x@y.example.co"}, {"phone", "79161234567"}}},
             {"a@b.de4111 1111 1111 1111", {{"email", "a@b.de"}, {"card", "4111 1111 1111 1111"}}},
         }) {
        expect_spans(e);
    }
    // Glued to digits no detector reports, it stays glued: neither is redacted, so nothing unglues.
    for (const char* text : {"k@a.co8", "k@a.co4111111111111112", "k@a.co4111111111111111x", "a@b.co1718031234566",
                             "x@y.build9161234567"}) {
        EXPECT_TRUE(scan(text).empty()) << text << ": " << describe(text, scan(text));
    }
}

TEST(GluedDigits, IdentifierShapedLookAlikesStayClean) {
    for (const char* text : {
             // hex hashes and ids: letters and digits alternate, or the letters follow a digit
             "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "9fceb02d0ae598e95dc970b74767f19372d61af8", "a3f9c2e4b7d18f06", "0x4111111111111111",
             "3ab4111111111111111", "deadbeef1c9161234567",
             // UUID groups and other dash-chained identifiers
             "110bcd25-a55d-453a-8046-1297901ea002", "0190a1b2-c3d4-7e5f-8a9b-ab9161234567", "SM-G991B",
             "SM-G9161234567", "ORD-A4111111111111111",
             // base64 / token-like ids
             "evt_4111111111111111", "sk_test_4111111111111111", "dXNlcjoxMjM0NTY3ODkw",
             // version and build tags
             "v1.2.3", "v9161234567", "build20241128", "build9161234567", "Build4111111111111111",
             "rev79161234567", "release500100732259", "2.31.0-beta.1+build.20240610",
             // IBAN heads: the groups after the country code and check digits belong to the IBAN
             "DE89 3704 0044 0532 0130 01", "de89 3704 0044 0532 0130 01", "DE89370400440532013001",
             // glued on the right stays glued
             "4111111111111111abc", "79161234567x",
             // model names, locales, plain words with short numbers
             "iPhone15,2", "Pixel8Pro", "x86_64", "arm64", "ru-RU", "android34",
             // letters then digits that do not validate
             "ts1718031234566", "id1234567812345670", "order771234567850", "ord4111111111111112",
             "user1718031234"}) {
        EXPECT_TRUE(scan(text).empty()) << text << ": " << describe(text, scan(text));
    }
}

// Values over a window (1 MiB) are scanned, and settled, window by window: a pair that only the ungluing
// rounds find is found once wherever it lies, overlaps and window edges included.
TEST(GluedDigits, LongValuesSettleInEveryWindow) {
    std::string text;
    while (text.size() < (size_t{5} << 19)) text += "lorem ipsum ";
    const std::string pair = "9161234567,k@a.co";
    const std::vector<size_t> at = {12, (size_t{1} << 20) - 5004, (size_t{1} << 20) + 96, (size_t{2} << 20) + 12};
    for (size_t pos : at) text.replace(pos - 1, pair.size() + 2, " " + pair + " ");
    const auto matches = scan(text);
    std::vector<std::pair<std::string, size_t>> got;
    for (const DetectorMatch& m : matches) got.emplace_back(std::string(m.detector), m.begin);
    std::vector<std::pair<std::string, size_t>> want;
    for (size_t pos : at) {
        want.emplace_back("phone", pos);
        want.emplace_back("email", pos + 11);
    }
    EXPECT_EQ(got, want);
}

TEST(GluedDigits, AfterPlainWordNeedsAWordAtATokenBoundary) {
    struct Case {
        const char* text;
        size_t pos;
        bool expected;
    };
    for (const Case& c : {Case{"tel7", 3, true}, Case{"x tel7", 5, true}, Case{"a.co7", 4, true},
                          Case{"a@co7", 4, true}, Case{"7", 0, false}, Case{" 7", 1, false},
                          Case{"3ab7", 3, false}, Case{"_ab7", 3, false}, Case{"x-ab7", 4, false},
                          Case{"-ab7", 3, true}, Case{"v7", 1, false}, Case{"VERSION7", 7, false},
                          Case{"b7", 1, false}, Case{"bb7", 2, true}}) {
        EXPECT_EQ(after_plain_word(c.text, c.pos), c.expected) << c.text << " @" << c.pos;
    }
}

class GluedDigitsThroughShippedRules : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!std::ifstream(testing::source_path("conf/privacy.yaml"))) GTEST_SKIP() << "conf/privacy.yaml absent";
        rules_ = testing::default_rules();
        ASSERT_TRUE(rules_);
    }
    std::shared_ptr<const RuleSet> rules_;
};

// Every planted glued number is gone after one pass on every profile that rewrites, and a second pass
// changes nothing.
TEST_F(GluedDigitsThroughShippedRules, RedactedOnceAndFilteringTwiceEqualsOnce) {
    const std::string note =
        "tel79161234567 card4111111111111111 k@a.co4111111111111111 inn500100732259 snils11223344595 "
        "x@y.example.co79161234567";
    const std::string clean = "build20241128 v1.2.3 SM-G991B 0190a1b2-c3d4-7e5f-8a9b-ab9161234567 a3f9c2e4b7d18f06";
    struct Profile {
        const char* name;
        const char* path;
        std::string body;
    };
    const std::string event_body = R"({"api_key":"phc_x","batch":[{"event":"$screen","distinct_id":"u1",)"
                                   R"("properties":{"$screen_name":")" + note + R"(","$app_build":")" + clean +
                                   R"("}}]})";
    const std::string replay_body =
        R"([{"event":"$snapshot","properties":{"$session_id":"s","$snapshot_data":[{"type":2,"data":{"node":)"
        R"({"type":3,"textContent":")" + note + R"("},"build":")" + clean + R"("}}]}}])";
    for (const Profile& p : {Profile{"events", "/batch/", event_body}, Profile{"strict", "/batch/", event_body},
                             Profile{"replay", "/s/", replay_body},
                             Profile{"flags", "/flags/",
                                     R"({"distinct_id":"u1","person_properties":{"plan":"pro"},"note":")" + note +
                                         R"(","build":")" + clean + R"("})"}}) {
        SCOPED_TRACE(p.name);
        const FilterOutput first = testing::run(*rules_, p.name, p.body, "application/json", "", "", p.path);
        ASSERT_EQ(first.verdict, FilterOutput::Verdict::Rewritten) << first.error;
        for (const char* planted : {"79161234567", "4111111111111111", "k@a.co", "500100732259", "11223344595",
                                    "x@y.example.co"}) {
            EXPECT_EQ(first.body.find(planted), std::string::npos) << planted << " in " << first.body;
        }
        EXPECT_NE(first.body.find(clean), std::string::npos) << first.body;
        EXPECT_TRUE(testing::valid_json(first.body));
        const FilterOutput second = testing::run(*rules_, p.name, first.body, "application/json", "", "", p.path);
        EXPECT_EQ(second.verdict, FilterOutput::Verdict::Unchanged) << first.body << " -> " << second.body;
    }
    // Webhooks never rewrite: the same body is refused.
    const FilterOutput hook = testing::run(*rules_, "webhooks", event_body, "application/json", "", "",
                                           "/public/webhooks/x");
    EXPECT_EQ(hook.verdict, FilterOutput::Verdict::Rejected);
    EXPECT_EQ(hook.status, 422);
}

// Strings made of glued numbers, addresses, words, hex and separators, as values and as keys: whatever the
// first pass redacts, a second pass finds nothing more (a redaction that ungluess a neighbour would).
TEST_F(GluedDigitsThroughShippedRules, TokenSoupFiltersTwiceEqualsOnce) {
    static constexpr const char* kTokens[] = {
        "tel", "card", "k@a.co", "x@y.de", "4111111111111111", "79161234567", "9161234567", "500100732259",
        "11223344595", "4111 1111 1111 1111", "+7", "+", " ", "-", ".", "_", "@", "a", "b", "v", "DE", "89",
        "0", "1", "(", ")", "ab", "x", "ff", "build", "2024", ",", ":", "/", "?code=", "81.23.45.67", "8.8.8.8",
        "DE89 3704 0044 0532 0130 00", "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.", "%40", "Иван Петрович", "ИНН ",
        "=", "&"};
    std::mt19937 rng(20261128);
    std::uniform_int_distribution<size_t> pick(0, std::size(kTokens) - 1), count(1, 8);
    // Keys get no version-like words: a key such as "build…" suppresses the ip detector on its value, and a
    // key that is itself redacted loses that context in the next pass (the walker's business, not the
    // detectors').
    auto soup = [&](bool key) {
        std::string s;
        for (size_t n = count(rng); n > 0; --n) {
            const std::string_view t = kTokens[pick(rng)];
            if (key && (t == "build" || t == "v")) continue;
            s += t;
        }
        return s;
    };
    int rewritten = 0;
    for (int i = 0; i < 10000; ++i) {
        const std::string body = R"({"distinct_id":"u1","person_properties":{")" + soup(true) + R"(":")" +
                                 soup(false) + R"(","n":")" + soup(false) + R"("}})";
        const FilterOutput first = testing::run(*rules_, "flags", body, "application/json", "", "", "/flags/");
        if (first.verdict != FilterOutput::Verdict::Rewritten) continue;
        ++rewritten;
        ASSERT_TRUE(testing::valid_json(first.body)) << body << " -> " << first.body;
        const FilterOutput second =
            testing::run(*rules_, "flags", first.body, "application/json", "", "", "/flags/");
        ASSERT_EQ(second.verdict, FilterOutput::Verdict::Unchanged)
            << body << " -> " << first.body << " -> " << second.body;
    }
    EXPECT_GT(rewritten, 3000);  // the soup does exercise the rewriting
}

}  // namespace
}  // namespace edgeguard::privacy
