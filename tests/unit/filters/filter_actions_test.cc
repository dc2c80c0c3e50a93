// Each action, the splicing that applies it, and the profile options, on small hand-written payloads.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "filter_test_support.h"

namespace edgeguard::privacy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using namespace edgeguard::privacy::testing;
using V = FilterOutput::Verdict;

class FilterActions : public ::testing::Test {
protected:
    void SetUp() override {
        rules_ = test_rules();
        ASSERT_TRUE(rules_);
    }
    FilterOutput filter(std::string_view body, std::string_view profile = "events",
                        IpPolicy policy = IpPolicy::Forward) {
        return run(*rules_, profile, body, "application/json", "", "", "/batch/", policy);
    }
    bool has_audit(const FilterOutput& out, std::string_view rule, std::string_view path, std::string_view action) {
        for (const auto& a : out.audit) {
            if (a.rule_id == rule && a.path == path && a.action == action) return true;
        }
        return false;
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(FilterActions, CleanPayloadIsUnchanged) {
    const std::string body = R"({"event":"$screen","distinct_id":"u-1","properties":{"$screen_name":"Home","n":12}})";
    auto out = filter(body);
    EXPECT_EQ(out.verdict, V::Unchanged);
    EXPECT_TRUE(out.body.empty());
    EXPECT_TRUE(out.audit.empty());
}

TEST_F(FilterActions, RedactReplacesOnlyTheSpanAndKeepsOtherBytes) {
    const std::string body = "{ \"event\" : \"x\",\n  \"properties\" : {\"note\" : \"mail ivan@example.ru please\", \"n\":1.50 } }";
    auto out = filter(body);
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body,
              "{ \"event\" : \"x\",\n  \"properties\" : {\"note\" : \"mail [redacted:email] please\", \"n\":1.50 } }");
    EXPECT_TRUE(has_audit(out, "contact", "properties.note", "redact"));
}

TEST_F(FilterActions, EscapedStringIsRebuiltWithCorrectEscaping) {
    const std::string body = R"({"event":"x","properties":{"note":"\"quoted\"\tivan\u0040example.ru \u043f\u0440\u0438\u0432\u0435\u0442"}})";
    auto out = filter(body);
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, "{\"event\":\"x\",\"properties\":{\"note\":\"\\\"quoted\\\"\\t[redacted:email] привет\"}}");
    EXPECT_TRUE(valid_json(out.body));
}

TEST_F(FilterActions, DropRemovesKeyAndKeepsCommasValid) {
    // First, middle and last members, and an object left empty.
    auto out = filter(R"({"event":"x","properties":{"email":"a@b.io","k":1,"$set":{"email":"a@b.io"},"z":{"Email":"c@d.io"}}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"k":1,"$set":{},"z":{}}})");
    out = filter(R"({"event":"x","properties":{"k":1, "email" : "a@b.io" }})");
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"k":1 }})");
    out = filter(R"({"event":"x","properties":{"a":1,"email":"a@b.io","password":"x","b":2,"pass":"y"}})");
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"a":1,"b":2}})");
    EXPECT_TRUE(valid_json(out.body));
}

TEST_F(FilterActions, DropByArrayPathAndNameOnlyWherePersonal) {
    auto out = filter(
        R"({"event":"x","properties":{"items":[{"sku":"A","phone":"+79161234567"},{"phone":"n/a"}],"name":"Blue plan","$set":{"name":"Olga","plan":"pro"}}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"items":[{"sku":"A"},{}],"name":"Blue plan","$set":{"plan":"pro"}}})");
    EXPECT_TRUE(has_audit(out, "person-keys", "properties.items[*].phone", "drop"));
}

TEST_F(FilterActions, MaskKeepsLastFour) {
    auto out = filter(R"({"event":"x","properties":{"p":"card 4111 1111 1111 1111 ok"}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"p":"card ***************1111 ok"}})");
}

TEST_F(FilterActions, HashIsDeterministicVersionedAndOnlyForIdentityPaths) {
    auto a = filter(R"({"event":"x","distinct_id":"olga@example.ru","properties":{}})");
    auto b = filter(R"({"event":"y","distinct_id":"olga@example.ru","properties":{"k":2}})");
    ASSERT_EQ(a.verdict, V::Rewritten);
    const auto start = a.body.find("\"h1:");
    ASSERT_NE(start, std::string::npos) << a.body;
    const std::string token = a.body.substr(start, 1 + 3 + 43 + 1);
    EXPECT_NE(b.body.find(token), std::string::npos);
    EXPECT_THAT(a.body, Not(HasSubstr("olga")));
    EXPECT_TRUE(has_audit(a, "id-hash", "distinct_id", "hash"));
    // A different key gives a different token (keys rotate with their id).
    ::setenv("EDGEGUARD_TEST_HASH_KEY", "another-key-0123456789abcdef", 1);
    std::vector<RuleError> errors;
    auto other = RuleSet::load(source_path("tests/fixtures/privacy/test_rules.yaml"), errors);
    set_test_hash_keys();
    ASSERT_TRUE(other);
    auto c = run(*other, "events", R"({"event":"x","distinct_id":"olga@example.ru","properties":{}})");
    EXPECT_EQ(c.body.find(token), std::string::npos);
}

