#include "filters/detectors/validators.h"

#include <openssl/sha.h>

#include <array>
#include <cstdint>
#include <cstring>

namespace edgeguard::privacy {
namespace {

constexpr bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
constexpr bool is_separator(char c) {
    return c == ' ' || c == '-';
}

// Copies the digits of `text` into `digits`; fails on any other character except separators, or on overflow.
template <size_t N>
bool collect_digits(std::string_view text, std::array<uint8_t, N>& digits, size_t& count) {
    count = 0;
    for (char c : text) {
        if (is_digit(c)) {
            if (count == N) return false;
            digits[count++] = static_cast<uint8_t>(c - '0');
        } else if (!is_separator(c)) {
            return false;
        }
    }
    return true;
}

bool luhn_digits(const uint8_t* d, size_t n) {
    unsigned sum = 0;
    for (size_t i = 0; i < n; ++i) {
        unsigned v = d[n - 1 - i];
        if (i & 1) {
            v *= 2;
            if (v > 9) v -= 9;
        }
        sum += v;
    }
    return n > 0 && sum % 10 == 0;
}

unsigned prefix_value(const uint8_t* d, size_t digits) {
    unsigned v = 0;
    for (size_t i = 0; i < digits; ++i) v = v * 10 + d[i];
    return v;
}

// Issuer ranges by leading digits and the lengths each network issues. Prefix 1 is UATP only (15 digits),
// which is what keeps epoch-millisecond and microsecond timestamps out.
struct IinRange {
    uint8_t prefix_digits;
    unsigned low;
    unsigned high;
    uint8_t min_len;
    uint8_t max_len;
};
constexpr IinRange kIinRanges[] = {
    {1, 4, 4, 13, 19},        // Visa (13, 16, 19 in practice)
    {2, 51, 55, 16, 16},      // Mastercard
    {4, 2221, 2720, 16, 16},  // Mastercard 2-series
    {4, 2200, 2204, 16, 19},  // Mir
    {2, 34, 34, 15, 15},      // American Express
    {2, 37, 37, 15, 15},      // American Express
    {3, 300, 305, 14, 19},    // Diners Club International
    {2, 36, 36, 14, 19},      // Diners Club International
    {2, 38, 39, 14, 19},      // Diners Club
    {4, 3528, 3589, 16, 19},  // JCB
    {4, 6011, 6011, 16, 19},  // Discover
    {3, 644, 649, 16, 19},    // Discover
    {2, 65, 65, 16, 19},      // Discover
    {2, 62, 62, 16, 19},      // UnionPay
    {2, 81, 81, 16, 19},      // UnionPay 81xx
    {2, 50, 50, 12, 19},      // Maestro
    {2, 56, 58, 12, 19},      // Maestro
    {2, 63, 63, 12, 19},      // Maestro
    {2, 67, 67, 12, 19},      // Maestro
    {1, 1, 1, 15, 15},        // UATP
};

int iban_country_length(char a, char b) {
    struct Entry {
        char code[3];
        uint8_t length;
    };
    // ISO 13616 registry lengths.
    static constexpr Entry kLengths[] = {
        {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22},
        {"BH", 22}, {"BI", 27}, {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24},
        {"DE", 22}, {"DJ", 27}, {"DK", 18}, {"DO", 28}, {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18},
        {"FK", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23}, {"GL", 18}, {"GR", 27},
        {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26}, {"IT", 27},
        {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
        {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MN", 20}, {"MR", 27},
        {"MT", 31}, {"MU", 30}, {"NI", 28}, {"NL", 18}, {"NO", 15}, {"OM", 23}, {"PK", 24}, {"PL", 28},
        {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22}, {"RU", 33}, {"SA", 24}, {"SC", 31},
        {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"SO", 23}, {"ST", 25}, {"SV", 28},
        {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20}, {"YE", 30},
    };
    for (const Entry& e : kLengths) {
        if (e.code[0] == a && e.code[1] == b) return e.length;
    }
    return -1;
}

char ascii_upper(char c) {
    return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
}

void sha256d(const uint8_t* data, size_t n, uint8_t out[32]) {
    uint8_t first[32];
    SHA256(data, n, first);
    SHA256(first, sizeof first, out);
}

}  // namespace

bool luhn_valid(std::string_view text) {
    std::array<uint8_t, 32> d{};
    size_t n = 0;
    return collect_digits(text, d, n) && luhn_digits(d.data(), n);
}

bool card_number_valid(std::string_view text) {
    std::array<uint8_t, 19> d{};
    size_t n = 0;
    if (!collect_digits(text, d, n) || n < 12 || n > 19) return false;
    bool issuer_ok = false;
    for (const IinRange& r : kIinRanges) {
        unsigned p = prefix_value(d.data(), r.prefix_digits);
        if (p >= r.low && p <= r.high && n >= r.min_len && n <= r.max_len) {
            issuer_ok = true;
            break;
        }
    }
    return issuer_ok && luhn_digits(d.data(), n);
}

bool mod97_valid(std::string_view text) {
    unsigned remainder = 0;
    size_t significant = 0;
    for (char raw : text) {
        if (raw == ' ') continue;
        char c = ascii_upper(raw);
        if (is_digit(c)) {
            remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
        } else if (c >= 'A' && c <= 'Z') {
            remainder = (remainder * 100 + static_cast<unsigned>(c - 'A' + 10)) % 97;
        } else {
            return false;
        }
        ++significant;
    }
    return significant >= 2 && remainder == 1;
}

bool iban_valid(std::string_view text) {
    // Rearranged form: BBAN first, then country code and check digits.
    char compact[40];
    size_t n = 0;
    for (char raw : text) {
        if (raw == ' ') continue;
        if (n == sizeof compact) return false;
        compact[n++] = ascii_upper(raw);
    }
    if (n < 15) return false;
    if (!(compact[0] >= 'A' && compact[0] <= 'Z' && compact[1] >= 'A' && compact[1] <= 'Z' &&
          is_digit(compact[2]) && is_digit(compact[3])))
        return false;
    if (iban_country_length(compact[0], compact[1]) != static_cast<int>(n)) return false;
    char rearranged[40];
    std::memcpy(rearranged, compact + 4, n - 4);
    std::memcpy(rearranged + n - 4, compact, 4);
    return mod97_valid(std::string_view(rearranged, n));
}

bool inn12_valid(std::string_view text) {
    if (text.size() != 12) return false;
    int d[12];
    for (size_t i = 0; i < 12; ++i) {
        if (!is_digit(text[i])) return false;
        d[i] = text[i] - '0';
    }
    static constexpr int kW11[10] = {7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    static constexpr int kW12[11] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    int s11 = 0, s12 = 0;
    for (int i = 0; i < 10; ++i) s11 += kW11[i] * d[i];
    for (int i = 0; i < 11; ++i) s12 += kW12[i] * d[i];
    return s11 % 11 % 10 == d[10] && s12 % 11 % 10 == d[11];
}

bool inn10_valid(std::string_view text) {
    if (text.size() != 10) return false;
    int d[10];
    for (size_t i = 0; i < 10; ++i) {
        if (!is_digit(text[i])) return false;
        d[i] = text[i] - '0';
    }
    static constexpr int kW[9] = {2, 4, 10, 3, 5, 9, 4, 6, 8};
    int s = 0;
    for (int i = 0; i < 9; ++i) s += kW[i] * d[i];
    return s % 11 % 10 == d[9];
}

bool inn_valid(std::string_view text) {
    return inn12_valid(text) || inn10_valid(text);
}

bool snils_valid(std::string_view text) {
    std::array<uint8_t, 11> d{};
    size_t n = 0;
    if (!collect_digits(text, d, n) || n != 11) return false;
    unsigned number = prefix_value(d.data(), 9);
    if (number <= 1001998) return false;  // issued before checksums existed
    unsigned sum = 0;
    for (size_t i = 0; i < 9; ++i) sum += d[i] * static_cast<unsigned>(9 - i);
    unsigned control = sum < 100 ? sum : (sum <= 101 ? 0 : sum % 101);
    if (control == 100) control = 0;
    return control == prefix_value(d.data() + 9, 2);
}

bool base58check_address_valid(std::string_view text) {
    static constexpr char kAlphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    if (text.size() < 26 || text.size() > 35 || (text[0] != '1' && text[0] != '3')) return false;
    // Big-endian base-256 accumulator: a 35-char base58 number fits in 26 bytes.
    uint8_t bytes[32] = {};
    for (char c : text) {
        const char* pos = std::strchr(kAlphabet, c);
        if (c == '\0' || pos == nullptr) return false;
        unsigned carry = static_cast<unsigned>(pos - kAlphabet);
        for (int i = 31; i >= 0; --i) {
            carry += 58u * bytes[i];
            bytes[i] = static_cast<uint8_t>(carry & 0xff);
            carry >>= 8;
        }
        if (carry != 0) return false;
    }
    size_t leading_ones = 0;
    while (leading_ones < text.size() && text[leading_ones] == '1') ++leading_ones;
    size_t first_nonzero = 0;
    while (first_nonzero < 32 && bytes[first_nonzero] == 0) ++first_nonzero;
    size_t decoded_len = leading_ones + (32 - first_nonzero);
    if (decoded_len != 25) return false;  // version byte + 20-byte hash + 4-byte checksum
    uint8_t decoded[25] = {};
    std::memcpy(decoded + leading_ones, bytes + first_nonzero, 32 - first_nonzero);
    uint8_t digest[32];
    sha256d(decoded, 21, digest);
    return std::memcmp(digest, decoded + 21, 4) == 0;
}

bool bech32_address_valid(std::string_view text) {
    static constexpr char kCharset[] = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    if (text.size() < 14 || text.size() > 90) return false;
    bool lower = false, upper = false;
    size_t sep = text.rfind('1');
    if (sep == std::string_view::npos || sep == 0 || sep + 7 > text.size()) return false;
    uint32_t chk = 1;
    auto polymod_step = [&chk](uint32_t value) {
        static constexpr uint32_t kGen[5] = {0x3b6a57b2, 0x26508e6d, 0x1ea119fa, 0x3d4233dd, 0x2a1462b3};
        uint32_t top = chk >> 25;
        chk = ((chk & 0x1ffffff) << 5) ^ value;
        for (int i = 0; i < 5; ++i)
            if ((top >> i) & 1) chk ^= kGen[i];
    };
    for (size_t i = 0; i < sep; ++i) {
        char c = text[i];
        if (c >= 'a' && c <= 'z') lower = true;
        if (c >= 'A' && c <= 'Z') upper = true;
    }
    for (size_t i = 0; i < sep; ++i) polymod_step(static_cast<uint32_t>(text[i] | 0x20) >> 5);
    polymod_step(0);
    for (size_t i = 0; i < sep; ++i) polymod_step(static_cast<uint32_t>(text[i] | 0x20) & 31);
    for (size_t i = sep + 1; i < text.size(); ++i) {
        char c = text[i];
        if (c >= 'a' && c <= 'z') lower = true;
        if (c >= 'A' && c <= 'Z') upper = true;
        const char* pos = std::strchr(kCharset, c | 0x20);
        if (c == '\0' || pos == nullptr) return false;
        polymod_step(static_cast<uint32_t>(pos - kCharset));
    }
    if (lower && upper) return false;
    return chk == 1 || chk == 0x2bc830a3;  // bech32 or bech32m
}

}  // namespace edgeguard::privacy
