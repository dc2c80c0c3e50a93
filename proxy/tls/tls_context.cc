#include "proxy/tls/tls_context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <utility>

#include "proxy/tls/tls_ticket_keys.h"
#include "proxy/ops/process_log.h"

namespace edgeguard {

// Names that select a certificate: exact names and wildcard suffixes, both sorted for binary search.
// Owned by the default SSL_CTX (ex_data), which also keeps references on the other contexts it can switch to.
struct SniTable {
    std::vector<SSL_CTX*> contexts;                     // index = certificate; [0] is the default
    std::vector<std::pair<std::string, size_t>> exact;  // "api.example.com" -> certificate
    // "example.com" (from "*.example.com") -> certificate
    std::vector<std::pair<std::string, size_t>> wildcard;

    ~SniTable() {
        for (size_t i = 1; i < contexts.size(); ++i) SSL_CTX_free(contexts[i]);
    }
    size_t lookup(std::string_view server_name) const;
};

namespace {

constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr const char* kTls13Suites =
    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256";
constexpr const char* kGroups = "X25519:P-256:P-384";

template <typename T>
void free_owned_shared_ptr(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
    delete static_cast<std::shared_ptr<T>*>(ptr);
}

// Process-wide ex_data slots: allocated once, read-only afterwards.
int runtime_ex_index() {
    static const int index =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_owned_shared_ptr<TlsListenerRuntime>);
    return index;
}
int sni_ex_index() {
    static const int index =
        SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &free_owned_shared_ptr<const SniTable>);
    return index;
}
// Per-SSL marker so a connection is counted once however often OpenSSL reports "done" (TLS 1.3 tickets).
int counted_ex_index() {
    static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
    return index;
}

std::string drain_openssl_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>((c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c);
    return out;
}

bool is_dns_name(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
               c == '.' || c == '*' || c == '_';
    });
}

// Checks the file can be opened so the error says "No such file" / "Permission denied" rather than an
// OpenSSL error stack.
std::string unreadable(const std::string& what, const std::string& path) {
    if (path.empty()) return what + " is empty";
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return "cannot read " + what + " " + path + ": " + std::strerror(errno);
    std::fclose(f);
    return {};
}

std::vector<std::string> certificate_names(X509* cert) {
    std::vector<std::string> names;
    auto* sans = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (sans != nullptr) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); ++i) {
            const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type != GEN_DNS) continue;
            std::string_view name(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                                  static_cast<size_t>(ASN1_STRING_length(gn->d.dNSName)));
            if (is_dns_name(name)) names.push_back(lower(name));
        }
        GENERAL_NAMES_free(sans);
    }
    if (names.empty()) {  // legacy certificates: the subject CN is the name (RFC 6125 fallback)
        X509_NAME* subject = X509_get_subject_name(cert);
        const int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
        if (idx >= 0) {
            unsigned char* utf8 = nullptr;
            const int len =
                ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
            if (len > 0) {
                std::string_view cn(reinterpret_cast<const char*>(utf8), static_cast<size_t>(len));
                if (is_dns_name(cn)) names.push_back(lower(cn));
            }
            OPENSSL_free(utf8);
        }
    }
    return names;
}

void add_validity_warnings(X509* cert, const std::string& file, ServerTlsBuildResult& result) {
    std::vector<std::string>& warnings = result.warnings;
    if (X509_cmp_current_time(X509_get0_notAfter(cert)) < 0) {
        result.expired.push_back("certificate " + file + " has expired; clients will refuse it");
    } else if (X509_cmp_current_time(X509_get0_notBefore(cert)) > 0) {
        warnings.push_back("certificate " + file + " is not valid yet; clients will refuse it");
    } else {
        int days = 0, seconds = 0;
        if (ASN1_TIME_diff(&days, &seconds, nullptr, X509_get0_notAfter(cert)) == 1 && days < 14) {
            warnings.push_back("certificate " + file + " expires in " + std::to_string(days) + " days");
        }
    }
}

