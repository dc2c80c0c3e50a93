// Cards, phones and national ids sent as JSON numbers ({"card": 4111111111111111}) go through the same
// detectors, rules and actions as the same digits in a string; the numbers events really carry (timestamps,
// prices, counts, screen sizes, build numbers, exponent and fraction forms) pass byte-identical.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "filter_test_support.h"
#include "filters/detectors/json_number.h"
#include "filters/detectors/registry.h"

namespace edgeguard::privacy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace edgeguard::privacy::testing;
using V = FilterOutput::Verdict;

bool has_audit(const FilterOutput& out, std::string_view rule, std::string_view path, std::string_view action) {
    for (const auto& a : out.audit)
        if (a.rule_id == rule && a.path == path && a.action == action) return true;
    return false;
}

TEST(JsonNumberGate, OnlyPlainIntegersOfIdentifierLength) {
    for (const char* token : {"9161234567", "79161234567", "500100732259", "4111111111111111", "1718031234",
                              "171803123456", "171803123456678", "2718031234566", "-79161234567"})
        EXPECT_TRUE(json_integer_may_be_identifier(token)) << token;
    for (const char* token : {"0", "1080", "20241128", "916123456", "12345678901234567890",
                              "1111111111111111111111111110", "-916123456", "-", "1718031234566", "1718031234566000",
                              "1718031234566000000", "-1718031234566", "4111111111111111.0", "4.111111111111111e15",
                              "4111111111111111E0", "1718031234.566", ""})
        EXPECT_FALSE(json_integer_may_be_identifier(token)) << token;
}

// The gate skips epoch-shaped integers without a scan; that is only exact if no built-in detector could
// report one. Random digits of those shapes (Luhn-valid or not) find nothing.
TEST(JsonNumberGate, SkippedEpochShapesAreNothingTheDetectorsReport) {
    const DetectorSet set = DetectorSet::builtin();
    std::mt19937_64 rng(42);
    std::vector<DetectorMatch> found;
    for (size_t length : {13u, 16u, 19u}) {
        for (int i = 0; i < 20000; ++i) {
            std::string digits = "1";
            while (digits.size() < length) digits.push_back(static_cast<char>('0' + rng() % 10));
            ASSERT_FALSE(json_integer_may_be_identifier(digits));
            for (std::string_view key : {"", "passport", "card_number", "birth_date", "inn"}) {
                found.clear();
                set.scan(digits, DetectorContext{key}, found);
                ASSERT_TRUE(found.empty()) << digits << " key " << key << ": " << found[0].detector;
            }
        }
    }
}

// One rule per action (tests/fixtures/privacy/test_rules.yaml).
class JsonNumbers : public ::testing::Test {
  protected:
    void SetUp() override {
        rules_ = test_rules();
        ASSERT_TRUE(rules_);
    }
    FilterOutput filter(std::string_view body, std::string_view profile = "events") {
        return run(*rules_, profile, body, "application/json", "", "", "/batch/");
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(JsonNumbers, RedactTurnsTheNumberIntoAPlaceholderString) {
    auto out = filter(R"({"event":"x","properties":{"tel": 79161234567 ,"n":3}})");
    ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"tel": "[redacted:phone]" ,"n":3}})");
    EXPECT_TRUE(has_audit(out, "contact", "properties.tel", "redact"));
    // A sign does not hide the digits (the string "-79161234567" is read as a phone too).
    out = filter(R"({"event":"x","properties":{"tel":-79161234567}})");
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"tel":"-[redacted:phone]"}})");
}

TEST_F(JsonNumbers, MaskKeepsTheLastFourDigitsInAString) {
    auto out = filter(R"({"event":"x","properties":{"card":4111111111111111,"items":[{"pan":5555555555554444}]}})");
    ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
    EXPECT_EQ(out.body,
              R"({"event":"x","properties":{"card":"************1111","items":[{"pan":"************4444"}]}})");
    EXPECT_TRUE(has_audit(out, "card-mask", "properties.items[*].pan", "mask"));
}