TEST_F(FilterActions, TruncateIpInTextAndIpPolicyOnDollarIp) {
    auto out = filter(R"({"event":"x","properties":{"msg":"from 81.23.45.67 and 10.0.0.1","$ip":"2a01:4f9:c010:1234::1"}})",
                      "events", IpPolicy::Truncate);
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"msg":"from 81.23.45.0 and 10.0.0.1","$ip":"2a01:4f9:c010::"}})");
    out = filter(R"({"event":"x","properties":{"$ip":"81.23.45.67"}})", "events", IpPolicy::Drop);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"$ip":"0.0.0.0"}})");
    EXPECT_TRUE(has_audit(out, "client_ip_policy", "properties.$ip", "drop"));
    out = filter(R"({"event":"x","properties":{"$ip":"81.23.45.67"}})", "events", IpPolicy::Forward);
    EXPECT_EQ(out.body, R"({"event":"x","properties":{"$ip":"81.23.45.0"}})");  // the ip detector still truncates
}

TEST_F(FilterActions, RejectNamesRuleAndNeverEchoesData) {
    auto out = filter(R"({"event":"x","properties":{"k":"phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"}})");
    ASSERT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 422);
    EXPECT_EQ(out.code, "privacy_rule_rejected");
    EXPECT_THAT(out.error, HasSubstr("no-secrets"));
    EXPECT_THAT(out.error, Not(HasSubstr("phx_")));
    EXPECT_EQ(out.rule_ids, std::vector<std::string>{"no-secrets"});
}

TEST_F(FilterActions, ObjectKeysAreScanned) {
    auto out = filter(
        R"({"event":"$$heatmap","properties":{"$heatmap_data":{"https://app/u/ivan@example.ru/edit":[{"x":1}],"https://app/home":[]}}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body,
              R"({"event":"$$heatmap","properties":{"$heatmap_data":{"https://app/u/[redacted:email]/edit":[{"x":1}],"https://app/home":[]}}})");
    // The audit path never contains the key that carried the data.
    for (const auto& a : out.audit) EXPECT_THAT(a.path, Not(HasSubstr("ivan")));
}

TEST_F(FilterActions, UrlSensitiveQueryKeysAreRedacted) {
    auto out = filter(
        R"({"event":"$pageview","properties":{"$current_url":"https://a.io/reset?token=abc123&utm_source=x#access_token=zz","other":"https://a.io/?token=abc"}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body,
              R"({"event":"$pageview","properties":{"$current_url":"https://a.io/reset?token=redacted&utm_source=x#access_token=redacted","other":"https://a.io/?token=abc"}})");
}

TEST_F(FilterActions, ElementsChainHrefsAndTextAreScrubbed) {
    auto out = filter(
        R"({"event":"$autocapture","properties":{"$elements_chain":"a.btn:attr__href=\"/reset?token=abc&x=1\"href=\"/reset?token=abc&x=1\"nth-child=\"1\"text=\"Mail ivan@example.ru\";div:nth-child=\"2\""}})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body,
              R"({"event":"$autocapture","properties":{"$elements_chain":"a.btn:attr__href=\"/reset?token=redacted&x=1\"href=\"/reset?token=redacted&x=1\"nth-child=\"1\"text=\"Mail [redacted:email]\";div:nth-child=\"2\""}})");
    EXPECT_EQ(filter(out.body).verdict, V::Unchanged);
}

TEST_F(FilterActions, TopLevelSetAndEngageShape) {
    auto out = filter(R"({"$set":{"email":"a@b.io","plan":"pro"},"distinct_id":"u1","token":"phc_x"})");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"({"$set":{"plan":"pro"},"distinct_id":"u1","token":"phc_x"})");
}

TEST_F(FilterActions, ArrayAndBatchShapesAndAuditPaths) {
    auto out = filter(R"([{"event":"a","properties":{"email":"x@y.io"}},{"event":"b","properties":{}}])");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body, R"([{"event":"a","properties":{}},{"event":"b","properties":{}}])");
    EXPECT_TRUE(has_audit(out, "person-keys", "[*].properties.email", "drop"));
    out = filter(R"({"api_key":"phc_x","batch":[{"event":"a","properties":{"email":"x@y.io"}}]})");
    EXPECT_TRUE(has_audit(out, "person-keys", "batch[*].properties.email", "drop"));
}