// An encrypted key fails to load instead of OpenSSL prompting on the terminal.
int refuse_passphrase(char*, int, int, void*) {
    return 0;
}

// The protocols a listener speaks, in its order of preference, in ALPN wire format.
constexpr unsigned char kAlpnHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
constexpr unsigned char kAlpnH2Http11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};

// `arg`: one of the lists above. The server's preference wins (h2 when the client offers it at all).
int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    const bool h2 = arg == kAlpnH2Http11;
    const unsigned char* ours = h2 ? kAlpnH2Http11 : kAlpnHttp11;
    const unsigned int ours_len = h2 ? sizeof kAlpnH2Http11 : sizeof kAlpnHttp11;
    unsigned char* selected = nullptr;
    if (SSL_select_next_proto(&selected, outlen, ours, ours_len, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // RFC 7301 §3.2: no_application_protocol
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}

int select_certificate(SSL* ssl, int*, void* arg) {
    const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == nullptr) return SSL_TLSEXT_ERR_OK;  // no SNI: the default certificate
    const auto* table = static_cast<const SniTable*>(arg);
    const size_t chosen = table->lookup(name);
    if (chosen != 0 && SSL_set_SSL_CTX(ssl, table->contexts[chosen]) == nullptr)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    return SSL_TLSEXT_ERR_OK;
}

bool take_log_slot(TlsListenerRuntime& rt) {
    const int64_t now = static_cast<int64_t>(std::time(nullptr));
    int64_t window = rt.log_window_second.load(std::memory_order_relaxed);
    if (window != now &&
        rt.log_window_second.compare_exchange_strong(window, now, std::memory_order_relaxed)) {
        rt.log_lines_in_window.store(0, std::memory_order_relaxed);
    }
    return rt.log_lines_in_window.fetch_add(1, std::memory_order_relaxed) <
           TlsListenerRuntime::kLogLinesPerSecond;
}

std::string peer_of(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    if (fd < 0 || getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
    char text[INET6_ADDRSTRLEN] = "?";
    uint16_t port = 0;
    if (ss.ss_family == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
        port = ntohs(sin6->sin6_port);
    } else if (ss.ss_family == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&ss);
        inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
        port = ntohs(sin->sin_port);
    }
    return std::string(text) + ":" + std::to_string(port);
}

// OpenSSL sends nothing when it recognises plain HTTP on a TLS port; answer like nginx so the user sees why,
// then stop reading so the caller's close is clean. The socket is non-blocking and the reply tiny.
void answer_plain_http(int fd) {
    char discard[4096];
    for (int i = 0; i < 4 && recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0; ++i) {
    }
    static constexpr std::string_view kReply =
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 46\r\nConnection: "
        "close\r\n\r\n"
        "This port speaks HTTPS; plain HTTP was sent.\r\n";
    (void)!send(fd, kReply.data(), kReply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    shutdown(fd, SHUT_WR);
}

// Counts completed and failed handshakes. Failures are logged without secrets: peer, OpenSSL reason, SNI.
void on_tls_info(const SSL* const_ssl, int where, int ret) {
    SSL* ssl = const_cast<SSL*>(const_ssl);
    auto* owned = static_cast<std::shared_ptr<TlsListenerRuntime>*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), runtime_ex_index()));
    if (owned == nullptr || SSL_get_ex_data(ssl, counted_ex_index()) != nullptr) return;
    TlsListenerRuntime& rt = **owned;
    if (where & SSL_CB_HANDSHAKE_DONE) {
        SSL_set_ex_data(ssl, counted_ex_index(), reinterpret_cast<void*>(1));
        rt.counters.handshakes.fetch_add(1, std::memory_order_relaxed);
        const size_t version = static_cast<size_t>(
            SSL_version(ssl) == TLS1_3_VERSION ? TlsVersionClass::Tls13 : TlsVersionClass::Tls12);
        rt.counters.handshakes_by_version[version].fetch_add(1, std::memory_order_relaxed);
        if (SSL_session_reused(ssl)) rt.counters.resumed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (!(where & SSL_CB_EXIT) || !(where & SSL_ST_ACCEPT) || ret > 0) return;
    const int err = SSL_get_error(ssl, ret);
    if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_CLIENT_HELLO_CB)
        return;
    SSL_set_ex_data(ssl, counted_ex_index(), reinterpret_cast<void*>(2));
    rt.counters.handshake_failures.fetch_add(1, std::memory_order_relaxed);
    const unsigned long e = ERR_peek_last_error();  // peek: libevent reads the queue after us
    const TlsFailureClass failure = classify_tls_failure(err, e);
    rt.counters.failures_by_class[static_cast<size_t>(failure)].fetch_add(1, std::memory_order_relaxed);
    if (failure == TlsFailureClass::PlainHttp) {
        rt.counters.plain_http.fetch_add(1, std::memory_order_relaxed);
        answer_plain_http(SSL_get_fd(ssl));
    }
    if (!take_log_slot(rt)) return;
    const char* reason = e != 0 ? ERR_reason_error_string(e) : nullptr;
    const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    log_process(LogLevel::Warning, "edgeguard: tls handshake failed listener=%s peer=%s sni=%s reason=\"%s\"",
                 rt.listener_name.c_str(), peer_of(SSL_get_fd(ssl)).c_str(), sni != nullptr ? sni : "-",
                 reason != nullptr ? reason : (err == SSL_ERROR_SYSCALL ? "connection closed" : "unknown"));
}

}  // namespace

