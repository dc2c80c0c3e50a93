// ACME HTTP-01 challenges (RFC 8555 §8.3) answered from a webroot directory, so `certbot --webroot` or
// `lego --http.webroot` renews a certificate through edgeguard's plain listener: the ACME client writes
// <webroot>/.well-known/acme-challenge/<token>, the CA fetches http://<host>/.well-known/acme-challenge/<token>.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace edgeguard {

inline constexpr std::string_view kAcmeChallengePrefix = "/.well-known/acme-challenge/";
// A key authorization is "<token>.<base64url SHA-256 thumbprint>", about 90 bytes; anything much larger in
// that directory is not a challenge answer and is never served.
inline constexpr size_t kMaxAcmeChallengeBytes = 1024;
// Tokens carry at least 128 bits of base64url (RFC 8555 §8.3); CAs use 43 characters.
inline constexpr size_t kMaxAcmeTokenLength = 255;

// True when `normalized_path` lies under /.well-known/acme-challenge/ (the directory itself included).
bool is_acme_challenge_path(std::string_view normalized_path);

// The token of a challenge path, or empty when it is not a well-formed base64url token (which no file can
// then answer: the charset keeps '/', '.' and '%' out, so no path can leave the directory).
std::string_view acme_challenge_token(std::string_view normalized_path);

struct AcmeChallengeFile {
    int status = 0;       // 200, or 404 when absent, unreadable, not a regular file or too large
    std::string body;     // the key authorization for 200
    std::string reason;   // why not, for the error body and the log (404)
};

// Reads <webroot>/.well-known/acme-challenge/<token>: a regular file (symbolic links are not followed),
// at most kMaxAcmeChallengeBytes. `token` must come from acme_challenge_token().
AcmeChallengeFile read_acme_challenge(std::string_view webroot, std::string_view token);

}  // namespace edgeguard
