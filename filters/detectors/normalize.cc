#include "filters/detectors/normalize.h"

#include "filters/detectors/byte_search.h"

#include <cstring>
#include <limits>

namespace edgeguard::privacy {
namespace {

constexpr uint32_t kNoChar = 0xFFFFFFFFu;

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// Decodes one UTF-8 sequence at s[i]; returns the code point and its length, or kNoChar for invalid bytes.
uint32_t decode_utf8(std::string_view s, size_t i, size_t& len) {
    auto b0 = static_cast<unsigned char>(s[i]);
    auto cont = [&](size_t k) -> int {
        if (i + k >= s.size()) return -1;
        auto b = static_cast<unsigned char>(s[i + k]);
        return (b & 0xC0) == 0x80 ? (b & 0x3F) : -1;
    };
    if (b0 >= 0xC2 && b0 <= 0xDF) {
        int c1 = cont(1);
        if (c1 < 0) return len = 1, kNoChar;
        len = 2;
        return ((b0 & 0x1Fu) << 6) | static_cast<uint32_t>(c1);
    }
    if (b0 >= 0xE0 && b0 <= 0xEF) {
        int c1 = cont(1), c2 = cont(2);
        if (c1 < 0 || c2 < 0) return len = 1, kNoChar;
        uint32_t cp = ((b0 & 0x0Fu) << 12) | (static_cast<uint32_t>(c1) << 6) | static_cast<uint32_t>(c2);
        if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return len = 1, kNoChar;
        len = 3;
        return cp;
    }
    if (b0 >= 0xF0 && b0 <= 0xF4) {
        int c1 = cont(1), c2 = cont(2), c3 = cont(3);
        if (c1 < 0 || c2 < 0 || c3 < 0) return len = 1, kNoChar;
        uint32_t cp = ((b0 & 0x07u) << 18) | (static_cast<uint32_t>(c1) << 12) |
                      (static_cast<uint32_t>(c2) << 6) | static_cast<uint32_t>(c3);
        if (cp < 0x10000 || cp > 0x10FFFF) return len = 1, kNoChar;
        len = 4;
        return cp;
    }
    len = 1;
    return kNoChar;
}

// Zero points of the Unicode decimal digit runs (general category Nd) that NFKC or a digit fold maps to
// ASCII; each run covers zero..zero+9.
constexpr uint32_t kDigitZeros[] = {
    0x0660,  0x06F0,  0x07C0,  0x0966,  0x09E6,  0x0A66,  0x0AE6,  0x0B66,  0x0BE6,  0x0C66,  0x0CE6,
    0x0D66,  0x0DE6,  0x0E50,  0x0ED0,  0x0F20,  0x1040,  0x1090,  0x17E0,  0x1810,  0x1946,  0x19D0,
    0x1A80,  0x1A90,  0x1B50,  0x1BB0,  0x1C40,  0x1C50,  0xA620,  0xA8D0,  0xA900,  0xA9D0,  0xA9F0,
    0xAA50,  0xABF0,  0xFF10,  0x104A0, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0,
    0x11650, 0x116C0, 0x11730, 0x118E0, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E950, 0x1FBF0,
};

// What one code point becomes in the matching view.
enum class Fold { Keep, Drop, Ascii };

Fold fold_code_point(uint32_t cp, char& ascii) {
    if (cp < 0x80) {
        ascii = static_cast<char>(cp);
        return Fold::Ascii;
    }
    // Format characters (Cf) and the soft hyphen: invisible, used to split tokens.
    if (cp == 0x00AD || cp == 0x061C || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) ||
        (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2060 && cp <= 0x2064) || (cp >= 0x2066 && cp <= 0x206F) ||
        cp == 0xFEFF)
        return Fold::Drop;
    // Spaces: NBSP, ogham, en/em/thin/hair spaces, narrow NBSP, medium mathematical, ideographic.
    if (cp == 0x00A0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x202F || cp == 0x205F ||
        cp == 0x3000) {
        ascii = ' ';
        return Fold::Ascii;
    }
    // Dashes and minus signs used as digit-group separators.
    if ((cp >= 0x2010 && cp <= 0x2015) || cp == 0x2212 || cp == 0xFE58 || cp == 0xFE63) {
        ascii = '-';
        return Fold::Ascii;
    }
    // Fullwidth ASCII forms (NFKC).
    if (cp >= 0xFF01 && cp <= 0xFF5E) {
        ascii = static_cast<char>(cp - 0xFF01 + 0x21);
        return Fold::Ascii;
    }
    if (cp == 0xFE6B) {  // small commercial at
        ascii = '@';
        return Fold::Ascii;
    }
    // Superscript and subscript digits (NFKC).
    if (cp == 0x00B9 || cp == 0x00B2 || cp == 0x00B3) {
        ascii = cp == 0x00B9 ? '1' : static_cast<char>('0' + (cp - 0x00B0));
        return Fold::Ascii;
    }
    if (cp == 0x2070 || (cp >= 0x2074 && cp <= 0x2079)) {
        ascii = static_cast<char>('0' + (cp - 0x2070));
        return Fold::Ascii;
    }
    if (cp >= 0x2080 && cp <= 0x2089) {
        ascii = static_cast<char>('0' + (cp - 0x2080));
        return Fold::Ascii;
    }
    if (cp >= 0x0660) {
        for (uint32_t zero : kDigitZeros) {
            if (cp >= zero && cp <= zero + 9) {
                ascii = static_cast<char>('0' + (cp - zero));
                return Fold::Ascii;
            }
        }
    }
    return Fold::Keep;
}

}  // namespace

