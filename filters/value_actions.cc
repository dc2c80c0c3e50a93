#include "filters/value_actions.h"

#include <arpa/inet.h>

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace edgeguard::privacy {

std::string redact_placeholder(std::string_view what) {
    std::string out = "[redacted:";
    out.append(what);
    out.push_back(']');
    return out;
}

std::string mask_text(std::string_view text, int keep_last) {
    // Count code points (UTF-8 lead bytes) so multi-byte text is masked per character.
    size_t code_points = 0;
    for (unsigned char c : text) code_points += (c & 0xC0) != 0x80;
    const size_t keep = std::min<size_t>(static_cast<size_t>(keep_last), code_points);
    const size_t masked = code_points - keep;
    std::string out(masked, '*');
    size_t seen = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if ((c & 0xC0) != 0x80) ++seen;
        if (seen > masked) out.push_back(text[i]);
    }
    return out;
}

std::string truncate_ip(std::string_view text, const IpTruncation& truncation) {
    char buf[64];
    if (text.empty() || text.size() >= sizeof(buf)) return {};
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    unsigned char addr[16];
    char out[INET6_ADDRSTRLEN];
    auto zero_host_bits = [](unsigned char* bytes, int total_bits, int prefix) {
        for (int bit = prefix; bit < total_bits; ++bit) bytes[bit / 8] &= static_cast<unsigned char>(~(0x80 >> (bit % 8)));
    };
    if (inet_pton(AF_INET, buf, addr) == 1) {
        zero_host_bits(addr, 32, truncation.v4_prefix);
        if (!inet_ntop(AF_INET, addr, out, sizeof(out))) return {};
        return out;
    }
    if (inet_pton(AF_INET6, buf, addr) == 1) {
        zero_host_bits(addr, 128, truncation.v6_prefix);
        if (!inet_ntop(AF_INET6, addr, out, sizeof(out))) return {};
        return out;
    }
    return {};
}

bool looks_like_hash_token(std::string_view text, std::string_view id) {
    if (text.size() != id.size() + 1 + 43 || text.substr(0, id.size()) != id || text[id.size()] != ':') return false;
    for (char c : text.substr(id.size() + 1)) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok) return false;
    }
    return true;
}

namespace {

// The end of the run from `i` that JSON needs no escape in (up to the first control byte, '"' or '\\'),
// sixteen bytes at a time where SSE2 is there (every x86-64).
size_t plain_run_end(std::string_view text, size_t i) {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i below_space = _mm_set1_epi8(0x1f);
    for (; i + 16 <= text.size(); i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(text.data() + i));
        const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v);  // unsigned v <= 0x1f
        const __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        const int mask = _mm_movemask_epi8(_mm_or_si128(control, special));
        if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    for (; i < text.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(text[i]);
        if (c < 0x20 || c == '"' || c == '\\') break;
    }
    return i;
}

}  // namespace

void append_json_escaped(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    // Runs that need no escape (nearly all of a prompt or a log line) are appended whole: a push_back per
    // byte cost more than everything else in building an OTLP inspection document.
    size_t i = 0;
    while (i < text.size()) {
        const size_t run = plain_run_end(text, i);
        out.append(text.data() + i, run - i);
        if (run == text.size()) return;
        i = run + 1;
        const unsigned char c = static_cast<unsigned char>(text[run]);
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            default:
                out += "\\u00";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0xF]);
        }
    }
}

bool is_json_number(std::string_view t) {
    size_t i = 0;
    if (i < t.size() && t[i] == '-') ++i;
    if (i >= t.size()) return false;
    if (t[i] == '0') {
        ++i;
    } else if (t[i] >= '1' && t[i] <= '9') {
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
    } else {
        return false;
    }
    if (i < t.size() && t[i] == '.') {
        ++i;
        const size_t start = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == start) return false;
    }
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
        ++i;
        if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
        const size_t start = i;
        while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
        if (i == start) return false;
    }
    return i == t.size();
}

bool utf8_to_latin1(std::string_view utf8, std::string& bytes) {
    bytes.clear();
    bytes.reserve(utf8.size());
    for (size_t i = 0; i < utf8.size(); ++i) {
        const unsigned char c = static_cast<unsigned char>(utf8[i]);
        if (c < 0x80) {
            bytes.push_back(static_cast<char>(c));
        } else if ((c == 0xC2 || c == 0xC3) && i + 1 < utf8.size() &&
                   (static_cast<unsigned char>(utf8[i + 1]) & 0xC0) == 0x80) {
            bytes.push_back(static_cast<char>(((c & 0x1F) << 6) | (static_cast<unsigned char>(utf8[i + 1]) & 0x3F)));
            ++i;
        } else {
            return false;
        }
    }
    return true;
}

void latin1_to_utf8(std::string_view bytes, std::string& utf8) {
    utf8.clear();
    utf8.reserve(bytes.size() * 2);
    for (char ch : bytes) {
        const unsigned char c = static_cast<unsigned char>(ch);
        if (c < 0x80) {
            utf8.push_back(ch);
        } else {
            utf8.push_back(static_cast<char>(0xC0 | (c >> 6)));
            utf8.push_back(static_cast<char>(0x80 | (c & 0x3F)));
        }
    }
}

}  // namespace edgeguard::privacy