void count_tls_handshake_timeout(SSL* ssl) {
    auto* owned = static_cast<std::shared_ptr<TlsListenerRuntime>*>(
        SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), runtime_ex_index()));
    if (owned == nullptr || SSL_get_ex_data(ssl, counted_ex_index()) != nullptr) return;
    SSL_set_ex_data(ssl, counted_ex_index(), reinterpret_cast<void*>(2));
    TlsListenerRuntime& rt = **owned;
    rt.counters.handshake_failures.fetch_add(1, std::memory_order_relaxed);
    rt.counters.failures_by_class[static_cast<size_t>(TlsFailureClass::Timeout)].fetch_add(1, std::memory_order_relaxed);
}

std::string_view tls_failure_class_name(TlsFailureClass c) {
    switch (c) {
        case TlsFailureClass::PlainHttp:
            return "plain_http";
        case TlsFailureClass::ProtocolVersion:
            return "protocol_version";
        case TlsFailureClass::NoSharedCipher:
            return "no_shared_cipher";
        case TlsFailureClass::Alpn:
            return "alpn";
        case TlsFailureClass::ClientCertificate:
            return "client_certificate";
        case TlsFailureClass::PeerAlert:
            return "peer_alert";
        case TlsFailureClass::PeerClosed:
            return "peer_closed";
        case TlsFailureClass::Malformed:
            return "malformed";
        case TlsFailureClass::Timeout:
            return "timeout";
        case TlsFailureClass::Other:
            return "other";
    }
    return "other";
}

std::string_view tls_version_class_name(TlsVersionClass v) {
    return v == TlsVersionClass::Tls13 ? "TLSv1.3" : "TLSv1.2";
}

