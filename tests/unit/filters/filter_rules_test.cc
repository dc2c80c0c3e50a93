// Loading conf/privacy.yaml-style files: every mistake is an error with the line and column of its cause.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "filter_test_support.h"

namespace edgeguard::privacy {
namespace {

using ::testing::HasSubstr;
using namespace edgeguard::privacy::testing;

std::vector<RuleError> load_errors(const std::string& yaml, std::shared_ptr<const RuleSet>* out = nullptr) {
    set_test_hash_keys();
    std::vector<RuleError> errors;
    auto rules = RuleSet::load_text(yaml, "rules.yaml", errors);
    if (out) *out = rules;
    return errors;
}

const RuleError* first_error(const std::vector<RuleError>& errors) {
    for (const auto& e : errors) {
        if (!e.warning) return &e;
    }
    return nullptr;
}

TEST(FilterRules, ShippedDefaultRulesLoadWithAllProfiles) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    for (const char* p : {"events", "flags", "replay", "webhooks", "strict"}) EXPECT_TRUE(rules->has_profile(p)) << p;
    EXPECT_FALSE(rules->has_profile("nope"));
}

TEST(FilterRules, TestFixtureRulesLoad) {
    auto rules = test_rules();
    ASSERT_TRUE(rules);
    EXPECT_EQ(rules->profile_names().size(), 6u);
}

TEST(FilterRules, UnknownKeyIsAnErrorAtItsLine) {
    const std::string yaml =
        "version: 1\n"
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: r1\n"
        "        detectors: [email]\n"
        "        acton: redact\n";
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors(yaml, &rules);
    EXPECT_FALSE(rules);
    const RuleError* e = first_error(errors);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->line, 7);
    EXPECT_EQ(e->col, 9);
    EXPECT_EQ(e->file, "rules.yaml");
    EXPECT_THAT(e->message, HasSubstr("unknown key `acton`"));
}

