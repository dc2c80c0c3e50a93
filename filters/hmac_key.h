// The keyed hash behind the `hash` action: HMAC-SHA256 with a key that lives outside the rules file
// (environment variable or file), never inline. Output "<id>:<base64url>" so a key can be rotated and the
// old and new tokens told apart.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace edgeguard::privacy {

class HmacKey {
public:
    HmacKey(std::string id, std::string secret) : id_(std::move(id)), secret_(std::move(secret)) {}

    // Loads the key from the environment variable `env` (when set and non-empty) or else from `file`
    // (trailing newline stripped). With `create_if_missing`, a missing file is created with 32 random
    // bytes (mode 0600) so a fresh install hashes consistently across restarts without a manual step.
    // Returns null with a reason when no key of at least 16 bytes results.
    static std::shared_ptr<const HmacKey> load(std::string id, const std::string& env, const std::string& file,
                                               bool create_if_missing, std::string* error);

    // A key of 32 random bytes that lives only in memory (`check`, which must not write the key file).
    static std::shared_ptr<const HmacKey> random(std::string id);
    // Writes a fresh key of 32 random bytes, hex-encoded, to `file` (created exclusively, mode 0600; its
    // directory too when missing). False with a reason when the file exists or cannot be written.
    static bool create_file(const std::string& file, std::string* error);

    // "<id>:" + base64url(HMAC-SHA256(secret, value)) without padding; deterministic.
    std::string token(std::string_view value) const;
    const std::string& id() const { return id_; }

private:
    std::string id_;
    std::string secret_;
};

}  // namespace edgeguard::privacy
