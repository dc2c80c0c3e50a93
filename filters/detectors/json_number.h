// JSON numbers that may carry a personal identifier. Detectors read text; a card, phone or national id sent
// as a JSON number ({"card": 4111111111111111, "tel": 79161234567}) is scanned as the digits it is written
// with, but only when its shape allows an identifier at all, so the numbers every event carries cost one
// length test.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace edgeguard::privacy {

// The fewest digits a built-in detector reports on their own: a Russian mobile without trunk prefix
// (9xx xxx xx xx). Below: counts, prices in minor units, screen sizes, build numbers such as 20241128.
inline constexpr size_t kMinIdentifierDigits = 10;
// The most: a 19-digit card. Above: big ids and hashes written as integers.
inline constexpr size_t kMaxIdentifierDigits = 19;

// True for a JSON number token that is an integer (no fraction or exponent: "4.1e15" and
// "4111111111111111.0" are measurements, and the same digits in a string are not read as an identifier
// either) of kMinIdentifierDigits..kMaxIdentifierDigits digits. A leading '-' is allowed because the string
// "-79161234567" is read as a phone too.
// Epoch milliseconds, microseconds and nanoseconds (13, 16 and 19 digits starting with 1: 2001..2033) are
// skipped without a scan, because some SDKs put one in every event and no built-in detector reports such a
// string (the only cards starting with 1 have 15 digits; phones and national ids have 10..12). Epoch
// seconds (10 digits) are scanned: a passport number by its key has 10 digits too; the detectors reject them.
inline bool json_integer_may_be_identifier(std::string_view token) {
    if (!token.empty() && token.front() == '-') token.remove_prefix(1);
    const size_t n = token.size();
    if (n < kMinIdentifierDigits || n > kMaxIdentifierDigits) return false;
    if (token.front() == '1' && (n == 13 || n == 16 || n == 19)) return false;
    for (char c : token)
        if (c < '0' || c > '9') return false;
    return true;
}

// A number written with a fraction or an exponent whose value is an integer of kMinIdentifierDigits..
// kMaxIdentifierDigits digits (a card sent as `4111111111111111.0`, a phone as `7.9161234567E10`): true, and
// `digits` gets that integer as json_integer_may_be_identifier would read it (a leading '-' kept, the same
// epoch shapes skipped). Anything else, including a fraction that is not zero, is a measurement: false after
// a length test for the numbers events carry (prices, densities, coordinates).
inline bool json_float_integer_digits(std::string_view token, std::string& digits) {
    size_t i = 0;
    const bool negative = !token.empty() && token[0] == '-';
    if (negative) ++i;
    const size_t int_begin = i;
    while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
    const size_t int_end = i;
    size_t frac_begin = i, frac_end = i;
    if (i < token.size() && token[i] == '.') {
        frac_begin = ++i;
        while (i < token.size() && token[i] >= '0' && token[i] <= '9') ++i;
        frac_end = i;
    }
    long exponent = 0;
    if (i < token.size() && (token[i] == 'e' || token[i] == 'E')) {
        ++i;
        bool exp_negative = false;
        if (i < token.size() && (token[i] == '+' || token[i] == '-')) exp_negative = token[i++] == '-';
        if (i == token.size()) return false;
        for (; i < token.size(); ++i) {
            if (token[i] < '0' || token[i] > '9' || exponent > 1000) return false;
            exponent = exponent * 10 + (token[i] - '0');
        }
        if (exp_negative) exponent = -exponent;
    }
    if (i != token.size() || int_end == int_begin) return false;
    const long int_len = static_cast<long>(int_end - int_begin);
    const long frac_len = static_cast<long>(frac_end - frac_begin);
    // The decimal point moves `exponent` places: the integer part then has int_len + exponent digits.
    const long point = int_len + exponent;
    if (point < static_cast<long>(kMinIdentifierDigits) || point > static_cast<long>(kMaxIdentifierDigits) + 20)
        return false;
    digits.clear();
    if (negative) digits.push_back('-');
    for (long k = 0; k < point; ++k) {
        char c = '0';
        if (k < int_len) c = token[int_begin + static_cast<size_t>(k)];
        else if (k - int_len < frac_len) c = token[frac_begin + static_cast<size_t>(k - int_len)];
        if (c == '0' && digits.size() == (negative ? 1u : 0u)) continue;  // leading zeros
        digits.push_back(c);
    }
    // Whatever lies past the point must be zeros.
    for (long k = point; k < int_len + frac_len; ++k) {
        const char c = k < int_len ? token[int_begin + static_cast<size_t>(k)]
                                   : token[frac_begin + static_cast<size_t>(k - int_len)];
        if (c != '0') return false;
    }
    return json_integer_may_be_identifier(digits);
}

}  // namespace edgeguard::privacy