TEST(FilterRules, UnknownTopLevelAndProfileKeysAreErrors) {
    auto errors = load_errors("version: 1\nprofile: {}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 2);
    errors = load_errors("profiles:\n  events:\n    mdoe: report\n    rules: []\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 3);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("mdoe"));
}

TEST(FilterRules, YamlSyntaxErrorHasPosition) {
    auto errors = load_errors("profiles:\n  events:\n    rules: [\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_GT(first_error(errors)->line, 0);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("YAML"));
}

TEST(FilterRules, BadActionDetectorAndPathAreErrors) {
    auto errors = load_errors("profiles:\n  e:\n    rules:\n      - {id: a, detectors: [email], action: explode}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 4);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("unknown action"));

    errors = load_errors("profiles:\n  e:\n    rules:\n      - {id: a, detectors: [emial], action: redact}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 4);

    errors = load_errors("profiles:\n  e:\n    rules:\n      - {id: a, paths: ['properties..x'], action: drop}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_THAT(first_error(errors)->message, HasSubstr("empty segment"));
}

TEST(FilterRules, RuleNeedsIdAndTarget) {
    auto errors = load_errors("profiles:\n  e:\n    rules:\n      - {detectors: [email], action: redact}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_THAT(first_error(errors)->message, HasSubstr("id"));
    errors = load_errors("profiles:\n  e:\n    rules:\n      - {id: x, action: redact}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_THAT(first_error(errors)->message, HasSubstr("paths"));
}

TEST(FilterRules, FailingMustMatchSampleIsAnErrorAtTheSampleList) {
    const std::string yaml =
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: mail\n"
        "        detectors: [email]\n"
        "        action: redact\n"
        "        must_match: [\"ivan@example.ru\", \"no email here\"]\n";
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors(yaml, &rules);
    EXPECT_FALSE(rules);
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 7);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("must_match sample \"no email here\" does not match"));
}

TEST(FilterRules, FailingSampleIsReportedOnceNotOncePerExtendingProfile) {
    const std::string yaml =
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: mail\n"
        "        detectors: [email]\n"
        "        action: redact\n"
        "        must_match: [\"no email here\"]\n"
        "  web:\n"
        "    extends: events\n"
        "  mobile:\n"
        "    extends: events\n";
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors(yaml, &rules);
    EXPECT_FALSE(rules);
    size_t reports = 0;
    for (const auto& e : errors) reports += e.message.find("\"no email here\"") != std::string::npos;
    EXPECT_EQ(reports, 1u);
}

TEST(FilterRules, FailingMustNotMatchSampleIsAnError) {
    const std::string yaml =
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: keys\n"
        "        paths: ['**.email']\n"
        "        action: drop\n"
        "        must_not_match: [properties.$set.email]\n";
    auto errors = load_errors(yaml);
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 7);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("must_not_match sample \"properties.$set.email\" matches"));
}

TEST(FilterRules, PassingSamplesLoad) {
    const std::string yaml =
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: keys\n"
        "        paths: ['**.email', 'properties.items[*].phone']\n"
        "        action: drop\n"
        "        must_match: [properties.$set.email, 'properties.items[3].phone']\n"
        "        must_not_match: [properties.$email_verified]\n";
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors(yaml, &rules);
    EXPECT_TRUE(rules) << (first_error(errors) ? first_error(errors)->message : "");
}

TEST(FilterRules, HashWithoutKeySourceIsAnError) {
    ::unsetenv("EDGEGUARD_NO_SUCH_KEY");
    const std::string yaml =
        "hash_key: {id: h1, env: EDGEGUARD_NO_SUCH_KEY}\n"
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - {id: h, paths: [distinct_id], action: hash}\n";
    auto errors = load_errors(yaml);
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 1);
    EXPECT_THAT(first_error(errors)->message, HasSubstr("not available"));

    errors = load_errors("profiles:\n  events:\n    rules:\n      - {id: h, paths: [distinct_id], action: hash}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_THAT(first_error(errors)->message, HasSubstr("hash_key"));
}

TEST(FilterRules, InlineKeyIsNotAccepted) {
    auto errors = load_errors(
        "hash_key: {id: h1, secret: abcdefabcdefabcdefabcdef}\nprofiles:\n  e:\n    rules:\n"
        "      - {id: h, paths: [distinct_id], action: hash}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_THAT(first_error(errors)->message, HasSubstr("unknown key `secret`"));
}

TEST(FilterRules, OnUndecodablePassIsAWarningNotAnError) {
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors("profiles:\n  e:\n    on_undecodable: pass\n    rules: []\n", &rules);
    EXPECT_TRUE(rules);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_TRUE(errors[0].warning);
    EXPECT_EQ(errors[0].line, 3);
}

TEST(FilterRules, ExtendsNeedsAnEarlierProfile) {
    auto errors = load_errors("profiles:\n  a:\n    extends: b\n  b:\n    rules: []\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 3);
}

TEST(FilterRules, CustomRegexDetectorWithValidator) {
    const std::string yaml =
        "custom_detectors:\n"
        "  - {id: loyalty_card, pattern: '\\bLC[0-9]{8}\\b'}\n"
        "profiles:\n"
        "  events:\n"
        "    rules:\n"
        "      - id: loyalty\n"
        "        detectors: [loyalty_card]\n"
        "        action: redact\n"
        "        must_match: ['card LC12345678']\n"
        "        must_not_match: ['LC1234']\n";
    std::shared_ptr<const RuleSet> rules;
    auto errors = load_errors(yaml, &rules);
    ASSERT_TRUE(rules) << (first_error(errors) ? first_error(errors)->message : "");
    auto out = run(*rules, "events", R"({"event":"x","properties":{"t":"id LC12345678"}})");
    EXPECT_EQ(out.verdict, FilterOutput::Verdict::Rewritten);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"t":"id [redacted:loyalty_card]"}})");
}

TEST(FilterRules, BadCustomRegexIsAnError) {
    auto errors = load_errors("custom_detectors:\n  - {id: x, pattern: '(unclosed'}\nprofiles:\n  e: {rules: []}\n");
    ASSERT_TRUE(first_error(errors));
    EXPECT_EQ(first_error(errors)->line, 2);
}

TEST(FilterRules, MissingFileIsAnError) {
    std::vector<RuleError> errors;
    EXPECT_FALSE(RuleSet::load("/nonexistent/privacy.yaml", errors));
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_THAT(errors[0].message, HasSubstr("cannot read"));
}

}  // namespace
}  // namespace edgeguard::privacy
