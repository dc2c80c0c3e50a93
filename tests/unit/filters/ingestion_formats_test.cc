// The wire formats beside PostHog's JSON events: the strict multipart/form-data decoder and its re-emission,
// the LLM analytics multipart filter, and the OTLP filter's mapping of the walker's edits back onto JSON and
// protobuf exports (value rewrites, dropped attributes, keys that carry data).
#include <gtest/gtest.h>
#include <logs.pb.h>
#include <simdjson.h>

#include <string>

#include "filters/decode/multipart.h"
#include "filters/filter_api.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy {
namespace {

std::string part(std::string_view name, std::string_view type, std::string_view body, std::string_view b = "XyZ") {
    std::string out = "--" + std::string(b) + "\r\nContent-Disposition: form-data; name=\"" + std::string(name) + "\"\r\n";
    if (!type.empty()) out += "Content-Type: " + std::string(type) + "\r\n";
    return out + "\r\n" + std::string(body) + "\r\n";
}

DecodeError error_of(const DecodeResult<MultipartBody>& r) {
    return std::holds_alternative<DecodeError>(r) ? std::get<DecodeError>(r) : DecodeError{0, "", ""};
}

TEST(Multipart, BoundaryComesFromTheContentType) {
    EXPECT_EQ(std::get<std::string_view>(multipart_boundary("multipart/form-data; boundary=XyZ")), "XyZ");
    EXPECT_EQ(std::get<std::string_view>(multipart_boundary("Multipart/Form-Data;boundary=\"a b'c\"")), "a b'c");
    for (const char* bad : {"application/json", "multipart/form-data", "multipart/mixed; boundary=x",
                            "multipart/form-data; boundary=", "multipart/form-data; boundary=\"a\\\"b\"",
                            "multipart/form-data; boundary=x; boundary=y",
                            "multipart/form-data; boundary=\"ends in space \""}) {
        EXPECT_TRUE(std::holds_alternative<DecodeError>(multipart_boundary(bad))) << bad;
    }
}

TEST(Multipart, PartsAreViewsAndReEmissionKeepsEveryOtherByte) {
    const std::string body = part("event", "application/json", "{\"a\":1}") + part("blob", "text/plain", "hello\r\nworld") +
                             part("last", "", "") + "--XyZ--\r\n";
    auto r = decode_multipart(body, "XyZ", MultipartLimits{});
    ASSERT_TRUE(std::holds_alternative<MultipartBody>(r)) << error_of(r).message;
    const auto& mp = std::get<MultipartBody>(r);
    ASSERT_EQ(mp.parts.size(), 3u);
    EXPECT_EQ(mp.parts[0].name, "event");
    EXPECT_EQ(mp.parts[1].body, "hello\r\nworld");
    EXPECT_EQ(mp.parts[1].content_type, "text/plain");
    EXPECT_EQ(mp.parts[2].body, "");
    std::vector<PartReplacement> edits(3);
    edits[1] = {PartReplacement::Kind::Replace, "bye"};
    edits[2] = {PartReplacement::Kind::Remove, {}};
    const std::string out = std::get<std::string>(reencode_multipart(body, mp, edits));
    EXPECT_EQ(out, part("event", "application/json", "{\"a\":1}") + part("blob", "text/plain", "bye") + "--XyZ--\r\n");
    edits[1] = {PartReplacement::Kind::Replace, "x\r\n--XyZ--"};
    EXPECT_TRUE(std::holds_alternative<DecodeError>(reencode_multipart(body, mp, edits)));
}

TEST(Multipart, AnythingAnotherParserCouldReadDifferentlyIsRefused) {
    const std::string ok = part("event", "application/json", "{}") + "--XyZ--";
    ASSERT_TRUE(std::holds_alternative<MultipartBody>(decode_multipart(ok, "XyZ", MultipartLimits{})));
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"preamble", "junk\r\n" + ok},
        {"padding after the delimiter", "--XyZ \r\n" + ok.substr(7)},
        {"no close delimiter", part("event", "", "{}")},
        {"epilogue", ok + "\r\nmore"},
        {"duplicate name", part("a", "", "1") + part("a", "", "2") + "--XyZ--"},
        {"no name", "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--"},
        {"name*", "--XyZ\r\nContent-Disposition: form-data; name=a; name*=utf-8''b\r\n\r\nx\r\n--XyZ--"},
        {"not form-data", "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nx\r\n--XyZ--"},
        {"two dispositions", "--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Disposition: form-data; "
                             "name=b\r\n\r\nx\r\n--XyZ--"},
        {"bare LF", "--XyZ\r\nContent-Disposition: form-data; name=a\nX: y\r\n\r\nx\r\n--XyZ--"},
        {"folded header", "--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--XyZ--"},
        {"transfer encoding", "--XyZ\r\nContent-Disposition: form-data; name=a\r\nContent-Transfer-Encoding: "
                              "base64\r\n\r\neA==\r\n--XyZ--"},
        {"nested multipart", part("a", "multipart/mixed; boundary=in", "--in--") + "--XyZ--"},
        {"escaped name", "--XyZ\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\nx\r\n--XyZ--"},
        {"body starting with the delimiter", part("a", "", "--XyZ\": x") + "--XyZ--"},
    };
    for (const auto& [what, body] : cases) {
        const DecodeError e = error_of(decode_multipart(body, "XyZ", MultipartLimits{}));
        EXPECT_EQ(e.status, 400) << what;
        EXPECT_EQ(e.message.find("XyZ"), std::string::npos) << what;
    }
}