TEST_F(JsonNumbers, HashOfANumericIdentityEqualsTheHashOfTheSameDigitsAsAString) {
    auto numeric = filter(R"({"event":"x","distinct_id":79161234567,"properties":{}})");
    auto text = filter(R"({"event":"x","distinct_id":"79161234567","properties":{}})");
    ASSERT_EQ(numeric.verdict, V::Rewritten) << numeric.error;
    EXPECT_THAT(numeric.body, Not(HasSubstr("79161234567")));
    EXPECT_THAT(numeric.body, HasSubstr(R"("distinct_id":"h1:)"));
    EXPECT_EQ(numeric.body, text.body);
    EXPECT_TRUE(has_audit(numeric, "id-hash", "distinct_id", "hash"));
}

TEST_F(JsonNumbers, ArrayElementsAndNestedObjectsAreScanned) {
    auto out = filter(R"({"event":"x","properties":{"phones":[1,79161234567,2],"a":{"b":[{"c":9161234567}]}}})");
    ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
    EXPECT_EQ(out.body,
              R"({"event":"x","properties":{"phones":[1,"[redacted:phone]",2],"a":{"b":[{"c":"[redacted:phone]"}]}}})");
}

TEST_F(JsonNumbers, NumbersEventsCarryPassByteIdentical) {
    const std::string body =
        R"({"event":"$screen","distinct_id":"u-1","timestamp":1718031234566,"$time":1718031234.566,)"
        R"("properties":{"$screen_width":1080,"$screen_height":2400,"$screen_density":2.625,"$app_build":20241128,)"
        R"("sent_s":1718031234,"us":1718031234566000,"ns":1718031234566000000,"price":4590.00,"count":3,)"
        R"("big":4.111111111111111e14,"frac":4111111111111111.5,"neg":-1718031234566,"huge":12345678901234567890123,)"
        R"("not_a_card":4111111111111112,"company_inn":7707083893,"bad_inn":771234567850,"id":1234567812345670,)"
        R"("order":2024000123,"zero":0}})";
    auto out = filter(body);
    EXPECT_EQ(out.verdict, V::Unchanged) << out.body;
    EXPECT_TRUE(out.audit.empty());
}

TEST_F(JsonNumbers, ReportModeCountsAndForwardsUnchanged) {
    auto out = filter(R"({"event":"x","properties":{"tel":79161234567}})", "report");
    EXPECT_EQ(out.verdict, V::Unchanged);
    EXPECT_TRUE(out.report_only_hits);
    EXPECT_TRUE(has_audit(out, "contact", "properties.tel", "report"));
}

TEST_F(JsonNumbers, InspectOnlyRejects) {
    auto out = filter(R"({"event":"x","properties":{"tel":79161234567}})", "webhook");
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.rule_ids, std::vector<std::string>{"contact"});
}

// A property an allowlist types as a number is checked, not scanned (the allowlist author said what it
// holds); an untyped or unlisted one is scanned or dropped as usual.
TEST_F(JsonNumbers, AllowlistTypedNumbersAreCheckedNotScanned) {
    auto out = filter(R"({"event":"$screen","properties":{"price":79161234567,"other":79161234567}})", "strict");
    ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
    EXPECT_EQ(out.body, R"({"event":"$screen","properties":{"price":79161234567}})");
}

TEST_F(JsonNumbers, FilteringTwiceEqualsOnce) {
    for (std::string_view profile : {"events", "strict"}) {
        const std::string body =
            R"({"event":"x","distinct_id":9161234567,"properties":{"card":4111111111111111,"tel":79161234567,)"
            R"("l":[5555555555554444,79161234567]}})";
        auto first = filter(body, profile);
        ASSERT_EQ(first.verdict, V::Rewritten) << first.error;
        EXPECT_TRUE(valid_json(first.body)) << first.body;
        auto second = filter(first.body, profile);
        EXPECT_EQ(second.verdict, V::Unchanged) << first.body << " -> " << second.body;
    }
}

// The shipped rules, every profile.
class JsonNumbersThroughShippedRules : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!std::ifstream(source_path("conf/privacy.yaml"))) GTEST_SKIP() << "conf/privacy.yaml absent";
        rules_ = default_rules();
        ASSERT_TRUE(rules_);
    }
    std::shared_ptr<const RuleSet> rules_;
};

constexpr const char* kPlanted[] = {"4111111111111111", "79161234567", "500100732259", "11223344595",
                                    "89161234567", "2200700123456781"};

// Clean numbers, as they must arrive.
constexpr const char* kCleanMembers =
    R"("$screen_width":1080,"ts":1718031234566,"sent_s":1718031234,"build":20241128,"price":4590.5,)"
    R"("big":4.111111111111111e14,"not_a_card":4111111111111112,"company_inn":7707083893,"n":-1080)";

