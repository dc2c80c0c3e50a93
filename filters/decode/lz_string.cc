#include "filters/decode/lz_string.h"

#include <algorithm>
#include <array>
#include <utility>
#include <vector>

namespace edgeguard::privacy {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
constexpr uint8_t kInvalid = 0xFF;

constexpr std::array<uint8_t, 256> make_table() {
    std::array<uint8_t, 256> t{};
    for (auto& v : t) v = kInvalid;
    for (size_t i = 0; i < kAlphabet.size(); ++i)
        t[static_cast<uint8_t>(kAlphabet[i])] = static_cast<uint8_t>(i);
    return t;
}
constexpr std::array<uint8_t, 256> kTable = make_table();

// Reads lz-string's bit stream: 6 bits per character, most significant first, values assembled LSB first.
class BitReader {
  public:
    explicit BitReader(std::string_view text) : text_(text), val_(value_at(0)) {}

    uint32_t read(int count) {
        uint32_t bits = 0;
        for (int i = 0; i < count; ++i) {
            if ((val_ & position_) != 0) bits |= 1u << i;
            position_ >>= 1;
            if (position_ == 0) {
                position_ = 32;
                val_ = value_at(index_++);
            }
        }
        return bits;
    }
    // lz-string's "data.index > length" end-of-input test.
    bool exhausted() const { return index_ > text_.size(); }

  private:
    // '=' maps to 64, whose low 6 bits are zero, exactly as getBaseValue does; past the end reads zero.
    uint32_t value_at(size_t i) const {
        return i < text_.size() ? kTable[static_cast<uint8_t>(text_[i])] : 0;
    }

