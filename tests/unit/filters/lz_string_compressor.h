// lz-string 1.5.0's compressToBase64 (bit-identical), for tests and benchmarks that build `compression=lz64`
// payloads. The proxy only ever decompresses (filters/decode/lz_string.h). Invalid UTF-8 input is encoded as
// U+FFFD; the UTF-16 overload takes raw code units, so tests can build streams holding lone surrogates.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>
#include <utility>

namespace edgeguard::privacy {
namespace lz_string_detail {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";


class BitWriter {
  public:
    void write(uint32_t value, int count) {  // LSB first, like lz-string
        for (int i = 0; i < count; ++i) {
            push_bit(value & 1);
            value >>= 1;
        }
    }
    void write_zeros(int count) {
        for (int i = 0; i < count; ++i) push_bit(0);
    }
    std::string finish() {
        while (true) {
            val_ <<= 1;
            if (position_ == 5) {
                out_.push_back(kAlphabet[val_]);
                break;
            }
            ++position_;
        }
        switch (out_.size() % 4) {
            case 1:
                out_ += "===";
                break;
            case 2:
                out_ += "==";
                break;
            case 3:
                out_ += "=";
                break;
            default:
                break;
        }
        return std::move(out_);
    }

  private:
    void push_bit(uint32_t bit) {
        val_ = (val_ << 1) | bit;
        if (position_ == 5) {
            position_ = 0;
            out_.push_back(kAlphabet[val_]);
            val_ = 0;
        } else {
            ++position_;
        }
    }
    std::string out_;
    uint32_t val_ = 0;
    int position_ = 0;
};

inline std::u16string utf8_to_utf16(std::string_view s) {
    std::u16string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
        const auto b = static_cast<uint8_t>(s[i]);
        uint32_t cp = 0xFFFD;
        size_t len = 1;
        if (b < 0x80) {
            cp = b;
        } else if ((b >> 5) == 0x6 && i + 1 < s.size()) {
            cp = ((b & 0x1F) << 6) | (static_cast<uint8_t>(s[i + 1]) & 0x3F);
            len = 2;
        } else if ((b >> 4) == 0xE && i + 2 < s.size()) {
            cp = ((b & 0x0F) << 12) | ((static_cast<uint8_t>(s[i + 1]) & 0x3F) << 6) |
                 (static_cast<uint8_t>(s[i + 2]) & 0x3F);
            len = 3;
        } else if ((b >> 3) == 0x1E && i + 3 < s.size()) {
            cp = ((b & 0x07) << 18) | ((static_cast<uint8_t>(s[i + 1]) & 0x3F) << 12) |
                 ((static_cast<uint8_t>(s[i + 2]) & 0x3F) << 6) | (static_cast<uint8_t>(s[i + 3]) & 0x3F);
            len = 4;
        }
        if (cp >= 0x10000) {
            cp -= 0x10000;
            out.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
            out.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
        } else {
            out.push_back(static_cast<char16_t>(cp));
        }
        i += len;
    }
    return out;
}

}  // namespace lz_string_detail

inline std::string lz_string_compress_to_base64(std::u16string_view input) {
    std::unordered_map<std::u16string, uint32_t> dictionary;
    std::unordered_map<std::u16string, bool> to_create;
    std::u16string w;
    uint32_t enlarge_in = 2, dict_size = 3;
    int num_bits = 2;
    lz_string_detail::BitWriter bits;

    auto bump = [&] {
        if (--enlarge_in == 0) {
            enlarge_in = 1u << num_bits;
            ++num_bits;
        }
    };
    auto emit_w = [&] {
        auto pending = to_create.find(w);
        if (pending != to_create.end()) {
            const char16_t unit = w[0];
            if (unit < 256) {
                bits.write_zeros(num_bits);
                bits.write(unit, 8);
            } else {
                bits.write(1, num_bits);
                bits.write(unit, 16);
            }
            bump();
            to_create.erase(pending);
        } else {
            bits.write(dictionary[w], num_bits);
        }
        bump();
    };

    for (const char16_t unit : input) {
        const std::u16string c(1, unit);
        if (dictionary.find(c) == dictionary.end()) {
            dictionary[c] = dict_size++;
            to_create[c] = true;
        }
        std::u16string wc = w + c;
        if (dictionary.find(wc) != dictionary.end()) {
            w = std::move(wc);
        } else {
            emit_w();
            dictionary[std::move(wc)] = dict_size++;
            w = c;
        }
    }
    if (!w.empty()) emit_w();
    bits.write(2, num_bits);
    return bits.finish();
}

inline std::string lz_string_compress_to_base64(std::string_view utf8) {
    return lz_string_compress_to_base64(std::u16string_view(lz_string_detail::utf8_to_utf16(utf8)));
}

}  // namespace edgeguard::privacy
