// Public IP addresses. IPv4: four dotted decimal octets <= 255 bounded as a token ("v2.1.1.108" and
// "120.0.6099.109" are not IPs); not reported after a version-like key or word ("version 10.7.31.9").
// IPv6: parsed with inet_pton, reported only inside global unicast 2000::/3 (so "::", "b::", "::1",
// fe80::/10, fc00::/7 and 2001:db8::/32 never hit) or as an IPv4-mapped public IPv4.
// Special-purpose IPv4 ranges (RFC 6890: private, loopback, link-local, CGNAT 100.64/10, documentation,
// benchmarking, multicast, reserved) are not a user's address and are not reported.
#include <arpa/inet.h>

#include <cstring>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

bool ipv4_public(const uint8_t o[4]) {
    uint32_t a = (uint32_t{o[0]} << 24) | (uint32_t{o[1]} << 16) | (uint32_t{o[2]} << 8) | o[3];
    struct Block {
        uint32_t net;
        int bits;
    };
    static constexpr Block kNotGlobal[] = {
        {0x00000000, 8},  {0x0A000000, 8},  {0x64400000, 10}, {0x7F000000, 8},  {0xA9FE0000, 16},
        {0xAC100000, 12}, {0xC0000000, 24}, {0xC0000200, 24}, {0xC0586300, 24}, {0xC0A80000, 16},
        {0xC6120000, 15}, {0xC6336400, 24}, {0xCB007100, 24}, {0xE0000000, 4},  {0xF0000000, 4},
    };
    for (const Block& b : kNotGlobal) {
        uint32_t mask = b.bits == 0 ? 0 : ~uint32_t{0} << (32 - b.bits);
        if ((a & mask) == b.net) return false;
    }
    return true;
}

// Parses "d.d.d.d" at `pos`; returns the end offset or 0.
size_t parse_ipv4(std::string_view text, size_t pos, uint8_t out[4]) {
    size_t i = pos;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (i >= text.size() || text[i] != '.') return 0;
            ++i;
        }
        size_t start = i;
        unsigned value = 0;
        while (i < text.size() && is_ascii_digit(text[i]) && i - start < 4)
            value = value * 10 + (text[i++] - '0');
        size_t len = i - start;
        if (len == 0 || len > 3 || value > 255) return 0;
        if (len > 1 && text[start] == '0') return 0;  // leading zeros are octal in some parsers: not an IP
        out[part] = static_cast<uint8_t>(value);
    }
    return i;
}

bool version_like_key(std::string_view key) {
    static constexpr std::string_view kWords[] = {"version", "ver", "build", "release", "revision", "rev"};
    if (key == "v" || key == "V") return true;
    for (std::string_view w : kWords)
        if (contains_ascii_ci(key, w)) return true;
    return false;
}

// A version-like word ending right before `pos` (spaces, ':' or '=' between): "version 10.7.31.9".
bool version_word_before(std::string_view text, size_t pos) {
    size_t i = pos;
    while (i > 0 && (text[i - 1] == ' ' || text[i - 1] == ':' || text[i - 1] == '=' || text[i - 1] == '"'))
        --i;
    size_t word_end = i;
    while (i > 0 && (is_ascii_alpha(text[i - 1]) || text[i - 1] == '_')) --i;
    std::string_view word = text.substr(i, word_end - i);
    if (word.empty()) return false;
    static constexpr std::string_view kWords[] = {"version", "ver", "v",       "build",
                                                  "release", "rev", "revision"};
    for (std::string_view w : kWords) {
        if (word.size() >= w.size() && find_ascii_ci(word.substr(word.size() - w.size()), w) == 0 &&
            (word.size() == w.size() || word[word.size() - w.size() - 1] == '_'))
            return true;
    }
    return false;
}

