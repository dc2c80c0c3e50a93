#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "filters/path_pattern.h"

namespace edgeguard::privacy {
namespace {

std::vector<PathStep> steps(std::initializer_list<const char*> parts) {
    std::vector<PathStep> out;
    for (const char* p : parts) out.push_back(std::string_view(p) == "[]" ? PathStep{{}, true} : PathStep{p, false});
    return out;
}

bool matches(const char* pattern, std::initializer_list<const char*> path) {
    std::string err;
    int col = 0;
    auto p = PathPattern::parse(pattern, &err, &col);
    EXPECT_TRUE(p) << err;
    if (!p) return false;
    auto s = steps(path);
    return p->matches(s.data(), s.size());
}

TEST(FilterPathPattern, ExactPathMatchesOnlyThatPath) {
    EXPECT_TRUE(matches("properties.$set.email", {"properties", "$set", "email"}));
    EXPECT_FALSE(matches("properties.$set.email", {"properties", "$set_once", "email"}));
    EXPECT_FALSE(matches("properties.$set.email", {"properties", "$set", "email", "x"}));
    EXPECT_FALSE(matches("properties.$set.email", {"$set", "email"}));
}

TEST(FilterPathPattern, KeyNamesCompareCaseInsensitively) {
    EXPECT_TRUE(matches("properties.$set.email", {"Properties", "$SET", "EMail"}));
}

TEST(FilterPathPattern, RecursiveDescentMatchesAnyDepthIncludingZero) {
    EXPECT_TRUE(matches("**.email", {"email"}));
    EXPECT_TRUE(matches("**.email", {"properties", "$set", "email"}));
    EXPECT_TRUE(matches("**.email", {"batch", "[]", "properties", "a", "[]", "email"}));
    EXPECT_FALSE(matches("**.email", {"properties", "email_verified"}));
    EXPECT_TRUE(matches("properties.**.phone", {"properties", "x", "phone"}));
    EXPECT_FALSE(matches("properties.**.phone", {"person_properties", "phone"}));
}

TEST(FilterPathPattern, ArrayStepsMatchOnlyArrayElements) {
    EXPECT_TRUE(matches("properties.items[*].phone", {"properties", "items", "[]", "phone"}));
    EXPECT_FALSE(matches("properties.items[*].phone", {"properties", "items", "phone"}));
    EXPECT_FALSE(matches("properties.items[*].phone", {"properties", "items", "[]", "[]", "phone"}));
}

TEST(FilterPathPattern, WildcardAndRegexSegments) {
    EXPECT_TRUE(matches("properties.*.email", {"properties", "$set", "email"}));
    EXPECT_FALSE(matches("properties.*.email", {"properties", "email"}));
    EXPECT_TRUE(matches("**./^e[-_]?mail$/", {"properties", "E-Mail"}));
    EXPECT_TRUE(matches("**./^e[-_]?mail$/", {"properties", "email"}));
    EXPECT_FALSE(matches("**./^e[-_]?mail$/", {"properties", "email2"}));
}

TEST(FilterPathPattern, QuotedSegmentsMayContainDots) {
    EXPECT_TRUE(matches("properties.\"a.b\"", {"properties", "a.b"}));
    EXPECT_FALSE(matches("properties.\"a.b\"", {"properties", "a", "b"}));
}

TEST(FilterPathPattern, ParseErrorsNameTheColumn) {
    std::string err;
    int col = -1;
    EXPECT_FALSE(PathPattern::parse("properties..email", &err, &col));
    EXPECT_EQ(col, 11);
    EXPECT_FALSE(PathPattern::parse("properties.items[0]", &err, &col));
    EXPECT_NE(err.find("[*]"), std::string::npos);
    EXPECT_FALSE(PathPattern::parse("properties./(unclosed/", &err, &col));
    EXPECT_FALSE(PathPattern::parse("properties.**", &err, &col));
    EXPECT_FALSE(PathPattern::parse("", &err, &col));
    EXPECT_FALSE(PathPattern::parse("prop*", &err, &col));
}

TEST(FilterPathPattern, GlobMatchesEventNames) {
    EXPECT_TRUE(glob_match("*", "$screen"));
    EXPECT_TRUE(glob_match("app_*", "app_opened"));
    EXPECT_FALSE(glob_match("app_*", "$app_opened"));
    EXPECT_TRUE(glob_match("$feature/*", "$feature/new-onboarding"));
    EXPECT_TRUE(glob_match("a?c", "abc"));
    EXPECT_FALSE(glob_match("a?c", "ac"));
}

}  // namespace
}  // namespace edgeguard::privacy
