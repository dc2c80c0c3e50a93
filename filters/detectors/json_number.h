// JSON numbers that may carry a personal identifier. Detectors read text; a card, phone or national id sent
// as a JSON number ({"card": 4111111111111111, "tel": 79161234567}) is scanned as the digits it is written
// with, but only when its shape allows an identifier at all, so the numbers every event carries cost one
// length test.
#pragma once

#include <cstddef>
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

}  // namespace edgeguard::privacy
