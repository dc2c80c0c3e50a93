// The walker's byte-level shape tests (filters/walker/value_shapes.h) decide that a value is never scanned,
// so each must agree exactly with the plain reading it stands for: is_uuid with a byte-by-byte check,
// raw_never_personal_shape with is_uuid / is_iso_timestamp on the unescaped value, and
// number_too_short_for_identifier with the json_number.h readings it lets the walk skip.
#include "filters/walker/value_shapes.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

#include "filters/detectors/json_number.h"

namespace edgeguard::privacy::walk {
namespace {

bool uuid_by_bytes(std::string_view s) {
    if (s.size() != 36) return false;
    for (size_t i = 0; i < 36; ++i) {
        const char c = s[i];
        const bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (dash_position ? c != '-' : !hex) return false;
    }
    return true;
}

// `s` as a JSON string's content in a text followed by the padding every walked text has.
std::string padded_json_string(const std::string& s) {
    std::string text = "\"" + s + "\"";
    text.append(simdjson::SIMDJSON_PADDING, '\0');
    return text;
}

TEST(ValueShapes, UuidAgreesWithBytesForEverySingleByteChange) {
    const std::string uuids[] = {
        "01983d9b-8639-78fa-ac26-b9e7bf716521", "01983D9B-8639-78FA-AC26-B9E7BF716521",
        "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff"};
    size_t accepted = 0;
    for (const auto& u : uuids) {
        ASSERT_TRUE(is_uuid(u)) << u;
        for (size_t at = 0; at < u.size(); ++at) {
            for (int b = 0; b < 256; ++b) {
                std::string m = u;
                m[at] = static_cast<char>(b);
                ASSERT_EQ(is_uuid(m), uuid_by_bytes(m)) << "byte " << at << " = " << b;
                accepted += is_uuid(m);
            }
        }
    }
    EXPECT_GT(accepted, 4u * 32 * 22);  // the hex positions accept 22 bytes each
    EXPECT_FALSE(is_uuid("01983d9b-8639-78fa-ac26-b9e7bf71652"));
    EXPECT_FALSE(is_uuid("01983d9b-8639-78fa-ac26-b9e7bf7165210"));
}

TEST(ValueShapes, RawShapeIsTheShapeOfTheUnescapedValue) {
    const std::string values[] = {
        "01983d9b-8639-78fa-ac26-b9e7bf716521",
        "01983d9b-8639-78fa-ac26-b9e7bf71652g",
        "01983d9b-8639-78fa-ac26-b9e7bf716521x",
        "01983d9b-8639-78fa-ac26-b9e7bf71652\\u0031",
        "2026-11-27T10:00:01.123Z",
        "2026-11-27T10:00:01+03:00",
        "2026-11-27T10:00:01Z +79161234567",
        "2026-11-27T10:00:01.1234567891Z",
        "2026-11-27T10:00:01.123Z\\u0020",
        "2026-11-27T10:00:01\\u002e123Z",
        "2026-11-27 10:00:01",
        "",
        "short",
    };
    for (const auto& v : values) {
        const std::string text = padded_json_string(v);
        const char* content = text.data() + 1;
        const char* limit = text.data() + v.size() + 2;
        const size_t n = raw_never_personal_shape(content, limit);
        const bool escaped = v.find('\\') != std::string::npos;
        const bool shape = !escaped && (is_uuid(v) || is_iso_timestamp(v));
        EXPECT_EQ(n != 0, shape) << v;
        if (shape) {
            EXPECT_EQ(n, v.size()) << v;
        }
    }
}

TEST(ValueShapes, ShortNumbersAreNeverReadAsIdentifiers) {
    std::mt19937_64 rnd(7);
    const std::string alphabet = "0123456789-.eE+";
    size_t short_ones = 0;
    std::string digits;
    for (int i = 0; i < 200000; ++i) {
        std::string token;
        const size_t n = 1 + rnd() % 14;
        for (size_t k = 0; k < n; ++k) token += alphabet[rnd() % (k == 0 ? 11 : alphabet.size())];
        if (!number_too_short_for_identifier(token)) continue;
        ++short_ones;
        ASSERT_FALSE(json_integer_may_be_identifier(token)) << token;
        ASSERT_FALSE(json_float_integer_digits(token, digits)) << token;
    }
    EXPECT_GT(short_ones, 10000u);
    EXPECT_FALSE(number_too_short_for_identifier("79161e6"));  // an exponent reaches ten digits
    EXPECT_FALSE(number_too_short_for_identifier("7916123456"));
    EXPECT_TRUE(number_too_short_for_identifier("1299.0"));
}

}  // namespace
}  // namespace edgeguard::privacy::walk
