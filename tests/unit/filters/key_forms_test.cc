// The normalised forms of object keys that key rules also compare (filters/key_forms.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "filters/key_forms.h"

namespace edgeguard::privacy {
namespace {

std::vector<std::string> forms_of(std::string_view key) {
    std::vector<std::string> out;
    append_key_forms(key, out);
    return out;
}

bool has_form(std::string_view key, const std::string& form) {
    const auto f = forms_of(key);
    return std::find(f.begin(), f.end(), form) != f.end();
}

TEST(KeyForms, WordsAreSplitAtCamelCaseSeparatorsAndSpaces) {
    EXPECT_TRUE(has_form("userPassword", "user_password"));
    EXPECT_TRUE(has_form("userPassword", "password"));
    EXPECT_TRUE(has_form("user_password", "password"));
    EXPECT_TRUE(has_form("first name", "first_name"));
    EXPECT_TRUE(has_form("first name", "name"));
    EXPECT_TRUE(has_form("billing-phone", "phone"));
    EXPECT_TRUE(has_form("XMLHttpRequest", "xml_http_request"));
    EXPECT_TRUE(has_form("customerFirstName", "first_name"));
    EXPECT_TRUE(has_form("addressLine1", "address_line1"));
}

// The build links ICU with only the data items key forms read (cmake/icu_static.cmake): each must open.
TEST(KeyForms, IcuDataHoldsWhatTheNormaliserAndSpoofCheckerRead) {
    EXPECT_EQ(key_forms_unavailable(), "");
}

TEST(KeyForms, NfkcAndConfusableSkeletonsReadLookAlikesAsAscii) {
    EXPECT_TRUE(has_form("n\xD0\xB0me", "name"));                  // Cyrillic а
    EXPECT_TRUE(has_form("\xD0\x95MAIL", "email"));                // Cyrillic Е
    EXPECT_TRUE(has_form("\xEF\xBC\xB0\xEF\xBC\xA1SS", "pass"));   // fullwidth P A
    EXPECT_TRUE(has_form("p\xCE\xBF\x73\x74\x61l_code", "postal_code"));  // Greek ο
    // A word in its own script keeps its letters too, for rules written in that script.
    EXPECT_TRUE(has_form("\xD0\xB4\xD0\xB0\xD1\x82\xD0\xB0 \xD1\x80\xD0\xBE\xD0\xB6\xD0\xB4\xD0\xB5\xD0\xBD\xD0\xB8\xD1\x8F",
                         "\xD0\xB4\xD0\xB0\xD1\x82\xD0\xB0_\xD1\x80\xD0\xBE\xD0\xB6\xD0\xB4\xD0\xB5\xD0\xBD\xD0\xB8\xD1\x8F"));
}

TEST(KeyForms, NoTailsForPostHogKeysOrganisationsAndNoFormsForPlainOrOwnKeys) {
    EXPECT_TRUE(forms_of("email").empty());
    EXPECT_TRUE(forms_of("Email").empty());  // case alone is handled by case-insensitive matching
    EXPECT_FALSE(has_form("$os_name", "name"));
    EXPECT_TRUE(has_form("$os_name", "os_name"));
    EXPECT_FALSE(has_form("company_inn", "inn"));
    EXPECT_FALSE(has_form("merchantPhone", "phone"));
    EXPECT_FALSE(has_form("phone_model", "phone"));  // only tails: the first word qualifies
    EXPECT_TRUE(forms_of("ip_address").empty());
    EXPECT_TRUE(forms_of("[redacted:email]").empty());
    EXPECT_TRUE(forms_of(std::string(300, 'a') + "_b").empty());
}

}  // namespace
}  // namespace edgeguard::privacy
