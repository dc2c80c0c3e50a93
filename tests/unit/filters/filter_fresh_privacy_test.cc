// The classes of personal data that fresh payloads carried past the shipped rules, and the clean look-alikes
// that must pass untouched: person properties under unlisted keys, keys spelt to dodge the rules, values
// encoded inside strings, phones and cards with dots or mixed separators, integers written as floats,
// EAN-13 barcodes, NaN in /flags bodies, personal data used as object keys in the audit, and
// Content-Encoding: lz64. Every value here is made for these tests (valid checksums, no real person).
#include <gtest/gtest.h>

#include <string>

#include "filters/decode/base64.h"
#include "filters/decode/lz_string.h"
#include "tests/unit/filters/lz_string_compressor.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy {
namespace {

using testing::default_rules;
using testing::run;
using testing::valid_json;
using Verdict = FilterOutput::Verdict;

const RuleSet& rules() {
    static const auto r = default_rules();
    return *r;
}

// One /batch event with `properties` (and optional top-level members) around it.
std::string batch_event(const std::string& properties, const std::string& top = "") {
    return R"({"api_key":"phc_Tq7kC2wXbV9mN4rL8sJ6hG3fD1aZ5yE0uI2oP7cB3xM","batch":[{"event":"$identify",)"
           R"("distinct_id":"0193a1f2-6b7c-7d8e-9f01-23456789abcd",)" +
           top + R"("properties":)" + properties + "}]}";
}

FilterOutput events(const std::string& body) { return run(rules(), "events", body); }

FilterOutput flags(const std::string& body, std::string_view content_type = "application/json") {
    return run(rules(), "flags", body, content_type, "", "v=2", "/flags/");
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

bool audit_has(const FilterOutput& out, const std::string& rule_id, const std::string& path = "") {
    for (const auto& a : out.audit)
        if (a.rule_id == rule_id && (path.empty() || a.path == path)) return true;
    return false;
}

// ---- 1. person properties: allowlist-first ------------------------------------------------------------

TEST(PersonProperties, UnlistedKeysInSetAreDroppedPostHogAndListedKeysPass) {
    const auto out = events(batch_event(
        R"({"$set":{"display_name":"Olga S.","nickname":"olga_s","plan":"pro","$os":"Android","$initial_referrer":"https://ya.ru/"},)"
        R"("$set_once":{"user name":"ivanov_i","$initial_os":"iOS"},"$screen_name":"Profile"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten) << out.error;
    EXPECT_TRUE(valid_json(out.body)) << out.body;
    EXPECT_FALSE(has(out.body, "Olga")) << out.body;
    EXPECT_FALSE(has(out.body, "olga_s")) << out.body;
    EXPECT_FALSE(has(out.body, "ivanov_i")) << out.body;
    EXPECT_TRUE(has(out.body, R"("plan":"pro")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$os":"Android")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$initial_referrer":"https://ya.ru/")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$initial_os":"iOS")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$screen_name":"Profile")")) << out.body;
    EXPECT_TRUE(audit_has(out, "person_properties", "batch[*].properties.$set.nickname"));
    EXPECT_TRUE(audit_has(out, "person-keys", "batch[*].properties.$set.display_name"));
}

TEST(PersonProperties, TopLevelSetAndGroupSetAreAllowlistFirst) {
    const auto out = events(batch_event(R"({"$group_type":"company","$group_key":"acme-42",)"
                                        R"("$group_set":{"name":"Пётр Сидоров","employees":"50-100"}})",
                                        R"("$set":{"first name":"Пётр","$browser":"Chrome"},)"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten) << out.error;
    EXPECT_FALSE(has(out.body, "Пётр")) << out.body;
    EXPECT_FALSE(has(out.body, "employees")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$browser":"Chrome")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$group_key":"acme-42")")) << out.body;
}

TEST(PersonProperties, FlagsPersonAndGroupPropertiesAreAllowlistFirst) {
    // "nаme" is spelt with a Cyrillic а.
    const auto out = flags(
        R"({"token":"phc_Tq7kC2wXbV9mN4rL8sJ6hG3fD1aZ5yE0uI2oP7cB3xM","distinct_id":"u-5521",)"
        R"("person_properties":{"n\u0430me":"Olga","first name":"Olga","plan":"pro","$geoip_city_name":"Kazan"},)"
        R"("groups":{"company":"acme-42"},"group_properties":{"company":{"display_name":"Olga","tier":"gold"}}})");
    ASSERT_EQ(out.verdict, Verdict::Rewritten) << out.error;
    EXPECT_TRUE(valid_json(out.body)) << out.body;
    EXPECT_FALSE(has(out.body, "Olga")) << out.body;
    EXPECT_TRUE(has(out.body, R"("plan":"pro")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$geoip_city_name":"Kazan")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("tier":"gold")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("groups":{"company":"acme-42"})")) << out.body;
}

TEST(PersonProperties, UnlistedPassTurnsItOffAndRejectRefuses) {
    const std::string yaml = R"(version: 1
profiles:
  open:
    person_properties: {unlisted: pass}
    rules:
      - {id: contact, detectors: [email], action: redact}
  closed:
    person_properties: {unlisted: reject, properties: [nickname]}
    rules:
      - {id: contact, detectors: [email], action: redact}
)";
    std::vector<RuleError> errors;
    auto r = RuleSet::load_text(yaml, "inline.yaml", errors);
    ASSERT_TRUE(r);
    const std::string body = batch_event(R"({"$set":{"nickname":"kitty","display_name":"Olga"}})");
    EXPECT_EQ(run(*r, "open", body).verdict, Verdict::Unchanged);
    const auto closed = run(*r, "closed", body);
    EXPECT_EQ(closed.verdict, Verdict::Rejected);
    EXPECT_EQ(closed.status, 422);
    EXPECT_EQ(run(*r, "closed", batch_event(R"({"$set":{"nickname":"kitty"}})")).verdict, Verdict::Unchanged);
}

// ---- 1/5. keys normalised before key rules -------------------------------------------------------------

TEST(KeyForms, CompoundSpacedConfusableAndFullwidthKeysMeetTheRules) {
    const auto out = events(batch_event(
        R"({"userPassword":"Tr0ub4dor&3","billing_phone":"+44 20 7946 0958","customerEmail":"x",)"
        R"("home address":"Baker St 221b","\uFF30\uFF21\uFF33\uFF33\uFF37\uFF2F\uFF32\uFF24":"hunter22",)"
        R"("\u0435mail":"olga","new-password":"s3cr3t-P4ss","plan":"pro"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten) << out.error;
    for (const char* leaked : {"Tr0ub4dor", "7946", "customerEmail", "Baker", "hunter22", "olga", "s3cr3t"})
        EXPECT_FALSE(has(out.body, leaked)) << leaked << " in " << out.body;
    EXPECT_TRUE(has(out.body, R"("plan":"pro")")) << out.body;
}

TEST(KeyForms, LookAlikeKeysPassUntouched) {
    const std::string body = batch_event(
        R"({"phone_model":"Pixel 8","$email_verified":true,"has_phone":true,"is_mobile":false,)"
        R"("email_opened":null,"$os_name":"Android","screen_name":"Checkout","password_reset_sent":false,)"
        R"("$device_name":"husky","addressable_market":"EU","name":"Running shoes","company_inn":"7707083893",)"
        R"("org_address":"Berlin HQ","merchant_tax_id":"DE-884411"})");
    const auto out = events(body);
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.body;
}

// ---- 2. values encoded inside strings ------------------------------------------------------------------

TEST(EncodedValues, Base64EmailIsRedactedWhole) {
    const std::string encoded = base64_encode("olga.smirnova@mail.example.ru");
    const auto out = events(batch_event(R"({"ref":")" + encoded + R"(","plan":"pro"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_FALSE(has(out.body, encoded)) << out.body;
    EXPECT_TRUE(has(out.body, R"("ref":"[redacted:email]")")) << out.body;
}

TEST(EncodedValues, Base64UrlJsonInOAuthStateIsReplacedAndTheUrlKept) {
    const std::string state = base64_encode(R"({"return_to":"/cart","login_hint":"p.sidorov@corp.example"})",
                                            Base64Alphabet::UrlSafe);
    const std::string url = "https://shop.example/oauth/callback?state=" + state + "&lang=ru";
    const auto out = events(batch_event(R"({"$current_url":")" + url + R"("})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_FALSE(has(out.body, state)) << out.body;
    EXPECT_TRUE(has(out.body, "https://shop.example/oauth/callback?state=[redacted:")) << out.body;
    EXPECT_TRUE(has(out.body, "&lang=ru")) << out.body;
}

TEST(EncodedValues, DoublePercentEncodedEmailInUrlIsRedacted) {
    const auto out = events(
        batch_event(R"({"$current_url":"https://shop.example/r?next=%252Fhome&contact=m.ivanova%2540inbox.example"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_FALSE(has(out.body, "m.ivanova")) << out.body;
    EXPECT_TRUE(has(out.body, "next=%252Fhome")) << out.body;
}

TEST(EncodedValues, JsonInsideAStringIsWalkedLikeAnObject) {
    // The inner document's own strings use \u escapes (escaped once more inside the outer string).
    const auto out = events(batch_event(
        R"({"payload":"{\"user\":{\"contact\":\"k.orlova\\u0040mail.example\",\"first name\":\"Ksenia\"},\"theme\":\"dark\"}"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_TRUE(valid_json(out.body)) << out.body;
    EXPECT_FALSE(has(out.body, "k.orlova")) << out.body;
    EXPECT_FALSE(has(out.body, "Ksenia")) << out.body;
    EXPECT_TRUE(has(out.body, R"(\"theme\":\"dark\")")) << out.body;
    EXPECT_TRUE(has(out.body, "[redacted:email]")) << out.body;
}

TEST(EncodedValues, Base64OfAPhoneUnderDistinctIdIsHashedWhole) {
    const std::string encoded = base64_encode("+7 912 345-67-89");
    const auto out = events(R"({"api_key":"phc_Tq7kC2wXbV9mN4rL8sJ6hG3fD1aZ5yE0uI2oP7cB3xM","batch":[{"event":"x",)"
                            R"("distinct_id":")" + encoded + R"(","properties":{}}]})");
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_TRUE(has(out.body, R"("distinct_id":"h1:)")) << out.body;
}

TEST(EncodedValues, CleanEncodedLookAlikesPassUntouched) {
    const std::string clean_b64 = base64_encode("Checkout step two of three, shipping options");
    const std::string clean_state =
        base64_encode(R"({"return_to":"/catalog/shoes","nonce":"8f14e45fceea167a"})", Base64Alphabet::UrlSafe);
    const std::string body = batch_event(
        R"({"note":")" + clean_b64 + R"(","$current_url":"https://shop.example/cb?state=)" + clean_state +
        R"(","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",)"
        R"("settings":"{\"theme\":\"dark\",\"font_size\":14,\"tags\":[\"a\",\"b\"]}",)"
        R"("image":"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",)"
        R"("path":"%252Fcatalog%252Fshoes","ratio":"100%25"})");
    const auto out = events(body);
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.body;
}

TEST(EncodedValues, NestingIsBoundedAndNeverFails) {
    // JSON in a string in a string ... five levels deep: walked three levels, never an error.
    std::string inner = R"({"k":"v"})";
    for (int i = 0; i < 5; ++i) {
        std::string escaped;
        for (char c : inner) {
            if (c == '"' || c == '\\') escaped.push_back('\\');
            escaped.push_back(c);
        }
        inner = R"({"d":")" + escaped + R"("})";
    }
    const auto out = events(batch_event(inner));
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.error;
    // A large base64 value of binary bytes costs one decode and passes.
    std::string bytes(300000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 7919) & 0xff);
    EXPECT_EQ(events(batch_event(R"({"blob":")" + base64_encode(bytes) + R"("})")).verdict, Verdict::Unchanged);
}

// ---- 3. separators ---------------------------------------------------------------------------------------

TEST(Separators, DottedPhonesAndDottedOrMixedCardsAreRedacted) {
    for (const std::string value : {"8.926.418.53.07", "+7.926.418.53.07", "926.418.53.07", "звоните 8.912.345.67.89",
                                    "4532.0126.6473.7826", "5186 8830-0596 1234", "2202-3066 9705 8710"}) {
        const auto out = events(batch_event(R"({"comment":")" + value + R"("})"));
        EXPECT_EQ(out.verdict, Verdict::Rewritten) << value;
        EXPECT_TRUE(has(out.body, "[redacted:")) << value << " -> " << out.body;
    }
}

TEST(Separators, DottedLookAlikesPass) {
    for (const std::string value : {"version 10.4.12.1", "10.7.31.9", "07.12.2026", "1.418.10", "4.12.0.4120031",
                                    "192.168.100.10", "v3.8.2", "2026.12.07", "1299.00", "4532.0126.6473.7827"}) {
        const auto out = events(batch_event(R"({"comment":")" + value + R"("})"));
        EXPECT_EQ(out.verdict, Verdict::Unchanged) << value << " -> " << out.body;
    }
}

// ---- 4. integers written as floats -----------------------------------------------------------------------

TEST(FloatNumbers, IntegersWithZeroFractionOrExponentAreScanned) {
    auto out = events(batch_event(R"({"card":4532012664737826.0,"whatsapp":7.9264185307E10,"price":1299.0})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_TRUE(has(out.body, R"("card":"[redacted:card]")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("whatsapp":"[redacted:phone]")")) << out.body;
    EXPECT_TRUE(has(out.body, R"("price":1299.0)")) << out.body;
    out = events(batch_event(R"({"pan":4.532012664737826e15})"));
    EXPECT_EQ(out.verdict, Verdict::Rewritten);
    EXPECT_FALSE(has(out.body, "4.532012664737826e15")) << out.body;
}

TEST(FloatNumbers, MeasurementsStayNumbers) {
    const auto out = events(batch_event(
        R"({"density":2.625,"lat":55.7558,"big":1.5e300,"ts":1.733560000123E12,"amount":79264185.307,)"
        R"("score":4532012664737826.5,"tiny":7.9264185307E-10,"zero":0.0E12})"));
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.body;
}

// ---- 6. EAN-13 and product codes ------------------------------------------------------------------------

TEST(Barcodes, Ean13ProductCodesPassAsStringsAndNumbers) {
    // Each is a valid EAN-13 that also passes Luhn.
    const auto out = events(batch_event(
        R"({"barcode":"4600112813541","product":{"ean":4609062288638,"gtin":"04609778885602"},)"
        R"("items":[{"sku":"4609778885602"}],"comment":"артикул 4600112813541"})"));
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.body;
}

TEST(Barcodes, ThirteenDigitCardsNeedCardContext) {
    auto out = events(batch_event(R"({"visa":"4556672207310"})"));
    EXPECT_EQ(out.verdict, Verdict::Rewritten) << out.body;
    out = events(batch_event(R"({"comment":"карта 4556 6722 0731 0"})"));
    EXPECT_EQ(out.verdict, Verdict::Rewritten) << out.body;
    out = events(batch_event(R"({"comment":"4556672207310"})"));
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.body;
    // 16 digits are cards under any key.
    out = events(batch_event(R"({"sku":"4532012664737826"})"));
    EXPECT_EQ(out.verdict, Verdict::Rewritten) << out.body;
}

// ---- 7. NaN and Infinity on /flags ----------------------------------------------------------------------

TEST(NonFinite, FlagsAcceptsNaNAndInfinityAndForwardsThemUnchanged) {
    const std::string body =
        R"({"api_key":"phc_Tq7kC2wXbV9mN4rL8sJ6hG3fD1aZ5yE0uI2oP7cB3xM","distinct_id":"u-5521",)"
        R"("person_properties":{"plan":"pro","$geoip_latitude":NaN,"$geoip_accuracy_radius":-Infinity},)"
        R"("flag_keys_to_evaluate":["beta"],"s":"NaN inside a string"})";
    auto out = flags(body);
    EXPECT_EQ(out.verdict, Verdict::Unchanged) << out.error;
    const std::string with_email =
        R"({"api_key":"phc_x","distinct_id":"u-5521","person_properties":{"$geoip_latitude":NaN,)"
        R"("email":"p.sidorov@corp.example","$geoip_longitude":+Infinity}})";
    out = flags(with_email);
    ASSERT_EQ(out.verdict, Verdict::Rewritten) << out.error;
    EXPECT_TRUE(has(out.body, R"("$geoip_latitude":NaN)")) << out.body;
    EXPECT_TRUE(has(out.body, R"("$geoip_longitude":+Infinity)")) << out.body;
    EXPECT_FALSE(has(out.body, "sidorov")) << out.body;
}

TEST(NonFinite, OtherProfilesStillRefuseThem) {
    const auto out = events(batch_event(R"({"score":NaN})"));
    EXPECT_EQ(out.verdict, Verdict::Rejected);
    EXPECT_EQ(out.status, 400);
}

// ---- 8. the audit never carries personal data in keys ---------------------------------------------------

TEST(AuditKeys, KeysThatDetectorsMatchAppearAsStar) {
    const auto out = events(batch_event(
        R"({"saved_cards":{"4532012664737826":{"exp":"12/29"}},"by_phone":{"79264185307":1},)"
        R"("inn_map":{"525677893756":"x"},"ibans":{"DE20370400442045543072":true},"email":"x@y.example"})"));
    ASSERT_EQ(out.verdict, Verdict::Rewritten);
    for (const auto& a : out.audit) {
        for (const char* data : {"4532012664737826", "79264185307", "525677893756", "DE20370400442045543072"})
            EXPECT_FALSE(has(a.path, data)) << a.path;
    }
    EXPECT_TRUE(audit_has(out, "payment-data", "batch[*].properties.saved_cards.*")) << out.body;
}

// ---- 9. Content-Encoding: lz64 --------------------------------------------------------------------------

TEST(Lz64Header, ContentEncodingLz64IsDecodedLikeTheQueryHint) {
    const std::string json = batch_event(R"({"note":"write to o.petrova@mail.example","plan":"pro"})");
    const std::string lz = lz_string_compress_to_base64(std::string_view(json));
    for (const char* encoding : {"lz64", "lz-string"}) {
        const auto out = run(rules(), "events", lz, "text/plain", encoding, "", "/e/");
        ASSERT_EQ(out.verdict, Verdict::Rewritten) << encoding << ": " << out.error;
        EXPECT_FALSE(has(out.body, "o.petrova")) << out.body;
    }
    const std::string clean = lz_string_compress_to_base64(std::string_view(batch_event(R"({"plan":"pro"})")));
    EXPECT_EQ(run(rules(), "events", clean, "text/plain", "lz64", "", "/e/").verdict, Verdict::Unchanged);
    EXPECT_EQ(run(rules(), "events", clean, "text/plain", "br", "", "/e/").status, 415);
}

}  // namespace
}  // namespace edgeguard::privacy
