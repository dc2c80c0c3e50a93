// Session-ticket keys with rotation, shared by every SSL_CTX of one TLS listener (all workers, all SNI
// contexts, and across SIGHUP rebuilds when the caller hands the ring on), so a ticket issued by any worker
// resumes on any other. Keys are random, live only in memory, and are replaced every `rotation` interval;
// the previous key still decrypts for one more interval so clients are not forced into full handshakes
// at every rotation.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace edgeguard {

class TicketKeyRing {
public:
    using Clock = std::chrono::steady_clock;
    // Where the ring reads the time; empty means Clock::now. Rotation is judged by this clock only, so a
    // caller that supplies its own (a test) decides when keys age.
    using TimeSource = std::function<Clock::time_point()>;

    explicit TicketKeyRing(std::chrono::seconds rotation, TimeSource now = {});

    // Installs `ring` as the ticket-key callback of `ctx`; the context keeps a reference to the ring.
    static void attach(SSL_CTX* ctx, std::shared_ptr<TicketKeyRing> ring);

    // Number of keys still accepted for decryption (current + not yet expired previous ones).
    size_t live_keys() const;

private:
    struct Key {
        std::array<unsigned char, 16> name;
        std::array<unsigned char, 32> aes;
        std::array<unsigned char, 32> hmac;
        Clock::time_point created;
    };

    static int ticket_callback(SSL* ssl, unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher,
                               EVP_MAC_CTX* mac, int encrypt);
    int seal(unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac);
    int open(const unsigned char* key_name, unsigned char* iv, EVP_CIPHER_CTX* cipher, EVP_MAC_CTX* mac);
    // Adds a fresh key when the current one is older than the interval and drops keys older than two.
    // Returns false when the random generator fails (then tickets are simply not issued).
    bool rotate_locked(Clock::time_point now);
    Clock::time_point now_locked() const { return now_ ? now_() : Clock::now(); }

    const std::chrono::seconds rotation_;
    mutable std::mutex mutex_;  // handshake path only; never touched per request
    std::deque<Key> keys_;      // front = current
    const TimeSource now_;
};

}  // namespace edgeguard