TEST(Multipart, CapsOnPartsSizesAndHeaders) {
    MultipartLimits small;
    small.max_parts = 2;
    small.max_part_bytes = 8;
    small.max_total_bytes = 12;
    small.max_headers = 2;
    EXPECT_EQ(error_of(decode_multipart(part("a", "", "1") + part("b", "", "2") + part("c", "", "3") + "--XyZ--",
                                        "XyZ", small)).status, 400);
    EXPECT_EQ(error_of(decode_multipart(part("a", "", "123456789") + "--XyZ--", "XyZ", small)).status, 413);
    EXPECT_EQ(error_of(decode_multipart(part("a", "", "1234567") + part("b", "", "1234567") + "--XyZ--", "XyZ",
                                        small)).status, 413);
    EXPECT_EQ(error_of(decode_multipart("--XyZ\r\nContent-Disposition: form-data; name=a\r\nA: 1\r\nB: 2\r\n\r\n"
                                        "x\r\n--XyZ--", "XyZ", small)).status, 400);
}

class IngestionFilter : public ::testing::Test {
  protected:
    void SetUp() override {
        testing::set_test_hash_keys();
        std::vector<RuleError> errors;
        rules_ = RuleSet::load_text(R"(version: 1
hash_key: {id: h1, env: EDGEGUARD_TEST_HASH_KEY}
profiles:
  fmt:
    rules:
      - id: drop-email-attr
        paths: ['**."user.email"']
        action: drop
      - id: hash-user
        paths: ['**."enduser.id"']
        action: hash
      - id: contact
        detectors: [email]
        action: redact
)", "inline.yaml", errors);
        ASSERT_TRUE(rules_) << (errors.empty() ? "" : errors[0].message);
    }
    FilterOutput run(std::string_view path, std::string_view type, std::string_view body) {
        FilterInput in;
        in.method = "POST";
        in.path = path;
        in.content_type = type;
        in.body = body;
        return rules_->apply("fmt", in);
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(IngestionFilter, OtlpJsonDropsAttributesWithTheirSeparatorsAndRewritesOnlyChangedValues) {
    const std::string body =
        R"({"resourceLogs":[{"resource":{"attributes":[{"key":"user.email","value":{"stringValue":"a@b.co"}},)"
        R"({"key":"service.name","value":{"stringValue":"api"}},{"value":{"intValue":"5"},"key":"user.email"}]},)"
        R"("scopeLogs":[{"logRecords":[{"body":{"stringValue":"mail a@b.co now"},"attributes":[)"
        R"({"key":"k","value":{"stringValue":"v"}},{"key":"user.email","value":{"kvlistValue":{"values":[]}}},)"
        R"({"key":"enduser.id","value":{"intValue":42}},{"key":"x@y.co","value":{"boolValue":true}}],"unknown":[1,2]}]}]}]})";
    const FilterOutput out = run("/i/v1/logs", "application/json", body);
    ASSERT_EQ(out.verdict, FilterOutput::Verdict::Rewritten) << out.error;
    EXPECT_EQ(out.content_type, "application/json");
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    ASSERT_FALSE(p.parse(out.body).get(doc)) << out.body;
    EXPECT_EQ(out.body.find("a@b.co"), std::string::npos) << out.body;
    EXPECT_EQ(out.body.find("user.email"), std::string::npos) << out.body;
    EXPECT_EQ(out.body.find("x@y.co"), std::string::npos) << out.body;  // a key that is data: dropped
    EXPECT_NE(out.body.find(R"("resource":{"attributes":[{"key":"service.name","value":{"stringValue":"api"}}]})"),
              std::string::npos) << out.body;
    EXPECT_NE(out.body.find(R"("body":{"stringValue":"mail [redacted:email] now"})"), std::string::npos) << out.body;
    EXPECT_NE(out.body.find(R"({"key":"enduser.id","value":{"stringValue":"h1:)"), std::string::npos) << out.body;
    EXPECT_NE(out.body.find(R"([{"key":"k","value":{"stringValue":"v"}},{"key":"enduser.id")"), std::string::npos)
        << out.body;
    EXPECT_NE(out.body.find(R"("unknown":[1,2])"), std::string::npos);
    const FilterOutput again = run("/i/v1/logs", "application/json", out.body);
    EXPECT_EQ(again.verdict, FilterOutput::Verdict::Unchanged) << again.body << "\n" << out.body;
}

TEST_F(IngestionFilter, OtlpJsonNullIsAnAbsentField) {
    const std::string body = R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":null,"attributes":[)"
                             R"({"key":"user.email","value":null},{"key":"k","value":{"stringValue":"a@b.co"}}]}]}]}]})";
    const FilterOutput out = run("/i/v1/traces", "application/json", body);
    ASSERT_EQ(out.verdict, FilterOutput::Verdict::Rewritten) << out.status << " " << out.error;
    EXPECT_EQ(out.body, R"({"resourceSpans":[{"scopeSpans":[{"spans":[{"name":null,"attributes":[)"
                        R"({"key":"k","value":{"stringValue":"[redacted:email]"}}]}]}]}]})");
}

TEST_F(IngestionFilter, OtlpProtobufKeepsUnknownFieldsAndDropsAttributes) {
    opentelemetry::proto::logs::v1::ExportLogsServiceRequest req;
    auto* lr = req.add_resource_logs()->add_scope_logs()->add_log_records();
    lr->mutable_body()->set_string_value("reset for a@b.co");
    auto* a = lr->add_attributes();
    a->set_key("user.email");
    a->mutable_value()->set_string_value("a@b.co");
    auto* b = lr->add_attributes();
    b->set_key("keep");
    b->mutable_value()->set_int_value(7);
    std::string body = req.SerializeAsString();
    body += std::string("\xa2\x06\x03xyz", 6);  // field 100, length-delimited: unknown to the definitions
    const FilterOutput out = run("/i/v1/logs", "application/x-protobuf", body);
    ASSERT_EQ(out.verdict, FilterOutput::Verdict::Rewritten) << out.status << " " << out.error;
    opentelemetry::proto::logs::v1::ExportLogsServiceRequest back;
    ASSERT_TRUE(back.ParseFromString(out.body));
    const auto& rec = back.resource_logs(0).scope_logs(0).log_records(0);
    EXPECT_EQ(rec.body().string_value(), "reset for [redacted:email]");
    ASSERT_EQ(rec.attributes_size(), 1);
    EXPECT_EQ(rec.attributes(0).key(), "keep");
    EXPECT_NE(out.body.find("xyz"), std::string::npos);
}

TEST_F(IngestionFilter, AiMultipartRewritesOnlyTheChangedPartsAndDropsADroppedBlob) {
    const std::string event = R"({"event":"$ai_generation","distinct_id":"u1","properties":{"$ai_model":"m"}})";
    const std::string body = part("event", "application/json", event) +
                             part("event.properties.$ai_input", "text/plain", "write to a@b.co") +
                             part("event.properties.user.email", "text/plain", "x") + "--XyZ--\r\n";
    // A blob name with a dot is refused, as capture refuses it.
    EXPECT_EQ(run("/i/v0/ai", "multipart/form-data; boundary=XyZ", body).status, 400);
    const std::string good = part("event", "application/json", event) +
                             part("event.properties.$ai_input", "text/plain", "write to \"a@b.co\"") +
                             part("event.properties.$ai_output_choices", "application/json", "[\"ok\"]") +
                             "--XyZ--\r\n";
    const FilterOutput out = run("/i/v0/ai", "multipart/form-data; boundary=XyZ", good);
    ASSERT_EQ(out.verdict, FilterOutput::Verdict::Rewritten) << out.error;
    EXPECT_EQ(out.body, part("event", "application/json", event) +
                            part("event.properties.$ai_input", "text/plain", "write to \"[redacted:email]\"") +
                            part("event.properties.$ai_output_choices", "application/json", "[\"ok\"]") +
                            "--XyZ--\r\n");
    EXPECT_EQ(out.content_type, "multipart/form-data; boundary=XyZ");
}

}  // namespace
}  // namespace edgeguard::privacy
