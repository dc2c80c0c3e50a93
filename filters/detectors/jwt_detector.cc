// JSON Web Tokens by structure: three base64url parts joined by '.', the header decoding to a JSON object
// with an "alg" member. A lone base64url JSON blob ("eyJ0aGVtZSI6...") has no dots and is not a token.
#include <cstring>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

bool is_base64url(char c) {
    return is_ascii_alnum(c) || c == '-' || c == '_';
}

int base64url_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

// Decodes a JWT header (bounded: real headers are short) and checks for a JSON object naming "alg".
bool header_has_alg(std::string_view b64) {
    char decoded[512];
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (char c : b64) {
        int v = base64url_value(c);
        if (v < 0) return false;
        acc = (acc << 6) | static_cast<uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == sizeof decoded) return false;
            decoded[n++] = static_cast<char>((acc >> bits) & 0xff);
        }
    }
    std::string_view json(decoded, n);
    size_t first = json.find_first_not_of(" \t\r\n");
    if (first == std::string_view::npos || json[first] != '{') return false;
    return json.find("\"alg\"") != std::string_view::npos;
}

class JwtDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "jwt"; }
    DetectorGate gate() const override {
        return DetectorGate::when(kGateDots2 | kGateAlnumRun10 | kHasNonHexLetter);
    }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        // The next "eyJ" at or after pos, found from its 'J' (rare in prose; 'e' is everywhere).
        static constexpr ByteSetFinder kJ("J");
        const auto next_token = [&](size_t from) {
            const size_t q = kJ.find_if(text, from + 2, [&](size_t j) { return text[j - 2] == 'e' && text[j - 1] == 'y'; });
            return q < text.size() ? q - 2 : std::string_view::npos;
        };
        size_t pos = 0;
        while ((pos = next_token(pos)) != std::string_view::npos) {
            if (pos > 0 && is_base64url(text[pos - 1])) {
                pos += 3;
                continue;
            }
            size_t i = pos, dots[2] = {0, 0};
            int parts = 0;
            while (parts < 2) {
                while (i < text.size() && is_base64url(text[i])) ++i;
                if (i >= text.size() || text[i] != '.') break;
                dots[parts++] = i;
                ++i;
            }
            if (parts < 2) {
                pos += 3;
                continue;
            }
            while (i < text.size() && is_base64url(text[i])) ++i;
            size_t end = i;
            bool payload_ok =
                dots[1] > dots[0] + 1 && text[dots[0] + 1] == 'e';  // payload is a JSON object too
            bool glued = end < text.size() && (text[end] == '.' || text[end] == '=');
            if (payload_ok && !glued && header_has_alg(text.substr(pos, dots[0] - pos)))
                out.push_back({pos, end, id()});
            pos = end > pos ? end : pos + 3;
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_jwt_detector() {
    return std::make_unique<JwtDetector>();
}

}  // namespace edgeguard::privacy
