#include "filters/decode/replay_compression.h"

#include <simdjson.h>

#include "filters/decode/gzip.h"
#include "filters/decode/latin1.h"

namespace edgeguard::privacy {

DecodeResult<std::string> decode_latin1_gzip(std::string_view unescaped, uint64_t max_output) {
    std::string gz;
    if (!latin1_to_bytes_into(unescaped, gz))
        return undecodable("compressed replay field is not a latin-1 string");
    if (!has_gzip_magic(gz)) return undecodable("compressed replay field is not gzip");
    auto inflated = gzip_inflate(gz, max_output);
    if (auto* text = std::get_if<std::string>(&inflated)) {
        if (!simdjson::validate_utf8(text->data(), text->size())) {
            return undecodable("compressed replay field is not UTF-8");
        }
    }
    return inflated;
}

std::string encode_latin1_gzip(std::string_view json) {
    return bytes_to_latin1(gzip_deflate(json));
}

std::string encode_latin1_gzip_json_literal(std::string_view json) {
    static constexpr char kHex[] = "0123456789abcdef";
    const std::string latin1 = encode_latin1_gzip(json);
    std::string out;
    out.reserve(latin1.size() + latin1.size() / 8 + 2);
    out.push_back('"');
    for (const char ch : latin1) {
        const auto b = static_cast<uint8_t>(ch);
        switch (ch) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (b < 0x20) {
                    out += "\\u00";
                    out.push_back(kHex[b >> 4]);
                    out.push_back(kHex[b & 0xF]);
                } else {
                    out.push_back(ch);
                }
        }
    }
    out.push_back('"');
    return out;
}

}  // namespace edgeguard::privacy
