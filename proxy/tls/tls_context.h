// The server side of optional TLS: an immutable set of OpenSSL contexts built from one listener's TlsConfig.
// Several certificates are chosen by SNI, TLS 1.2/1.3 only, ALPN "h2" then "http/1.1" (or "http/1.1" alone),
// session tickets with rotating keys, optional client-certificate verification. A SIGHUP builds a new ServerTlsContext from the files and
// publishes it; connections already accepted keep the SSL_CTX they started with (OpenSSL refcounts it, and
// everything a handshake callback needs is owned by the SSL_CTX itself, not by this object).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"
#include "proxy/tls/tls_ticket_keys.h"

namespace edgeguard {

class TicketKeyRing;
struct SniTable;

// Why a handshake failed, as a closed set of classes for metric labels (OpenSSL's reason strings are too
// many and too fine for a dashboard). Ordered as rendered.
enum class TlsFailureClass : uint8_t {
    PlainHttp,          // plain HTTP sent to the TLS port (answered 400)
    ProtocolVersion,    // no TLS version in common (e.g. a TLS 1.1 client, or 1.2 against min_version 1.3)
    NoSharedCipher,     // no cipher suite, group or signature algorithm in common
    Alpn,               // the client offered ALPN protocols but none the listener speaks
    ClientCertificate,  // mTLS: no client certificate, or one that does not verify
    PeerAlert,          // the client aborted with an alert (typically: it does not trust our certificate)
    PeerClosed,         // the connection closed mid-handshake (scanners, TCP health checks)
    Malformed,          // bytes that are not a TLS record or a well-formed handshake message
    Timeout,            // edgeguard closed it: the handshake did not finish within the first-byte deadline
    Other,
};
inline constexpr size_t kTlsFailureClassCount = 10;
std::string_view tls_failure_class_name(TlsFailureClass c);
// `ssl_error` is SSL_get_error()'s answer, `err` the last queued OpenSSL error (0 = none).
TlsFailureClass classify_tls_failure(int ssl_error, unsigned long err);
// Counts a handshake that edgeguard itself cut off (its deadline passed before the handshake completed) as a
// failure of class Timeout on the SSL's listener. OpenSSL never sees an error for it, so the info callback
// that counts the other classes cannot. A handshake already counted (completed or failed) is left alone.
void count_tls_handshake_timeout(SSL* ssl);

// The protocol versions a listener can negotiate (min_version is 1.2 or 1.3), for the version label.
enum class TlsVersionClass : uint8_t { Tls12, Tls13 };
inline constexpr size_t kTlsVersionClassCount = 2;
std::string_view tls_version_class_name(TlsVersionClass v);

// Monotonic per-listener counters for the metrics endpoint; carried over by rebuild_server_tls_context().
// Shared by the listener's workers: a handshake costs hundreds of microseconds of public-key work, so a few
// relaxed adds on a shared line are noise next to it, and per-listener totals need no per-worker merging.
struct TlsCounters {
    std::atomic<uint64_t> handshakes{0};          // completed handshakes, full or resumed
    std::atomic<uint64_t> resumed{0};             // of which resumed from a session ticket
    std::atomic<uint64_t> handshake_failures{0};  // handshakes that ended in an error, plain HTTP included
    std::atomic<uint64_t> plain_http{0};          // plain HTTP requests sent to the TLS port (answered 400)
    std::array<std::atomic<uint64_t>, kTlsVersionClassCount> handshakes_by_version{};
    std::array<std::atomic<uint64_t>, kTlsFailureClassCount> failures_by_class{};
};

// State that outlives any one build: counters, ticket keys, and the log limiter. Every SSL_CTX of the
// listener holds a reference, so callbacks on connections accepted before a reload stay valid.
struct TlsListenerRuntime {
    TlsListenerRuntime(std::string name, std::chrono::seconds ticket_key_rotation,
                       TicketKeyRing::TimeSource ticket_clock = {});
    const std::string listener_name;
    const std::chrono::seconds ticket_key_rotation;
    TlsCounters counters;
    std::shared_ptr<TicketKeyRing> ticket_keys;
    // At most kLogLinesPerSecond failure lines per second: a scanner must not be able to flood the log.
    static constexpr uint32_t kLogLinesPerSecond = 20;
    std::atomic<int64_t> log_window_second{0};
    std::atomic<uint32_t> log_lines_in_window{0};
};

struct ServerTlsOptions {
    std::string listener_name;  // used in log lines only
    std::chrono::seconds ticket_key_rotation{std::chrono::hours(1)};
    TicketKeyRing::TimeSource ticket_clock;       // empty: the steady clock
    std::shared_ptr<TlsListenerRuntime> runtime;  // null: a fresh one (new counters and keys)
};

class ServerTlsContext {
  public:
    struct Certificate {
        SSL_CTX* ctx = nullptr;          // owned reference
        std::vector<std::string> names;  // lower-case DNS names from SAN (else CN), "*.x" kept
        std::string cert_file;
        int64_t not_after = 0;           // the leaf's notAfter, seconds since the Unix epoch
    };

    ~ServerTlsContext();
    ServerTlsContext(const ServerTlsContext&) = delete;
    ServerTlsContext& operator=(const ServerTlsContext&) = delete;

    // A server-side SSL for a freshly accepted connection, on the default certificate's context (the SNI
    // callback may move it to another). Null only when OpenSSL cannot allocate.
    SSL* new_ssl() const;

    // The certificate that serves `server_name`: exact name, then a wildcard one label up, else the first.
    size_t certificate_for(std::string_view server_name) const;
    const std::vector<Certificate>& certificates() const { return certificates_; }
    bool requires_client_certificate() const { return requires_client_certificate_; }
    const TlsCounters& counters() const { return runtime_->counters; }
    const std::shared_ptr<TlsListenerRuntime>& runtime() const { return runtime_; }

  private:
    friend struct ServerTlsBuilder;
    ServerTlsContext() = default;

    std::vector<Certificate> certificates_;
    std::shared_ptr<const SniTable> sni_;
    std::shared_ptr<TlsListenerRuntime> runtime_;
    bool requires_client_certificate_ = false;
};

struct ServerTlsBuildResult {
    std::shared_ptr<const ServerTlsContext> context;  // null when errors is non-empty
    std::vector<std::string> errors;                  // missing/unreadable files, key not matching cert, ...
    std::vector<std::string> warnings;                // not yet valid or expiring within 14 days, duplicates
    std::vector<std::string> expired;                 // certificates past their notAfter (serve still starts)
};

ServerTlsBuildResult build_server_tls_context(const TlsConfig& config, const ServerTlsOptions& options = {});

// For SIGHUP: builds from the (re-read) files but keeps `previous`'s counters and ticket keys, so metrics
// stay monotonic and tickets issued before the reload still resume. On error the caller keeps `previous`.
ServerTlsBuildResult rebuild_server_tls_context(const TlsConfig& config, const ServerTlsContext& previous);

// For the config loader and `edgeguard check`: builds a context and throws it away. Errors only; use
// build_server_tls_context() to see warnings too.
std::vector<std::string> validate_tls_config(const TlsConfig& config);

}  // namespace edgeguard
