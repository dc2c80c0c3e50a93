#include "filters/decode/latin1.h"

#include <cstdint>

namespace edgeguard::privacy {

bool latin1_to_bytes_into(std::string_view utf8, std::string& out) {
    const size_t start = out.size();
    out.reserve(start + utf8.size());
    for (size_t i = 0; i < utf8.size(); ++i) {
        const auto b = static_cast<uint8_t>(utf8[i]);
        if (b < 0x80) {
            out.push_back(static_cast<char>(b));
            continue;
        }
        // U+0080..U+00FF are exactly the two-byte sequences C2 80..C3 BF.
        if ((b == 0xC2 || b == 0xC3) && i + 1 < utf8.size()) {
            const auto c = static_cast<uint8_t>(utf8[i + 1]);
            if ((c & 0xC0) == 0x80) {
                out.push_back(static_cast<char>(((b & 0x03) << 6) | (c & 0x3F)));
                ++i;
                continue;
            }
        }
        out.resize(start);
        return false;
    }
    return true;
}

DecodeResult<std::string> latin1_to_bytes(std::string_view utf8) {
    std::string out;
    if (!latin1_to_bytes_into(utf8, out))
        return undecodable("string is not latin-1 (code point above U+00FF or bad UTF-8)");
    return out;
}

std::string bytes_to_latin1(std::string_view bytes) {
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const char ch : bytes) {
        const auto b = static_cast<uint8_t>(ch);
        if (b < 0x80) {
            out.push_back(ch);
        } else {
            out.push_back(static_cast<char>(0xC0 | (b >> 6)));
            out.push_back(static_cast<char>(0x80 | (b & 0x3F)));
        }
    }
    return out;
}

}  // namespace edgeguard::privacy
