#include "filters/hmac_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

namespace edgeguard::privacy {

std::shared_ptr<const HmacKey> HmacKey::load(std::string id, const std::string& env, const std::string& file,
                                             std::string* error) {
    std::string secret;
    std::string tried;
    if (!env.empty()) {
        const char* value = std::getenv(env.c_str());
        if (value != nullptr && *value != '\0') secret = value;
        tried = "environment variable " + env;
    }
    if (secret.empty() && !file.empty()) {
        std::ifstream in(file, std::ios::binary);
        if (in) {
            std::stringstream buffer;
            buffer << in.rdbuf();
            secret = buffer.str();
            while (!secret.empty() && (secret.back() == '\n' || secret.back() == '\r')) secret.pop_back();
        }
        tried += (tried.empty() ? "" : " and ") + std::string("file ") + file;
    }
    if (secret.empty()) {
        *error = "hash key `" + id + "` not available (tried " + (tried.empty() ? "nothing" : tried) + ")";
        return nullptr;
    }
    if (secret.size() < 16) {
        *error = "hash key `" + id + "` is shorter than 16 bytes";
        return nullptr;
    }
    return std::make_shared<HmacKey>(std::move(id), std::move(secret));
}

std::string HmacKey::token(std::string_view value) const {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    HMAC(EVP_sha256(), secret_.data(), static_cast<int>(secret_.size()),
         reinterpret_cast<const unsigned char*>(value.data()), value.size(), digest, &digest_len);
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out = id_;
    out.push_back(':');
    uint32_t acc = 0;
    int bits = 0;
    for (unsigned int i = 0; i < digest_len; ++i) {
        acc = (acc << 8) | digest[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(kAlphabet[(acc >> bits) & 0x3f]);
        }
    }
    if (bits > 0) out.push_back(kAlphabet[(acc << (6 - bits)) & 0x3f]);
    return out;
}

}  // namespace edgeguard::privacy
