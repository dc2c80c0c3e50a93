// The compression-ratio cap is a profile option: a gzip batch of near-identical events compresses far past
// 100:1 and capture accepts it (it only logs ratios over 20), so ops must be able to raise or lift the cap
// without losing the decoded-size cap that bounds memory.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "filter_test_support.h"
#include "filters/decode/gzip.h"

namespace edgeguard::privacy {
namespace {

using ::testing::HasSubstr;
using namespace edgeguard::privacy::testing;
using V = FilterOutput::Verdict;

// ~1.5 MiB of the same clean screen event, gzip-compressed well past 100:1.
std::string repetitive_gzip_batch(std::string* json_out = nullptr) {
    std::string json = R"({"api_key":"phc_test","batch":[)";
    for (int i = 0; i < 12000; ++i) {
        if (i) json += ',';
        json += R"({"event":"$screen","distinct_id":"d-1","properties":{"$screen_name":"Home","plan":"pro"}})";
    }
    json += "]}";
    if (json_out) *json_out = json;
    return gzip_deflate(json, 9);
}

std::shared_ptr<const RuleSet> rules_with(const std::string& events_options, std::vector<RuleError>* errors_out) {
    set_test_hash_keys();
    const std::string yaml =
        "version: 1\n"
        "profiles:\n"
        "  events:\n" +
        events_options +
        "    rules:\n"
        "      - id: email\n"
        "        detectors: [email]\n"
        "        action: redact\n"
        "  child:\n"
        "    extends: events\n";
    std::vector<RuleError> errors;
    auto rules = RuleSet::load_text(yaml, "rules.yaml", errors);
    if (errors_out) *errors_out = errors;
    return rules;
}

TEST(CompressionRatio, TheBatchIsReallyOverTheDefaultRatio) {
    std::string json;
    const std::string gz = repetitive_gzip_batch(&json);
    EXPECT_GT(json.size(), 1u << 20);
    EXPECT_GT(json.size() / gz.size(), 100u) << json.size() << " / " << gz.size();
}

TEST(CompressionRatio, DefaultCapRefusesWith413) {
    auto rules = rules_with("", nullptr);
    ASSERT_TRUE(rules);
    const auto out = run(*rules, "events", repetitive_gzip_batch(), "text/plain");
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 413);
    EXPECT_EQ(out.code, "payload_too_large");
}

TEST(CompressionRatio, RaisedOrLiftedCapAcceptsAndInheritsThroughExtends) {
    for (const std::string opt : {"    max_compression_ratio: 5000\n", "    max_compression_ratio: off\n",
                                  "    max_compression_ratio: 0\n"}) {
        auto rules = rules_with(opt, nullptr);
        ASSERT_TRUE(rules) << opt;
        for (const char* profile : {"events", "child"}) {
            const auto out = run(*rules, profile, repetitive_gzip_batch(), "text/plain");
            EXPECT_EQ(out.verdict, V::Unchanged) << opt << profile << ": " << out.status << " " << out.error;
        }
    }
}

TEST(CompressionRatio, LiftedRatioStillHasTheDecodedSizeCap) {
    auto rules = rules_with("    max_compression_ratio: off\n", nullptr);
    ASSERT_TRUE(rules);
    std::string json;
    const std::string gz = repetitive_gzip_batch(&json);
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.body = gz;
    in.wire_limit = json.size() / 10;  // decoded cap = 5x the wire limit = half the JSON
    const auto out = rules->apply("events", in);
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 413);
}

TEST(CompressionRatio, BadValuesAreErrorsAtTheirPosition) {
    for (const std::string bad : {"5", "abc", "-1", "100001"}) {
        std::vector<RuleError> errors;
        auto rules = rules_with("    max_compression_ratio: " + bad + "\n", &errors);
        EXPECT_FALSE(rules) << bad;
        ASSERT_FALSE(errors.empty()) << bad;
        EXPECT_EQ(errors[0].line, 4) << bad;
        EXPECT_THAT(errors[0].message, HasSubstr("max_compression_ratio")) << bad;
    }
}

}  // namespace
}  // namespace edgeguard::privacy