TlsFailureClass classify_tls_failure(int ssl_error, unsigned long err) {
    if (err == 0 || ERR_GET_LIB(err) != ERR_LIB_SSL) {
        // No OpenSSL reason: the socket reported EOF or an error while OpenSSL waited for the peer.
        if (ssl_error == SSL_ERROR_SYSCALL || ssl_error == SSL_ERROR_ZERO_RETURN)
            return TlsFailureClass::PeerClosed;
        return TlsFailureClass::Other;
    }
    switch (ERR_GET_REASON(err)) {
        case SSL_R_HTTP_REQUEST:
        case SSL_R_HTTPS_PROXY_REQUEST:
            return TlsFailureClass::PlainHttp;
        case SSL_R_UNSUPPORTED_PROTOCOL:
        case SSL_R_UNSUPPORTED_SSL_VERSION:
        case SSL_R_VERSION_TOO_LOW:
        case SSL_R_VERSION_TOO_HIGH:
        case SSL_R_INAPPROPRIATE_FALLBACK:
        case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        case SSL_R_TLSV1_ALERT_INAPPROPRIATE_FALLBACK:
            return TlsFailureClass::ProtocolVersion;
        case SSL_R_NO_SHARED_CIPHER:
        case SSL_R_NO_SHARED_GROUPS:
        case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
            return TlsFailureClass::NoSharedCipher;
        case SSL_R_NO_APPLICATION_PROTOCOL:
            return TlsFailureClass::Alpn;
        case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
        case SSL_R_CERTIFICATE_VERIFY_FAILED:
        case SSL_R_NO_CERTIFICATES_RETURNED:
        case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
            return TlsFailureClass::ClientCertificate;
        case SSL_R_UNEXPECTED_EOF_WHILE_READING:
            return TlsFailureClass::PeerClosed;
        case SSL_R_WRONG_VERSION_NUMBER:
        case SSL_R_UNKNOWN_PROTOCOL:
        case SSL_R_PACKET_LENGTH_TOO_LONG:
        case SSL_R_RECORD_LENGTH_MISMATCH:
        case SSL_R_BAD_PACKET_LENGTH:
        case SSL_R_LENGTH_MISMATCH:
        case SSL_R_BAD_RECORD_TYPE:
        case SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC:
            return TlsFailureClass::Malformed;
        default:
            break;
    }
    // Any other alert the client sent (unknown_ca, bad_certificate, ...): reason = offset + alert number.
    const int reason = ERR_GET_REASON(err);
    if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
        return TlsFailureClass::PeerAlert;
    return TlsFailureClass::Other;
}

