#include "filters/decode/base64.h"

#include <array>
#include <cstdint>

namespace edgeguard::privacy {
namespace {

constexpr std::string_view kStandardChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::string_view kUrlSafeChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr uint8_t kInvalid = 0xFF;

using DecodeTable = std::array<uint8_t, 256>;

constexpr DecodeTable make_table(std::string_view chars) {
    DecodeTable t{};
    for (auto& v : t) v = kInvalid;
    for (size_t i = 0; i < chars.size(); ++i) t[static_cast<uint8_t>(chars[i])] = static_cast<uint8_t>(i);
    return t;
}

constexpr DecodeTable kStandardTable = make_table(kStandardChars);
constexpr DecodeTable kUrlSafeTable = make_table(kUrlSafeChars);

}  // namespace

bool base64_decode_into(std::string_view in, Base64Alphabet alphabet, std::string& out) {
    const DecodeTable& table = alphabet == Base64Alphabet::Standard ? kStandardTable : kUrlSafeTable;
    size_t padding = 0;
    while (padding < 2 && padding < in.size() && in[in.size() - 1 - padding] == '=') ++padding;
    if (alphabet == Base64Alphabet::Standard && in.size() % 4 != 0) return false;
    const std::string_view data = in.substr(0, in.size() - padding);
    const size_t tail = data.size() % 4;
    if (tail == 1) return false;
    // Padding, when present, must complete the last quantum exactly.
    if (padding != 0 && (tail + padding) % 4 != 0) return false;

    const size_t start = out.size();
    const size_t tail_bytes = tail == 0 ? 0 : tail - 1;
    out.resize(start + data.size() / 4 * 3 + tail_bytes);
    char* dst = out.data() + start;
    size_t i = 0;
    for (; i + 4 <= data.size(); i += 4) {
        const uint8_t a = table[static_cast<uint8_t>(data[i])], b = table[static_cast<uint8_t>(data[i + 1])],
                      c = table[static_cast<uint8_t>(data[i + 2])],
                      d = table[static_cast<uint8_t>(data[i + 3])];
        if (((a | b | c | d) & 0xC0) != 0) {  // kInvalid has the high bits set
            out.resize(start);
            return false;
        }
        const uint32_t v = (uint32_t{a} << 18) | (uint32_t{b} << 12) | (uint32_t{c} << 6) | d;
        dst[0] = static_cast<char>(v >> 16);
        dst[1] = static_cast<char>((v >> 8) & 0xFF);
        dst[2] = static_cast<char>(v & 0xFF);
        dst += 3;
    }
    if (tail != 0) {
        uint32_t v = 0;
        for (size_t k = 0; k < tail; ++k) {
            const uint8_t x = table[static_cast<uint8_t>(data[i + k])];
            if (x == kInvalid) {
                out.resize(start);
                return false;
            }
            v = (v << 6) | x;
        }
        // tail 2 -> 12 bits carry 1 byte (4 leftover bits); tail 3 -> 18 bits carry 2 bytes (2 leftover).
        const unsigned leftover_bits = tail == 2 ? 4 : 2;
        if ((v & ((1u << leftover_bits) - 1)) != 0) {
            out.resize(start);
            return false;
        }
        v >>= leftover_bits;
        if (tail == 3) *dst++ = static_cast<char>(v >> 8);
        *dst = static_cast<char>(v & 0xFF);
    }
    return true;
}

DecodeResult<std::string> base64_decode(std::string_view in, Base64Alphabet alphabet) {
    std::string out;
    if (!base64_decode_into(in, alphabet, out)) return undecodable("invalid base64");
    return out;
}

std::string base64_encode(std::string_view bytes, Base64Alphabet alphabet) {
    const std::string_view chars = alphabet == Base64Alphabet::Standard ? kStandardChars : kUrlSafeChars;
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= bytes.size(); i += 3) {
        const uint32_t v = (uint32_t{static_cast<uint8_t>(bytes[i])} << 16) |
                           (uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8) |
                           static_cast<uint8_t>(bytes[i + 2]);
        out.push_back(chars[v >> 18]);
        out.push_back(chars[(v >> 12) & 63]);
        out.push_back(chars[(v >> 6) & 63]);
        out.push_back(chars[v & 63]);
    }
    const size_t rest = bytes.size() - i;
    if (rest != 0) {
        uint32_t v = uint32_t{static_cast<uint8_t>(bytes[i])} << 16;
        if (rest == 2) v |= uint32_t{static_cast<uint8_t>(bytes[i + 1])} << 8;
        out.push_back(chars[v >> 18]);
        out.push_back(chars[(v >> 12) & 63]);
        if (rest == 2) out.push_back(chars[(v >> 6) & 63]);
        if (alphabet == Base64Alphabet::Standard) out.append(rest == 2 ? 1 : 2, '=');
    }
    return out;
}

bool looks_like_strict_base64(std::string_view payload) {
    if (payload.empty() || payload.size() % 4 != 0) return false;
    const std::string_view head = payload.substr(0, 128);
    for (const char ch : head) {
        if (ch != '=' && kStandardTable[static_cast<uint8_t>(ch)] == kInvalid) return false;
    }
    return true;
}

}  // namespace edgeguard::privacy