// Could the UTF-8 sequence starting with lead byte `b0` (second byte `b1`) fold? Cyrillic (D0/D1), Latin-1
// letters (C3) and most two-byte scripts never do, so text in those scripts skips the copy entirely.
bool lead_may_fold(unsigned char b0, unsigned char b1) {
    if (b0 < 0xC2) return true;  // invalid lead or stray continuation: let the full pass decide
    if (b0 == 0xC2) return b1 == 0xA0 || b1 == 0xAD || b1 == 0xB2 || b1 == 0xB3 || b1 == 0xB9;
    if (b0 < 0xD8) return false;
    if (b0 == 0xD8 || b0 == 0xD9 || b0 == 0xDB || b0 == 0xDF) return true;  // U+061C, Arabic and NKo digits
    return b0 >= 0xE0;  // three- and four-byte sequences: spaces, format characters, digits, fullwidth
}

bool may_need_normalization(std::string_view text, const NormalizeOptions& options) {
    // Walks the text as normalize_for_matching() does and stops at the first byte it would change: a
    // "%XX" escape or a code point that folds. A lone '%' ("25% of users"), a curly quote or a Cyrillic
    // letter changes nothing, so such text is matched as it is, without a copy.
    const size_t n = text.size();
    // ASCII other than '%' never changes: skip it 16 bytes at a time ('\x80' is non-ASCII, so adds nothing).
    const char percent = options.percent_decode ? '%' : '\x80';
    for (size_t i = 0; i < n;) {
        i = find_non_ascii_or(text, i, percent);
        if (i >= n) break;
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            if (c == '%' && options.percent_decode && i + 2 < n && hex_value(text[i + 1]) >= 0 &&
                hex_value(text[i + 2]) >= 0)
                return true;
            ++i;
            continue;
        }
        if (!options.unicode) {
            ++i;
            continue;
        }
        size_t len = 1;
        const auto next = i + 1 < n ? static_cast<unsigned char>(text[i + 1]) : 0;
        if (!lead_may_fold(c, next)) {
            decode_utf8(text, i, len);  // only to step over the sequence exactly as the fold pass does
            i += len;
            continue;
        }
        const uint32_t cp = decode_utf8(text, i, len);
        char ascii = 0;
        if (cp != kNoChar && fold_code_point(cp, ascii) != Fold::Keep) return true;
        i += len;
    }
    return false;
}

