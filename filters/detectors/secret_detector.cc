// Credentials by vendor prefix: PostHog personal keys (phx_), Stripe live keys (sk_live_, rk_live_),
// GitHub tokens (ghp_, gho_, ghs_, ghu_, ghr_, github_pat_), AWS access key ids (AKIA/ASIA + 16),
// Slack tokens (xoxb-, xoxp-, ...) and PEM private keys. PostHog project keys (phc_) are public by design
// (every browser sends one) and are not listed.
#include <algorithm>
#include <cstring>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

enum class Body { Alnum, AlnumUnderscore, UpperAlnum, AlnumDash };

struct SecretPrefix {
    std::string_view prefix;
    Body body;
    uint8_t min_len;
    uint8_t max_len;  // 0 = no upper bound
};

constexpr SecretPrefix kPrefixes[] = {
    {"phx_", Body::Alnum, 20, 0},
    {"sk_live_", Body::Alnum, 16, 0},
    {"rk_live_", Body::Alnum, 16, 0},
    {"ghp_", Body::Alnum, 36, 36},
    {"gho_", Body::Alnum, 36, 36},
    {"ghs_", Body::Alnum, 36, 36},
    {"ghu_", Body::Alnum, 36, 36},
    {"ghr_", Body::Alnum, 36, 36},
    {"github_pat_", Body::AlnumUnderscore, 22, 0},
    {"AKIA", Body::UpperAlnum, 16, 16},
    {"ASIA", Body::UpperAlnum, 16, 16},
    {"xoxb-", Body::AlnumDash, 10, 0},
    {"xoxp-", Body::AlnumDash, 10, 0},
    {"xoxa-", Body::AlnumDash, 10, 0},
    {"xoxr-", Body::AlnumDash, 10, 0},
    {"xoxe-", Body::AlnumDash, 10, 0},
};

constexpr std::string_view kAnchorBytes = "_-A";
constexpr size_t kAnchorReach = 6;  // the '_' of "github_pat_"

constexpr bool every_prefix_has_an_anchor() {
    for (const SecretPrefix& p : kPrefixes) {
        bool found = false;
        for (size_t k = 0; k < p.prefix.size() && k <= kAnchorReach; ++k)
            found = found || kAnchorBytes.find(p.prefix[k]) != std::string_view::npos;
        if (!found || (p.prefix[0] != 'p' && p.prefix[0] != 's' && p.prefix[0] != 'r' && p.prefix[0] != 'g' &&
                       p.prefix[0] != 'A' && p.prefix[0] != 'x'))
            return false;
    }
    return true;
}
static_assert(every_prefix_has_an_anchor(), "a secret prefix without an anchor byte would never be compared");

bool body_char(Body body, char c) {
    switch (body) {
        case Body::Alnum:
            return is_ascii_alnum(c);
        case Body::AlnumUnderscore:
            return is_ascii_alnum(c) || c == '_';
        case Body::UpperAlnum:
            return (c >= 'A' && c <= 'Z') || is_ascii_digit(c);
        case Body::AlnumDash:
            return is_ascii_alnum(c) || c == '-';
    }
    return false;
}

class SecretDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "secret"; }
    // Every prefix has a non-hex letter; token bodies are long alphanumeric runs, PEM headers long lines.
    DetectorGate gate() const override {
        return DetectorGate::when_any(kGateLength15 | kGateAlnumRun10 | kHasNonHexLetter,
                                      kGateLength27 | kHasDash | kHasUpper | kHasNonHexLetter);
    }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        // Every prefix holds an anchor byte ('_', '-' or 'A') at most kAnchorReach bytes after its start, so
        // a prefix can start only in [anchor - kAnchorReach, anchor]: those windows, in order, are the only
        // starts compared (prose has few anchors, while the prefixes' first letters are everywhere).
        static constexpr ByteSetFinder kAnchors(kAnchorBytes);
        size_t next_start = 0;
        kAnchors.find_if(text, 0, [&](size_t q) {
            size_t i = std::max(next_start, q >= kAnchorReach ? q - kAnchorReach : 0);
            for (; i <= q; ++i) {
                const char c = text[i];
                if (c != 'p' && c != 's' && c != 'r' && c != 'g' && c != 'A' && c != 'x') continue;
                if (i > 0 && is_word_byte(text[i - 1])) continue;
                for (const SecretPrefix& p : kPrefixes) {
                    if (p.prefix[0] == c && text.substr(i, p.prefix.size()) == p.prefix) {
                        i = match_prefixed(text, i, p, out) - 1;
                        break;
                    }
                }
            }
            next_start = std::max(next_start, i);
            return false;  // every anchor is visited
        });
        find_private_keys(text, out);
    }

  private:
    // `pos` starts `p.prefix` at a token boundary; returns where scanning resumes.
    size_t match_prefixed(std::string_view text, size_t pos, const SecretPrefix& p,
                          std::vector<DetectorMatch>& out) const {
        size_t body_begin = pos + p.prefix.size();
        size_t end = body_begin;
        while (end < text.size() && body_char(p.body, text[end])) ++end;
        size_t len = end - body_begin;
        bool bounded_right = end == text.size() || !is_word_byte(text[end]);
        if (bounded_right && len >= p.min_len && (p.max_len == 0 || len <= p.max_len))
            out.push_back({pos, end, id()});
        return end > pos ? end : pos + 1;
    }

    void find_private_keys(std::string_view text, std::vector<DetectorMatch>& out) const {
        size_t pos = 0;
        if (text.size() < 27) return;  // "-----BEGIN PRIVATE KEY-----"
        while ((pos = text.find("-----BEGIN ", pos)) != std::string_view::npos) {
            size_t line_end = text.find("-----", pos + 11);
            if (line_end == std::string_view::npos) return;
            std::string_view label = text.substr(pos + 11, line_end - (pos + 11));
            if (label.size() < 11 || label.substr(label.size() - 11) != "PRIVATE KEY") {
                pos = line_end;
                continue;
            }
            // The whole block up to the END line; an unterminated block runs to the end of the text.
            size_t end_marker = text.find("-----END ", line_end + 5);
            size_t end = text.size();
            if (end_marker != std::string_view::npos) {
                size_t close = text.find("-----", end_marker + 9);
                end = close == std::string_view::npos ? text.size() : close + 5;
            }
            out.push_back({pos, end, id()});
            pos = end;
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_secret_detector() {
    return std::make_unique<SecretDetector>();
}

}  // namespace edgeguard::privacy
