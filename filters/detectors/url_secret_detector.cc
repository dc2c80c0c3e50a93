// Values of sensitive URL query and fragment parameters (?token=, #access_token=, &password=, ?code=,
// ?email=, ...): capability tokens and OIDC codes that end up in $current_url. Only the value is reported,
// so the URL keeps its shape. Marketing parameters (utm_*) and other keys pass.
#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

bool sensitive_key(std::string_view key) {
    static constexpr std::string_view kExact[] = {
        "token", "code",   "key",     "secret",    "password", "passwd",       "pwd",        "pass",
        "auth",  "otp",    "session", "sessionid", "sid",      "access_token", "id_token",   "refresh_token",
        "email", "e-mail", "mail",    "phone",     "tel",      "apikey",       "api_secret", "signature",
        "sig",   "jwt",    "bearer",  "auth_code", "ticket",   "magic_link",   "credential", "credentials",
    };
    for (std::string_view k : kExact) {
        if (key.size() == k.size() && find_ascii_ci(key, k) == 0) return true;
    }
    // Suffixes: reset_token, x-auth-token, client_secret, user_password.
    static constexpr std::string_view kSuffixes[] = {"_token", "-token", "_secret", "_password", "_otp"};
    for (std::string_view s : kSuffixes) {
        if (key.size() > s.size() && find_ascii_ci(key.substr(key.size() - s.size()), s) == 0) return true;
    }
    return false;
}

bool value_end(char c) {
    return c == '&' || c == '#' || c == ' ' || c == '"' || c == '\'' || c == ';';
}

class UrlSecretDetector final : public GatedDetector {
  public:
    std::string_view id() const override { return "url_secret"; }
    DetectorGate gate() const override { return DetectorGate::when(kHasEquals | kHasQueryMark); }
    void find(std::string_view text, const DetectorContext&, std::vector<DetectorMatch>& out) const override {
        static constexpr ByteSetFinder kQueryMarks("?&#");
        for (size_t i = kQueryMarks.next(text, 0); i < text.size(); i = kQueryMarks.next(text, i + 1)) {
            size_t key_begin = i + 1, eq = key_begin;
            while (eq < text.size() && text[eq] != '=' && !value_end(text[eq]) && text[eq] != '?') ++eq;
            if (eq >= text.size() || text[eq] != '=' || eq == key_begin) continue;
            size_t value_begin = eq + 1, end = value_begin;
            while (end < text.size() && !value_end(text[end])) ++end;
            if (end > value_begin && sensitive_key(text.substr(key_begin, eq - key_begin)))
                out.push_back({value_begin, end, id()});
            i = end - 1;
        }
    }
};

}  // namespace

std::unique_ptr<GatedDetector> make_url_secret_detector() {
    return std::make_unique<UrlSecretDetector>();
}

}  // namespace edgeguard::privacy
