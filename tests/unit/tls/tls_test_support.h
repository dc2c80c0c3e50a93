// Shared by the TLS unit tests: a throw-away PKI generated with the openssl CLI (tests/tls/make_certs.sh)
// and an in-memory handshake driver, so context behaviour is checked against real OpenSSL peers.
#pragma once

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace edgeguard::tls_test {

class Pki {
public:
    // Generates once per test binary; returns the directory ("" when generation failed).
    static const std::string& dir() {
        static const std::string path = generate();
        return path;
    }
    static std::string file(const std::string& name) { return dir() + "/" + name; }

private:
    static std::string generate() {
        char tmpl[] = "/tmp/edgeguard-tls-unit-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) return {};
        const std::string cmd = std::string("bash " EDGEGUARD_SOURCE_DIR "/tests/tls/make_certs.sh ") + tmpl;
        if (std::system(cmd.c_str()) != 0) return {};
        // A plain char array: it outlives static std::strings, whose destructors may run before atexit hooks.
        std::snprintf(cleanup_dir(), kPathMax, "%s", tmpl);
        std::atexit([] { std::filesystem::remove_all(cleanup_dir()); });
        return tmpl;
    }
    static constexpr size_t kPathMax = 64;
    static char* cleanup_dir() {
        static char dir[kPathMax] = {};
        return dir;
    }
};

struct SslCtxDeleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
struct SslDeleter {
    void operator()(SSL* s) const { SSL_free(s); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;
using SslPtr = std::unique_ptr<SSL, SslDeleter>;

// A client context trusting the test CA.
inline SslCtxPtr client_ctx(int max_version = TLS1_3_VERSION) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_min_proto_version(ctx.get(), TLS1_VERSION);
    SSL_CTX_set_max_proto_version(ctx.get(), max_version);
    if (max_version < TLS1_2_VERSION) SSL_CTX_set_cipher_list(ctx.get(), "DEFAULT:@SECLEVEL=0");
    SSL_CTX_load_verify_locations(ctx.get(), Pki::file("ca.pem").c_str(), nullptr);
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    return ctx;
}

struct HandshakeOutcome {
    bool ok = false;
    std::string version;       // "TLSv1.3"
    std::string alpn;          // selected protocol, "" when none
    std::string peer_subject;  // server certificate subject CN, as seen by the client
    bool reused = false;
    SSL_SESSION* session = nullptr;  // client session after the first application byte (owned by the caller)
};

// Runs a full handshake between `client` and `server` over a BIO pair, then one byte of application data
// server -> client so TLS 1.3 session tickets reach the client.
inline HandshakeOutcome handshake(SSL* client, SSL* server) {
    BIO* client_bio = nullptr;
    BIO* server_bio = nullptr;
    BIO_new_bio_pair(&client_bio, 0, &server_bio, 0);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_connect_state(client);
    SSL_set_accept_state(server);
    HandshakeOutcome out;
    bool client_done = false, server_done = false;
    for (int round = 0; round < 50 && !(client_done && server_done); ++round) {
        if (!client_done) {
            const int r = SSL_do_handshake(client);
            if (r == 1) client_done = true;
            else if (SSL_get_error(client, r) != SSL_ERROR_WANT_READ) break;
        }
        if (!server_done) {
            const int r = SSL_do_handshake(server);
            if (r == 1) server_done = true;
            else if (SSL_get_error(server, r) != SSL_ERROR_WANT_READ) break;
        }
    }
    ERR_clear_error();
    if (!(client_done && server_done)) return out;
    char byte = 'x';
    if (SSL_write(server, &byte, 1) != 1 || SSL_read(client, &byte, 1) != 1) return out;
    out.ok = true;
    out.version = SSL_get_version(client);
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(client, &alpn, &alpn_len);
    out.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    if (X509* peer = SSL_get1_peer_certificate(client)) {
        char cn[256] = {};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
        out.peer_subject = cn;
        X509_free(peer);
    }
    out.reused = SSL_session_reused(client) == 1;
    out.session = SSL_get1_session(client);
    // Freeing an SSL that did not shut down marks its session not resumable; a real client sends close_notify.
    SSL_set_shutdown(client, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    SSL_set_shutdown(server, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
    return out;
}

}  // namespace edgeguard::tls_test