size_t SniTable::lookup(std::string_view server_name) const {
    char buf[256];
    if (server_name.empty() || server_name.size() >= sizeof buf) return 0;
    for (size_t i = 0; i < server_name.size(); ++i) {
        const char c = server_name[i];
        buf[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    std::string_view name(buf, server_name.size());
    if (name.back() == '.') name.remove_suffix(1);  // "example.com." is the same host
    auto find = [](const std::vector<std::pair<std::string, size_t>>& v,
                   std::string_view key) -> const size_t* {
        auto it = std::lower_bound(v.begin(), v.end(), key,
                                   [](const auto& entry, std::string_view k) { return entry.first < k; });
        return (it != v.end() && it->first == key) ? &it->second : nullptr;
    };
    if (const size_t* hit = find(exact, name)) return *hit;
    const size_t dot = name.find('.');
    if (dot != std::string_view::npos && dot > 0) {  // "*.example.com" covers exactly one label
        if (const size_t* hit = find(wildcard, name.substr(dot + 1))) return *hit;
    }
    return 0;
}

TlsListenerRuntime::TlsListenerRuntime(std::string name, std::chrono::seconds ticket_key_rotation,
                                       TicketKeyRing::TimeSource ticket_clock)
    : listener_name(std::move(name)),
      ticket_key_rotation(ticket_key_rotation),
      ticket_keys(std::make_shared<TicketKeyRing>(ticket_key_rotation, std::move(ticket_clock))) {}

ServerTlsContext::~ServerTlsContext() {
    for (Certificate& c : certificates_) SSL_CTX_free(c.ctx);
}

SSL* ServerTlsContext::new_ssl() const {
    return SSL_new(certificates_.front().ctx);
}

size_t ServerTlsContext::certificate_for(std::string_view server_name) const {
    return sni_->lookup(server_name);
}

struct ServerTlsBuilder {
    const TlsConfig& config;
    std::shared_ptr<TlsListenerRuntime> runtime;
    ServerTlsBuildResult result;
    std::unique_ptr<ServerTlsContext> context{new ServerTlsContext()};

    void error(std::string message) { result.errors.push_back(std::move(message)); }

    // Settings every context of the listener shares; after an SNI switch OpenSSL reads some from the new one.
    SSL_CTX* new_common_ctx(int min_version, const unsigned char* sid_ctx, unsigned int sid_ctx_len) {
        SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
        if (ctx == nullptr) {
            error("cannot create TLS context: " + drain_openssl_errors());
            return nullptr;
        }
        SSL_CTX_set_min_proto_version(ctx, min_version);
        SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
        SSL_CTX_set_options(
            ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        // Idle keep-alive connections would otherwise pin ~34 KiB of TLS buffers each.
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        if (SSL_CTX_set_cipher_list(ctx, kTls12Ciphers) != 1 ||
            SSL_CTX_set_ciphersuites(ctx, kTls13Suites) != 1 || SSL_CTX_set1_groups_list(ctx, kGroups) != 1) {
            error("cannot set TLS ciphers: " + drain_openssl_errors());
        }
        SSL_CTX_set_alpn_select_cb(ctx, &select_alpn,
                                   const_cast<unsigned char*>(config.offer_h2 ? kAlpnH2Http11 : kAlpnHttp11));
        SSL_CTX_set_info_callback(ctx, &on_tls_info);
        SSL_CTX_set_default_passwd_cb(ctx, &refuse_passphrase);
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sid_ctx_len);
        // Resumption is by ticket only: no server-side session cache, so workers share no locked table and
        // memory does not grow with clients. A session lives as long as a ticket key can open it.
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_timeout(ctx, static_cast<long>(2 * runtime->ticket_key_rotation.count()));
        SSL_CTX_set_ex_data(ctx, runtime_ex_index(), new std::shared_ptr<TlsListenerRuntime>(runtime));
        TicketKeyRing::attach(ctx, runtime->ticket_keys);
        return ctx;
    }

    bool load_client_ca(SSL_CTX* ctx) {
        if (config.client_ca_file.empty()) return true;
        if (SSL_CTX_load_verify_locations(ctx, config.client_ca_file.c_str(), nullptr) != 1) {
            error("client_ca_file " + config.client_ca_file + ": " + drain_openssl_errors());
            return false;
        }
        STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(config.client_ca_file.c_str());
        if (names == nullptr) {
            ERR_clear_error();
            error("client_ca_file " + config.client_ca_file + " holds no CA certificate");
            return false;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
        SSL_CTX_set_verify_depth(ctx, 4);
        return true;
    }

    bool load_certificate(SSL_CTX* ctx, const TlsCertConfig& cert) {
        if (std::string e = unreadable("cert_file", cert.cert_file); !e.empty()) error(std::move(e));
        if (std::string e = unreadable("key_file", cert.key_file); !e.empty()) error(std::move(e));
        if (!result.errors.empty()) return false;
        if (SSL_CTX_use_certificate_chain_file(ctx, cert.cert_file.c_str()) != 1) {
            error("cert_file " + cert.cert_file +
                  " is not a PEM certificate chain: " + drain_openssl_errors());
            return false;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cert.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
            const unsigned long e = ERR_peek_last_error();
            if (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH) {
                ERR_clear_error();
                error("key_file " + cert.key_file + " does not match the certificate in " + cert.cert_file);
            } else {
                error("key_file " + cert.key_file +
                      " is not an unencrypted PEM private key: " + drain_openssl_errors());
            }
            return false;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            ERR_clear_error();
            error("key_file " + cert.key_file + " does not match the certificate in " + cert.cert_file);
            return false;
        }
        return true;
    }

    void build() {
        int min_version = TLS1_2_VERSION;
        if (config.min_version == "1.3") {
            min_version = TLS1_3_VERSION;
        } else if (config.min_version != "1.2" && !config.min_version.empty()) {
            error("min_version must be \"1.2\" or \"1.3\", not \"" + config.min_version + "\"");
        }
        if (config.certificates.empty()) error("tls needs at least one certificate");
        if (!result.errors.empty()) return;

        // Sessions are bound to the listener and its client-CA policy: a ticket from an mTLS listener must
        // not resume on another one. Same value across reloads, so tickets survive a SIGHUP.
        unsigned char sid_ctx[SSL_MAX_SID_CTX_LENGTH];
        unsigned int sid_ctx_len = 0;
        const std::string sid_source = "edgeguard\n" + runtime->listener_name + "\n" + config.client_ca_file;
        EVP_Digest(sid_source.data(), sid_source.size(), sid_ctx, &sid_ctx_len, EVP_sha256(), nullptr);
        sid_ctx_len = std::min<unsigned int>(sid_ctx_len, SSL_MAX_SID_CTX_LENGTH);

        auto table = std::make_shared<SniTable>();
        for (const TlsCertConfig& cert : config.certificates) {
            SSL_CTX* ctx = new_common_ctx(min_version, sid_ctx, sid_ctx_len);
            if (ctx == nullptr) return;
            context->certificates_.push_back({ctx, {}, cert.cert_file});
            if (!load_client_ca(ctx) || !load_certificate(ctx, cert)) return;
            X509* leaf = SSL_CTX_get0_certificate(ctx);
            add_validity_warnings(leaf, cert.cert_file, result);
            const size_t index = context->certificates_.size() - 1;
            ServerTlsContext::Certificate& entry = context->certificates_.back();
            struct tm not_after {};
            if (ASN1_TIME_to_tm(X509_get0_notAfter(leaf), &not_after) == 1) entry.not_after = timegm(&not_after);
            entry.names = certificate_names(leaf);
            if (entry.names.empty() && config.certificates.size() > 1) {
                result.warnings.push_back("certificate " + cert.cert_file +
                                          " names no host; SNI never selects it");
            }
            for (const std::string& name : entry.names) {
                const bool wild = name.size() > 2 && name[0] == '*' && name[1] == '.';
                auto& list = wild ? table->wildcard : table->exact;
                std::string key = wild ? name.substr(2) : name;
                auto dup =
                    std::find_if(list.begin(), list.end(), [&](const auto& e) { return e.first == key; });
                if (dup != list.end()) {
                    result.warnings.push_back("name " + name + " is in " + cert.cert_file +
                                              " and an earlier " + "certificate; the earlier one serves it");
                    continue;
                }
                list.emplace_back(std::move(key), index);
            }
            if (index > 0) SSL_CTX_up_ref(ctx);
            table->contexts.push_back(ctx);
        }
        std::sort(table->exact.begin(), table->exact.end());
        std::sort(table->wildcard.begin(), table->wildcard.end());

        SSL_CTX* default_ctx = context->certificates_.front().ctx;
        SSL_CTX_set_tlsext_servername_callback(default_ctx, &select_certificate);
        SSL_CTX_set_tlsext_servername_arg(default_ctx, const_cast<SniTable*>(table.get()));
        SSL_CTX_set_ex_data(default_ctx, sni_ex_index(), new std::shared_ptr<const SniTable>(table));
        context->sni_ = std::move(table);
        context->runtime_ = runtime;
        context->requires_client_certificate_ = !config.client_ca_file.empty();
    }
};

ServerTlsBuildResult build_server_tls_context(const TlsConfig& config, const ServerTlsOptions& options) {
    ERR_clear_error();
    auto runtime = options.runtime ? options.runtime
                                   : std::make_shared<TlsListenerRuntime>(options.listener_name,
                                                                          options.ticket_key_rotation,
                                                                          options.ticket_clock);
    ServerTlsBuilder builder{config, std::move(runtime), {}};
    builder.build();
    ERR_clear_error();
    if (builder.result.errors.empty()) builder.result.context = std::move(builder.context);
    return std::move(builder.result);
}

ServerTlsBuildResult rebuild_server_tls_context(const TlsConfig& config, const ServerTlsContext& previous) {
    ServerTlsOptions options;
    options.runtime = previous.runtime();
    return build_server_tls_context(config, options);
}

std::vector<std::string> validate_tls_config(const TlsConfig& config) {
    return build_server_tls_context(config).errors;
}

}  // namespace edgeguard
