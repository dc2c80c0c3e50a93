#include "filters/hmac_key.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

namespace edgeguard::privacy {

namespace {

// Writes a fresh random key to `file` (exclusive create, 0600); false when it cannot.
bool create_key_file(const std::string& file) {
    const size_t slash = file.rfind('/');
    if (slash != std::string::npos && slash > 0) ::mkdir(file.substr(0, slash).c_str(), 0700);
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return false;
    static constexpr char kHex[] = "0123456789abcdef";
    std::string text;
    for (unsigned char c : raw) {
        text.push_back(kHex[c >> 4]);
        text.push_back(kHex[c & 0xF]);
    }
    text.push_back('\n');
    // Written whole under a private name, then linked into place: link() is atomic and fails with EEXIST
    // when another process won the race, so no reader ever sees an empty or half-written key.
    const std::string temp = file + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
                         ::fsync(fd) == 0;
    ::close(fd);
    const bool linked = written && (::link(temp.c_str(), file.c_str()) == 0 || errno == EEXIST);
    ::unlink(temp.c_str());
    return linked;
}

}  // namespace

std::shared_ptr<const HmacKey> HmacKey::random(std::string id) {
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof(raw)) != 1) return nullptr;
    return std::make_shared<HmacKey>(std::move(id), std::string(reinterpret_cast<const char*>(raw), sizeof raw));
}

bool HmacKey::create_file(const std::string& file, std::string* error) {
    if (::access(file.c_str(), F_OK) == 0) {
        *error = "'" + file + "' already exists; it is never overwritten (a new key changes every hashed id)";
        return false;
    }
    if (!create_key_file(file) || ::access(file.c_str(), F_OK) != 0) {
        *error = "cannot write '" + file + "': " + std::strerror(errno);
        return false;
    }
    return true;
}

std::shared_ptr<const HmacKey> HmacKey::load(std::string id, const std::string& env, const std::string& file,
                                             bool create_if_missing, std::string* error) {
    std::string secret;
    std::string tried;
    if (!env.empty()) {
        const char* value = std::getenv(env.c_str());
        if (value != nullptr && *value != '\0') secret = value;
        tried = "environment variable " + env;
    }
    if (secret.empty() && !file.empty()) {
        if (create_if_missing && ::access(file.c_str(), F_OK) != 0) create_key_file(file);
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
