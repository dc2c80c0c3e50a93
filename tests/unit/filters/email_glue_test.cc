// Addresses glued to a following address (filtering twice must equal filtering once). An address
// rejected only because the next byte is a word byte must not be left behind when the address it is glued
// to is redacted: the redaction unglues it and a second pass would redact it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "filter_test_support.h"
#include "filters/detectors/registry.h"

namespace edgeguard::privacy {
namespace {

std::vector<DetectorMatch> email_matches(std::string_view text) {
    static const DetectorSet set = DetectorSet::builtin();
    std::vector<DetectorMatch> all, emails;
    set.scan(text, DetectorContext{}, all);
    for (const DetectorMatch& m : all)
        if (m.detector == "email") emails.push_back(m);
    return emails;
}

std::string span_of(std::string_view text, const DetectorMatch& m) {
    return std::string(text.substr(m.begin, m.end - m.begin));
}

TEST(EmailGlue, GluedAddressGoesWithTheAddressItIsGluedTo) {
    struct Case {
        const char* text;
        const char* span;
    };
    for (const Case& c :
         {Case{"k@a.co8@e.om", "k@a.co8@e.om"}, Case{"a@b.co1@c.io", "a@b.co1@c.io"},
          Case{"see x@y.zz9@w.org now", "x@y.zz9@w.org"},
          // "x@y.z" is no address (one-letter top level), so only "y.z9@w.org" is one.
          Case{"x@y.z9@w.org", "y.z9@w.org"}, Case{"a@b.co1@c.io2@d.org", "a@b.co1@c.io2@d.org"}}) {
        const auto m = email_matches(c.text);
        ASSERT_EQ(m.size(), 1u) << c.text;
        EXPECT_EQ(span_of(c.text, m[0]), c.span) << c.text;
    }
}

TEST(EmailGlue, GluedAddressAloneIsStillNotAnAddress) {
    // Glued to plain text (not to an address) or to a look-alike, nothing is redacted, so nothing unglues.
    for (const char* text : {"k@a.co8", "k@a.co8 and", "k@a.co8@x.png", "a@b.co@c.io", "k@a.co8x"}) {
        EXPECT_TRUE(email_matches(text).empty()) << text;
    }
}

TEST(EmailGlue, AddressesSeparatedByABoundaryStaySeparate) {
    const std::string text = "a@b.co, 8@e.om";
    const auto m = email_matches(text);
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(span_of(text, m[0]), "a@b.co");
    EXPECT_EQ(span_of(text, m[1]), "8@e.om");
}

class EmailGlueThroughFilter : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!std::ifstream(testing::source_path("conf/privacy.yaml")))
            GTEST_SKIP() << "conf/privacy.yaml absent";
        rules_ = testing::default_rules();
        ASSERT_TRUE(rules_);
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(EmailGlueThroughFilter, FlagsBodyFilteredTwiceEqualsOnce) {
    struct Case {
        const char* body;
        bool every_at_redacted;
    };
    for (const Case& c :
         {Case{R"({"k@a.co8@e.om":{}})", true}, Case{R"({"a@b.co1@c.io":{}})", true},
          Case{R"({"x@y.zz9@w.org":{}})", true}, Case{R"({"x@y.z9@w.org":{}})", false},
          Case{R"({"distinct_id":"u1","person_properties":{"note":"k@a.co8@e.om"}})", true}}) {
        const FilterOutput first =
            testing::run(*rules_, "flags", c.body, "application/json", "", "", "/flags/");
        ASSERT_EQ(first.verdict, FilterOutput::Verdict::Rewritten) << c.body << ": " << first.error;
        if (c.every_at_redacted) {
            EXPECT_EQ(first.body.find('@'), std::string::npos) << c.body << " -> " << first.body;
        }
        const FilterOutput second =
            testing::run(*rules_, "flags", first.body, "application/json", "", "", "/flags/");
        EXPECT_EQ(second.verdict, FilterOutput::Verdict::Unchanged) << first.body << " -> " << second.body;
    }
}

}  // namespace
}  // namespace edgeguard::privacy