    std::string_view text_;
    uint32_t val_;
    uint32_t position_ = 32;
    size_t index_ = 1;
};

// Code units are stored as CESU-8 while decoding (a surrogate is 3 bytes on its own) so that every
// dictionary entry is a contiguous byte span of the output; pairs are joined into UTF-8 at the end.
size_t append_unit(std::string& out, uint32_t unit) {
    if (unit < 0x80) {
        out.push_back(static_cast<char>(unit));
        return 1;
    }
    if (unit < 0x800) {
        out.push_back(static_cast<char>(0xC0 | (unit >> 6)));
        out.push_back(static_cast<char>(0x80 | (unit & 0x3F)));
        return 2;
    }
    out.push_back(static_cast<char>(0xE0 | (unit >> 12)));
    out.push_back(static_cast<char>(0x80 | ((unit >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (unit & 0x3F)));
    return 3;
}

size_t unit_length(char lead) {
    const auto b = static_cast<uint8_t>(lead);
    return b < 0x80 ? 1 : (b < 0xE0 ? 2 : 3);
}

// Rewrites CESU-8 surrogate pairs (ED A0-AF xx ED B0-BF xx) as 4-byte UTF-8, in place; false on a lone one.
bool cesu_to_utf8(std::string& s) {
    size_t r = 0, w = 0;
    const size_t n = s.size();
    while (r < n) {
        const auto b0 = static_cast<uint8_t>(s[r]);
        if (b0 == 0xED && r + 2 < n && static_cast<uint8_t>(s[r + 1]) >= 0xA0) {
            const auto b1 = static_cast<uint8_t>(s[r + 1]);
            if (b1 >= 0xB0) return false;  // low surrogate with no high one before it
            if (r + 5 >= n || static_cast<uint8_t>(s[r + 3]) != 0xED ||
                static_cast<uint8_t>(s[r + 4]) < 0xB0) {
                return false;  // high surrogate not followed by a low one
            }
            const uint32_t hi = ((b1 & 0x0F) << 6) | (static_cast<uint8_t>(s[r + 2]) & 0x3F);
            const uint32_t lo =
                ((static_cast<uint8_t>(s[r + 4]) & 0x0F) << 6) | (static_cast<uint8_t>(s[r + 5]) & 0x3F);
            const uint32_t cp = 0x10000 + (hi << 10) + lo;
            s[w++] = static_cast<char>(0xF0 | (cp >> 18));
            s[w++] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
            s[w++] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
            s[w++] = static_cast<char>(0x80 | (cp & 0x3F));
            r += 6;
            continue;
        }
        s[w++] = s[r++];
    }
    s.resize(w);
    return true;
}

struct Span {
    uint32_t offset;
    uint32_t length;
};

}  // namespace

DecodeResult<std::string> lz_string_decompress_from_base64(std::string_view text, uint64_t max_output) {
    if (text.empty()) return undecodable("empty lz-string payload");
    for (const char c : text) {
        if (kTable[static_cast<uint8_t>(c)] == kInvalid)
            return undecodable("invalid character in lz-string payload");
    }
    // Spans are 32-bit; no route allows anywhere near 4 GiB.
    const uint64_t cap = std::min<uint64_t>(max_output, UINT32_MAX - 8);

    // Same memory policy as gzip_inflate: a guess first, then one exact allocation at the cap.
    std::string out;
    out.reserve(static_cast<size_t>(std::min<uint64_t>(cap + 8, std::max<size_t>(4096, text.size() * 6))));
    auto ensure_room = [&](uint64_t extra) -> bool {
        if (out.size() + extra > cap) return false;
        if (out.size() + extra > out.capacity()) {
            std::string larger;
            larger.reserve(static_cast<size_t>(cap + 8));
            larger.append(out);
            out.swap(larger);
        }
        return true;
    };
    auto append_span = [&](Span s) {
        // Capacity is ensured beforehand, so the source bytes do not move while we copy them.
        out.append(out, s.offset, s.length);
    };

    std::vector<Span> dictionary(3, Span{0, 0});  // codes 0, 1, 2 are control codes
    uint32_t enlarge_in = 4;
    int num_bits = 3;
    BitReader reader(text);

    auto read_literal = [&](uint32_t code) -> DecodeResult<Span> {
        const uint32_t unit = reader.read(code == 0 ? 8 : 16);
        if (!ensure_room(3)) return too_large("lz-string payload exceeds the limit");
        const auto offset = static_cast<uint32_t>(out.size());
        const auto length = static_cast<uint32_t>(append_unit(out, unit));
        return Span{offset, length};
    };

    const uint32_t first = reader.read(2);
    if (first == 2) return std::string{};
    if (first > 2) return undecodable("invalid lz-string stream");
    auto first_literal = read_literal(first);
    if (auto* e = std::get_if<DecodeError>(&first_literal)) return std::move(*e);
    Span w = std::get<Span>(first_literal);
    dictionary.push_back(w);

    while (true) {
        if (reader.exhausted()) return undecodable("truncated lz-string payload");
        const uint32_t code = reader.read(num_bits);
        if (code == 2) break;
        Span entry;
        if (code < 2) {
            // A literal: emitted as it is read, and it becomes a dictionary entry of its own.
            auto literal = read_literal(code);
            if (auto* e = std::get_if<DecodeError>(&literal)) return std::move(*e);
            entry = std::get<Span>(literal);
            dictionary.push_back(entry);
            if (--enlarge_in == 0) {
                enlarge_in = 1u << num_bits;
                ++num_bits;
            }
        } else if (code < dictionary.size()) {
            const Span stored = dictionary[code];
            if (!ensure_room(stored.length)) return too_large("lz-string payload exceeds the limit");
            entry = Span{static_cast<uint32_t>(out.size()), stored.length};
            append_span(stored);
        } else if (code == dictionary.size()) {
            // The cScSc case: the entry is w followed by w's first unit.
            const auto first_unit = static_cast<uint32_t>(unit_length(out[w.offset]));
            if (!ensure_room(uint64_t{w.length} + first_unit))
                return too_large("lz-string payload exceeds the limit");
            entry = Span{static_cast<uint32_t>(out.size()), w.length + first_unit};
            append_span(w);
            append_span(Span{w.offset, first_unit});
        } else {
            return undecodable("invalid lz-string back-reference");
        }
        // New entry: w followed by the entry's first unit, which sits right after w in the output.
        dictionary.push_back(
            Span{w.offset, w.length + static_cast<uint32_t>(unit_length(out[entry.offset]))});
        w = entry;
        if (--enlarge_in == 0) {
            enlarge_in = 1u << num_bits;
            ++num_bits;
        }
        if (num_bits > 31) return undecodable("invalid lz-string stream");
    }
    if (!cesu_to_utf8(out)) return undecodable("invalid UTF-16 in lz-string payload");
    return out;
}

}  // namespace edgeguard::privacy