bool normalize_for_matching(std::string_view text, const NormalizeOptions& options, NormalizedText& out) {
    if (text.size() >= std::numeric_limits<uint32_t>::max()) return false;
    if (!may_need_normalization(text, options)) return false;

    // Step 1: percent-decoding into `decoded_`, remembering each byte's source span. Repeated while the
    // result still holds an escape, at most kPercentRounds times: "%2540" is "%40" after one round and '@'
    // after two (a URL parameter encoded twice). Neither step makes the text longer, so outputs are sized
    // to their input up front and written by index.
    std::string_view source = text;
    const uint32_t* source_begin = nullptr;
    const uint32_t* source_end = nullptr;
    bool changed = false;
    constexpr int kPercentRounds = 3;
    for (int round = 0; round < kPercentRounds && options.percent_decode &&
                        std::memchr(source.data(), '%', source.size()) != nullptr;
         ++round) {
        std::string& into = round % 2 == 0 ? out.decoded_ : out.redecoded_;
        std::vector<uint32_t>& into_begin = round % 2 == 0 ? out.decoded_begin_ : out.redecoded_begin_;
        std::vector<uint32_t>& into_end = round % 2 == 0 ? out.decoded_end_ : out.redecoded_end_;
        into.resize(source.size());
        into_begin.resize(source.size());
        into_end.resize(source.size());
        size_t o = 0;
        bool round_changed = false;
        const auto from_begin = [&](size_t i) { return source_begin ? source_begin[i] : static_cast<uint32_t>(i); };
        const auto from_end = [&](size_t i) { return source_end ? source_end[i] : static_cast<uint32_t>(i + 1); };
        for (size_t i = 0; i < source.size(); ++o) {
            int hi = -1, lo = -1;
            if (source[i] == '%' && i + 2 < source.size() && (hi = hex_value(source[i + 1])) >= 0 &&
                (lo = hex_value(source[i + 2])) >= 0) {
                into[o] = static_cast<char>(hi * 16 + lo);
                into_begin[o] = from_begin(i);
                into_end[o] = from_end(i + 2);
                i += 3;
                round_changed = true;
            } else {
                into[o] = source[i];
                into_begin[o] = from_begin(i);
                into_end[o] = from_end(i);
                ++i;
            }
        }
        into.resize(o);
        into_begin.resize(o);
        into_end.resize(o);
        if (!round_changed) break;
        changed = true;
        source = into;
        source_begin = into_begin.data();
        source_end = into_end.data();
    }
    auto begin_at = [&](size_t i) { return source_begin ? source_begin[i] : static_cast<uint32_t>(i); };
    auto end_at = [&](size_t i) { return source_end ? source_end[i] : static_cast<uint32_t>(i + 1); };

    // Step 2: Unicode folding over the (possibly decoded) source; runs of ASCII are copied whole.
    out.text_.resize(source.size());
    out.begin_of_.resize(source.size());
    out.end_of_.resize(source.size());
    char* text_out = out.text_.data();
    uint32_t* begin_out = out.begin_of_.data();
    uint32_t* end_out = out.end_of_.data();
    size_t o = 0;
    for (size_t i = 0; i < source.size();) {
        if (static_cast<unsigned char>(source[i]) < 0x80 || !options.unicode) {
            size_t run = i + 1;
            if (options.unicode) {
                while (run < source.size() && static_cast<unsigned char>(source[run]) < 0x80) ++run;
            } else {
                run = source.size();
            }
            std::memcpy(text_out + o, source.data() + i, run - i);
            for (size_t k = i; k < run; ++k, ++o) {
                begin_out[o] = begin_at(k);
                end_out[o] = end_at(k);
            }
            i = run;
            continue;
        }
        size_t len = 1;
        uint32_t cp = decode_utf8(source, i, len);
        char ascii = 0;
        Fold fold = cp == kNoChar ? Fold::Keep : fold_code_point(cp, ascii);
        uint32_t orig_begin = begin_at(i);
        uint32_t orig_end = end_at(i + len - 1);
        switch (fold) {
            case Fold::Drop:
                changed = true;
                break;
            case Fold::Ascii:
                changed = true;
                text_out[o] = ascii;
                begin_out[o] = orig_begin;
                end_out[o] = orig_end;
                ++o;
                break;
            case Fold::Keep:
                for (size_t k = 0; k < len; ++k, ++o) {
                    text_out[o] = source[i + k];
                    begin_out[o] = orig_begin;
                    end_out[o] = orig_end;
                }
                break;
        }
        i += len;
    }
    out.text_.resize(o);
    out.begin_of_.resize(o);
    out.end_of_.resize(o);
    return changed;
}

bool looks_like_url(std::string_view text) {
    if (text.find("://") != std::string_view::npos) return true;
    if (!text.empty() && text[0] == '/') return true;
    size_t eq = text.find('=');
    return eq != std::string_view::npos && (text.find('?') < eq || text.find('&') != std::string_view::npos);
}

}  // namespace edgeguard::privacy
