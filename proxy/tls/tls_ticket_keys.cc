#include "proxy/tls/tls_ticket_keys.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>
#include <utility>

namespace edgeguard {
namespace {

void free_ring_reference(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::shared_ptr<TicketKeyRing>*>(ptr);
}

// One ex_data slot per process, allocated once and read-only afterwards.
int ring_ex_index() {
    static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_ring_reference);
    return index;
}

bool key_hmac(EVP_MAC_CTX* mac, const std::array<unsigned char, 32>& key) {
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    return EVP_MAC_CTX_set_params(mac, params) == 1 &&
           EVP_MAC_init(mac, key.data(), key.size(), nullptr) == 1;
}

}  // namespace

TicketKeyRing::TicketKeyRing(std::chrono::seconds rotation, TimeSource now)
    : rotation_(std::max(rotation, std::chrono::seconds(1))), now_(std::move(now)) {}

void TicketKeyRing::attach(SSL_CTX* ctx, std::shared_ptr<TicketKeyRing> ring) {
    SSL_CTX_set_ex_data(ctx, ring_ex_index(), new std::shared_ptr<TicketKeyRing>(std::move(ring)));
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, &TicketKeyRing::ticket_callback);
}

size_t TicketKeyRing::live_keys() const {
    std::lock_guard lock(mutex_);
    const auto now = now_locked();
    return std::count_if(keys_.begin(), keys_.end(),
                         [&](const Key& k) { return now - k.created < 2 * rotation_; });
}

int TicketKeyRing::ticket_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv,
                                   EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac, int encrypt) {
    // Tickets are sealed and opened with the session's initial context; every context of a listener carries
    // the same ring, so whichever one the SNI callback switched to gives the same answer.
    auto* ring = static_cast<std::shared_ptr<TicketKeyRing>*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ring_ex_index()));
    if (ring == nullptr) return 0;  // no ring: no tickets, full handshakes
    return encrypt ? (*ring)->seal(key_name, iv, cipher, mac) : (*ring)->open(key_name, iv, cipher, mac);
}

bool TicketKeyRing::rotate_locked(Clock::time_point now) {
    while (!keys_.empty() && now - keys_.back().created >= 2 * rotation_) keys_.pop_back();
    if (!keys_.empty() && now - keys_.front().created < rotation_) return true;
    Key key{};
    if (RAND_bytes(key.name.data(), key.name.size()) != 1 ||
        RAND_priv_bytes(key.aes.data(), key.aes.size()) != 1 ||
        RAND_priv_bytes(key.hmac.data(), key.hmac.size()) != 1) {
        return false;
    }
    key.created = now;
    keys_.push_front(key);
    return true;
}

int TicketKeyRing::seal(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* mac) {
    std::lock_guard lock(mutex_);
    if (!rotate_locked(now_locked())) return 0;  // no ticket rather than a weak one
    const Key& key = keys_.front();
    const int iv_len = EVP_CIPHER_get_iv_length(EVP_aes_256_cbc());
    if (RAND_bytes(iv, iv_len) != 1) return 0;
    std::memcpy(key_name, key.name.data(), key.name.size());
    if (EVP_EncryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
    return key_hmac(mac, key.hmac) ? 1 : -1;
}

int TicketKeyRing::open(const unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                        EVP_MAC_CTX* mac) {
    std::lock_guard lock(mutex_);
    const auto now = now_locked();
    for (size_t i = 0; i < keys_.size(); ++i) {
        const Key& key = keys_[i];
        if (std::memcmp(key.name.data(), key_name, key.name.size()) != 0) continue;
        if (now - key.created >= 2 * rotation_) return 0;  // expired: full handshake
        if (EVP_DecryptInit_ex(cipher, EVP_aes_256_cbc(), nullptr, key.aes.data(), iv) != 1) return -1;
        if (!key_hmac(mac, key.hmac)) return -1;
        // A ticket under an older key still resumes, but the client gets a new one under the current key.
        const bool current = i == 0 && now - key.created < rotation_;
        return current ? 1 : 2;
    }
    return 0;  // unknown key (another process, or long gone): full handshake
}

}  // namespace edgeguard