bool is_hex(char c) {
    return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

class IpDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "ip"; }
    DetectorGate gate() const override {
        return DetectorGate::when_any(kGateDots3 | kGateDigits4, kGateColons2);
    }
    void find(std::string_view text, const DetectorContext& ctx,
              std::vector<DetectorMatch>& out) const override {
        const bool version_key = version_like_key(ctx.key);
        if (!version_key) find_ipv4(text, index_for(text, ctx), out);
        find_ipv6(text, version_key, out);
    }

  private:
    void find_ipv4(std::string_view text, const TextIndex* index, std::vector<DetectorMatch>& out) const {
        if (index == nullptr) {
            find_ipv4_between(text, 0, text.size(), out);
            return;
        }
        // An address (four octets, three dots) lies in one number stretch of at least four digits, and a
        // digit outside one never starts an address: only those stretches are read.
        for (const NumberStretch& s : index->number_stretches()) find_ipv4_between(text, s.begin, s.end, out);
    }

    // The addresses that start at digits in [from, to).
    void find_ipv4_between(std::string_view text, size_t from, size_t to, std::vector<DetectorMatch>& out) const {
        for (size_t i = find_ascii_digit(text, from); i < to; i = find_ascii_digit(text, i + 1)) {
            if (i > 0 && (is_ascii_digit(text[i - 1]) || text[i - 1] == '.')) continue;
            uint8_t octets[4];
            size_t end = parse_ipv4(text, i, octets);
            if (end == 0) continue;
            bool glued = (i > 0 && is_word_byte(text[i - 1])) ||
                         (end < text.size() &&
                          (is_word_byte(text[end]) ||
                           (text[end] == '.' && end + 1 < text.size() && is_ascii_alnum(text[end + 1]))));
            if (!glued && ipv4_public(octets) && !version_word_before(text, i)) out.push_back({i, end, id()});
            i = end;
        }
    }

    void find_ipv6(std::string_view text, bool version_key, std::vector<DetectorMatch>& out) const {
        // Candidates are found from their colons: expand each colon to the surrounding [hex:.] run.
        size_t resume = 0;
        for (size_t colon = text.find(':'); colon != std::string_view::npos;
             colon = text.find(':', colon + 1)) {
            if (colon < resume) continue;
            size_t i = colon;
            while (i > resume && (is_hex(text[i - 1]) || text[i - 1] == ':' || text[i - 1] == '.')) --i;
            resume = scan_ipv6_candidate(text, i, version_key, out);
            if (resume <= colon) resume = colon + 1;
        }
    }

    // A candidate starting at `i`; returns where the candidate ended.
    size_t scan_ipv6_candidate(std::string_view text, size_t i, bool version_key,
                               std::vector<DetectorMatch>& out) const {
        {
            if (i > 0 && is_word_byte(text[i - 1])) {
                size_t skip = i;
                while (skip < text.size() && (is_hex(text[skip]) || text[skip] == ':' || text[skip] == '.'))
                    ++skip;
                return skip;
            }
            size_t end = i, colons = 0;
            while (end < text.size() && (is_hex(text[end]) || text[end] == ':' || text[end] == '.')) {
                colons += text[end] == ':';
                ++end;
            }
            size_t scanned = end;
            while (end > i && text[end - 1] == '.') --end;  // a sentence's full stop
            if (colons >= 2 && end - i <= 45 && !(end < text.size() && is_word_byte(text[end]))) {
                char buf[46];
                std::memcpy(buf, text.data() + i, end - i);
                buf[end - i] = '\0';
                uint8_t addr[16];
                if (inet_pton(AF_INET6, buf, addr) == 1 && ipv6_public(addr, version_key))
                    out.push_back({i, end, id()});
            }
            return scanned;
        }
    }

    static bool ipv6_public(const uint8_t a[16], bool version_key) {
        static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (std::memcmp(a, kMappedPrefix, 12) == 0) return !version_key && ipv4_public(a + 12);
        if ((a[0] & 0xE0) != 0x20) return false;  // global unicast 2000::/3
        if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x0d && a[3] == 0xb8) return false;  // documentation
        if (a[0] == 0x20 && a[1] == 0x01 && a[2] == 0x00 && a[3] == 0x00) return false;  // Teredo relay
        if (a[0] == 0x20 && a[1] == 0x02) return false;  // 6to4 relays carry no user address of their own
        return true;
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_ip_detector() {
    return std::make_unique<IpDetector>();
}

}  // namespace edgeguard::privacy