TEST_F(JsonNumbersThroughShippedRules, PlantedNumbersAreGoneOnEveryProfile) {
    const std::string planted_props =
        R"("card":4111111111111111,"contact":79161234567,"tax":500100732259,"insurance":11223344595,)"
        R"("list":[89161234567,2200700123456781],)";
    const std::string event =
        R"({"event":"purchase","distinct_id":"u-1","properties":{)" + planted_props + kCleanMembers + "}}";
    struct Case {
        const char* profile;
        const char* path;
        std::string body;
    };
    const std::vector<Case> cases = {
        {"events", "/batch/", R"({"api_key":"phc_x","batch":[)" + event + "]}"},
        {"flags", "/flags/",
         R"({"distinct_id":79161234567,"person_properties":{)" + planted_props + R"("plan":"pro"},)" + kCleanMembers +
             "}"},
        {"replay", "/s/",
         R"([{"event":"$snapshot","properties":{"$session_id":"s","$snapshot_data":[{"type":3,"timestamp":1718031234566,)"
         R"("data":{"source":5,"id":42,"text":4111111111111111,"values":[79161234567,500100732259,11223344595,)"
         R"(89161234567,2200700123456781]}}],)" +
             std::string(kCleanMembers) + "}}]"},
    };
    for (const Case& c : cases) {
        SCOPED_TRACE(c.profile);
        const FilterOutput out = run(*rules_, c.profile, c.body, "application/json", "", "", c.path);
        ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
        ASSERT_TRUE(valid_json(out.body)) << out.body;
        for (const char* p : kPlanted) EXPECT_THAT(out.body, Not(HasSubstr(p)));
        EXPECT_THAT(out.body, HasSubstr(kCleanMembers));
        const FilterOutput again = run(*rules_, c.profile, out.body, "application/json", "", "", c.path);
        EXPECT_EQ(again.verdict, V::Unchanged) << out.body << " -> " << again.body;
    }
    // Webhooks never rewrite: refused instead.
    const FilterOutput hook = run(*rules_, "webhooks", cases[0].body, "application/json", "", "", "/webhooks/");
    EXPECT_EQ(hook.verdict, V::Rejected);
}

// The strict profile drops what it does not list; a listed value it scans (`any`) is filtered, and the
// top-level distinct_id is hashed (identity-hash) like its string form.
TEST_F(JsonNumbersThroughShippedRules, StrictProfileDropsOrFiltersNumericIdentifiers) {
    const std::string body =
        R"({"event":"$screen","distinct_id":79161234567,"properties":{"$screen_name":"Home","card":4111111111111111,)"
        R"("$feature_flag_response":500100732259,"$screen_width":1080}})";
    const FilterOutput out = run(*rules_, "strict", body);
    ASSERT_EQ(out.verdict, V::Rewritten) << out.error;
    for (const char* p : kPlanted) EXPECT_THAT(out.body, Not(HasSubstr(p)));
    EXPECT_THAT(out.body, HasSubstr(R"("distinct_id":"h1:)"));
    EXPECT_THAT(out.body, HasSubstr(R"("$feature_flag_response":"[redacted:inn]")"));
    EXPECT_THAT(out.body, HasSubstr(R"("$screen_width":1080)"));
    EXPECT_THAT(out.body, Not(HasSubstr(R"("card")")));
}

TEST_F(JsonNumbersThroughShippedRules, ReportProfileModeCountsWithoutRewriting) {
    // The shipped events profile switched to report mode, as an operator rolls a rule out.
    std::string yaml = read_file(source_path("conf/privacy.yaml"));
    const std::string from = "mode: enforce", to = "mode: report";
    const auto at = yaml.find(from);
    ASSERT_NE(at, std::string::npos);
    yaml.replace(at, from.size(), to);
    const std::string path = ::testing::TempDir() + "/privacy-report-numbers.yaml";
    std::ofstream(path) << yaml;
    auto report = load_rules_file(path);
    ASSERT_TRUE(report);
    const std::string body = R"({"event":"x","properties":{"contact":79161234567,"card":4111111111111111}})";
    const FilterOutput out = run(*report, "events", body);
    EXPECT_EQ(out.verdict, V::Unchanged);
    EXPECT_TRUE(out.report_only_hits);
    EXPECT_TRUE(has_audit(out, "contact-data", "properties.contact", "report"));
    EXPECT_TRUE(has_audit(out, "payment-data", "properties.card", "report"));
}

}  // namespace
}  // namespace edgeguard::privacy