TEST_F(FilterActions, ReportModeForwardsUnchangedButCounts) {
    const std::string body = R"({"event":"x","distinct_id":"a@b.io","properties":{"email":"a@b.io","k":"phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw"}})";
    auto out = filter(body, "report");
    EXPECT_EQ(out.verdict, V::Unchanged);
    EXPECT_TRUE(out.report_only_hits);
    EXPECT_TRUE(has_audit(out, "person-keys", "properties.email", "report"));
    EXPECT_TRUE(has_audit(out, "no-secrets", "properties.k", "report"));
}

TEST_F(FilterActions, InspectOnlyRejectsInsteadOfRewriting) {
    auto out = filter(R"({"event":"x","properties":{"note":"a@b.io"}})", "webhook");
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 422);
    EXPECT_EQ(out.rule_ids, std::vector<std::string>{"contact"});
    out = filter(R"({"event":"x","properties":{"note":"nothing"}})", "webhook");
    EXPECT_EQ(out.verdict, V::Unchanged);
}

TEST_F(FilterActions, AllowlistDropsUnlistedAndChecksTypes) {
    const std::string body =
        R"({"event":"$screen","distinct_id":"u","properties":{"$screen_name":"Pay","plan":"gold","$session_id":"01983d9b-8639-78fa-ac26-b9e7bf716521","price":"12","secret_note":"x","$app_version":"mail a@b.io"}})";
    auto out = filter(body, "strict");
    ASSERT_EQ(out.verdict, V::Rewritten);
    // plan is not in its enum, price is not a number: both count as unlisted. Listed strings are still scanned.
    EXPECT_EQ(out.body,
              R"({"event":"$screen","distinct_id":"u","properties":{"$screen_name":"Pay","$session_id":"01983d9b-8639-78fa-ac26-b9e7bf716521","$app_version":"mail [redacted:email]"}})");
    EXPECT_TRUE(has_audit(out, "screen-only", "properties.secret_note", "drop"));
    // Events no allowlist names are not restricted.
    out = filter(R"({"event":"other","properties":{"anything":1}})", "strict");
    EXPECT_EQ(out.verdict, V::Unchanged);
    // Glob event names.
    out = filter(R"({"event":"app_opened","properties":{"anything":1}})", "strict");
    EXPECT_EQ(out.body, R"({"event":"app_opened","properties":{}})");
}

TEST_F(FilterActions, AllowlistCanRejectUnlisted) {
    auto out = filter(R"({"event":"e","properties":{"$lib":"web","extra":1}})", "strict_reject");
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.rule_ids, std::vector<std::string>{"nothing-extra"});
}

TEST_F(FilterActions, InvalidJsonIsRejected400) {
    for (const char* bad : {R"({"event":"x",})", R"({"event":"x"} trailing)", R"({"event":01})", R"([1,2)",
                            R"({"event":"x","properties":{"a":tru}})", "\"just a string\"", "42",
                            R"([{"event":"a","properties":{}},"x":{}])", R"({"event":"a","properties":{"n":1:2}})",
                            R"({"event":"a","properties":{"n":"a" "b"}})", R"({"event":"a","properties":{"n":[1,2,]}})",
                            "{\"event\":\"a\",\"properties\":{\"n\":\"line\nbreak\"}}"}) {
        auto out = filter(bad);
        EXPECT_EQ(out.verdict, V::Rejected) << bad;
        EXPECT_EQ(out.status, 400) << bad;
    }
}

TEST_F(FilterActions, UndecodablePassForwardsUnchangedWithAudit) {
    auto out = filter("{not json", "lenient");
    EXPECT_EQ(out.verdict, V::Unchanged);
    ASSERT_EQ(out.audit.size(), 1u);
    EXPECT_EQ(out.audit[0].action, "pass");
}

TEST_F(FilterActions, UnknownProfileIsAServerError) {
    auto out = filter("{}", "missing");
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 500);
}

TEST_F(FilterActions, GzipBodyRewrittenAsPlainJsonAndQueryHintRemoved) {
    // posthog-js legacy: ?compression=gzip-js with a gzip body.
    const std::string gz = read_file(source_path("tests/fixtures/privacy/planted_event.json.gz"));
    ASSERT_FALSE(gz.empty());
    auto out = run(*rules_, "events", gz, "text/plain", "", "compression=gzip-js&ip=1&_=1700000000000", "/e/");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_TRUE(valid_json(out.body));
    EXPECT_THAT(out.body, Not(HasSubstr("olga")));
    EXPECT_TRUE(out.query_changed);
    EXPECT_EQ(out.query, "ip=1&_=1700000000000");
}

}  // namespace
}  // namespace edgeguard::privacy
