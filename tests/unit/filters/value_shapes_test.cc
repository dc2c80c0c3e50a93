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

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), read one byte at a time.
bool iso_timestamp_by_bytes(std::string_view s) {
    auto digits = [&](size_t at, size_t n) {
        if (at + n > s.size()) return false;
        for (size_t i = at; i < at + n; ++i)
            if (s[i] < '0' || s[i] > '9') return false;
        return true;
    };
    if (s.size() < 20 || s.size() > 35) return false;
    if (!digits(0, 4) || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) || s[10] != 'T' ||
        !digits(11, 2) || s[13] != ':' || !digits(14, 2) || s[16] != ':' || !digits(17, 2))
        return false;
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        const size_t start = ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i - start > 9) return false;
    }
    if (i < s.size() && s[i] == 'Z') return i + 1 == s.size();
    return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2) && s[i + 3] == ':' &&
           digits(i + 4, 2);
}

TEST(ValueShapes, TimestampAgreesWithBytesForEverySingleByteChange) {
    const std::string stamps[] = {"2026-11-27T10:00:01.123Z", "2026-11-27T10:00:01Z",
                                  "2026-11-27T10:00:01+03:00", "0000-00-00T00:00:00.000000000-00:00",
                                  "9999-99-99T99:99:99.9Z"};
    size_t accepted = 0;
    for (const auto& t : stamps) {
        ASSERT_TRUE(is_iso_timestamp(t)) << t;
        for (size_t at = 0; at < t.size(); ++at) {
            for (int b = 0; b < 256; ++b) {
                std::string m = t;
                m[at] = static_cast<char>(b);
                ASSERT_EQ(is_iso_timestamp(m), iso_timestamp_by_bytes(m)) << "byte " << at << " = " << b;
                accepted += is_iso_timestamp(m);
            }
            std::string shorter = t;
            shorter.erase(at, 1);
            ASSERT_EQ(is_iso_timestamp(shorter), iso_timestamp_by_bytes(shorter)) << shorter;
        }
    }
    EXPECT_GT(accepted, 5u * 14 * 10);  // the fourteen digits of the date and time accept ten bytes each
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
