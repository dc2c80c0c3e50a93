// ServerTlsContext: building from files, validation errors, and real handshakes against OpenSSL clients.
#include "proxy/tls/tls_context.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/socket.h>

#include <algorithm>
#include <ctime>
#include <fstream>

#include "proxy/tls/tls_ticket_keys.h"
#include "tests/unit/tls/tls_test_support.h"

namespace edgeguard {
namespace {

using tls_test::client_ctx;
using tls_test::handshake;
using tls_test::Pki;
using tls_test::SslPtr;

TlsConfig config_with(std::initializer_list<std::string> names) {
    TlsConfig c;
    for (const std::string& n : names)
        c.certificates.push_back({Pki::file(n + ".pem"), Pki::file(n + ".key")});
    return c;
}

bool any_contains(const std::vector<std::string>& v, const std::string& needle) {
    return std::any_of(v.begin(), v.end(),
                       [&](const std::string& s) { return s.find(needle) != std::string::npos; });
}

class TlsContextTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(Pki::dir().empty()) << "openssl CLI could not generate the test PKI";
    }

    // A handshake of a fresh client (optionally with SNI, ALPN list, client certificate) against `server`.
    tls_test::HandshakeOutcome connect(const ServerTlsContext& server, const char* sni = nullptr,
                                       SSL_SESSION* resume = nullptr, int max_version = TLS1_3_VERSION,
                                       const char* client_cert = nullptr, bool offer_alpn = true,
                                       const char* alpn_list = "\x08http/1.1\x02h2") {
        auto cctx = client_ctx(max_version);
        if (client_cert != nullptr) {
            SSL_CTX_use_certificate_file(cctx.get(), Pki::file(std::string(client_cert) + ".pem").c_str(),
                                         SSL_FILETYPE_PEM);
            SSL_CTX_use_PrivateKey_file(cctx.get(), Pki::file(std::string(client_cert) + ".key").c_str(),
                                        SSL_FILETYPE_PEM);
        }
        SslPtr client(SSL_new(cctx.get()));
        SslPtr srv(server.new_ssl());
        if (sni != nullptr) SSL_set_tlsext_host_name(client.get(), sni);
        if (offer_alpn) {
            SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>(alpn_list),
                                static_cast<unsigned int>(std::char_traits<char>::length(alpn_list)));
        }
        if (resume != nullptr) SSL_set_session(client.get(), resume);
        return handshake(client.get(), srv.get());
    }
};

TEST_F(TlsContextTest, BuildsFromOneCertificateAndReadsItsNames) {
    ServerTlsOptions options;
    options.listener_name = "https";
    auto r = build_server_tls_context(config_with({"a"}), options);
    ASSERT_TRUE(r.errors.empty()) << r.errors.front();
    ASSERT_NE(r.context, nullptr);
    ASSERT_EQ(r.context->certificates().size(), 1u);
    const auto& names = r.context->certificates()[0].names;
    EXPECT_NE(std::find(names.begin(), names.end(), "a.test"), names.end());
    EXPECT_NE(std::find(names.begin(), names.end(), "localhost"), names.end());
    EXPECT_FALSE(r.context->requires_client_certificate());
}

TEST_F(TlsContextTest, SniLookupPrefersExactThenOneLabelWildcardThenDefault) {
    auto r = build_server_tls_context(config_with({"a", "b", "cn"}));
    ASSERT_NE(r.context, nullptr) << r.errors.front();
    const ServerTlsContext& c = *r.context;
    EXPECT_EQ(c.certificate_for("a.test"), 0u);
    EXPECT_EQ(c.certificate_for("x.b.test"), 1u);
    EXPECT_EQ(c.certificate_for("X.B.Test"), 1u);
    EXPECT_EQ(c.certificate_for("x.b.test."), 1u);
    EXPECT_EQ(c.certificate_for("b.test"), 0u) << "a wildcard does not cover its apex";
    EXPECT_EQ(c.certificate_for("y.x.b.test"), 0u) << "a wildcard covers exactly one label";
    EXPECT_EQ(c.certificate_for("cn.test"), 2u) << "CN is the name when there is no SAN";
    EXPECT_EQ(c.certificate_for("unknown.example"), 0u);
    EXPECT_EQ(c.certificate_for(""), 0u);
    EXPECT_EQ(c.certificate_for(std::string(300, 'a')), 0u);
}

TEST_F(TlsContextTest, HandshakeServesTheCertificateSniAsksFor) {
    auto r = build_server_tls_context(config_with({"a", "b", "cn"}));
    ASSERT_NE(r.context, nullptr);
    auto wild = connect(*r.context, "api.b.test");
    ASSERT_TRUE(wild.ok);
    EXPECT_EQ(wild.peer_subject, "b.test");
    auto cn = connect(*r.context, "cn.test");
    ASSERT_TRUE(cn.ok);
    EXPECT_EQ(cn.peer_subject, "cn.test");
    auto none = connect(*r.context, nullptr);
    ASSERT_TRUE(none.ok);
    EXPECT_EQ(none.peer_subject, "a.test");
    for (auto* s : {wild.session, cn.session, none.session}) SSL_SESSION_free(s);
}

TEST_F(TlsContextTest, NegotiatesTls13AndAlpnHttp11Only) {
    auto r = build_server_tls_context(config_with({"a"}));
    ASSERT_NE(r.context, nullptr);
    auto out = connect(*r.context, "a.test");
    ASSERT_TRUE(out.ok);
    EXPECT_EQ(out.version, "TLSv1.3");
    EXPECT_EQ(out.alpn, "http/1.1") << "h2 was offered first but only http/1.1 is spoken";
    SSL_SESSION_free(out.session);
    auto h2_only = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, true, "\x02h2");
    EXPECT_FALSE(h2_only.ok) << "no common application protocol must be refused (RFC 7301)";
    auto no_alpn = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, false);
    EXPECT_TRUE(no_alpn.ok) << "clients that send no ALPN are plain HTTP/1.1 clients";
    SSL_SESSION_free(no_alpn.session);
}

TEST_F(TlsContextTest, OfferingH2PrefersItAndServesAnH2OnlyClient) {
    TlsConfig config = config_with({"a"});
    config.offer_h2 = true;
    auto r = build_server_tls_context(config);
    ASSERT_NE(r.context, nullptr);
    auto both = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, true, "\x08http/1.1\x02h2");
    ASSERT_TRUE(both.ok);
    EXPECT_EQ(both.alpn, "h2") << "the server's preference wins whatever the client's order";
    SSL_SESSION_free(both.session);
    auto h2_only = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, true, "\x02h2");
    ASSERT_TRUE(h2_only.ok);
    EXPECT_EQ(h2_only.alpn, "h2");
    SSL_SESSION_free(h2_only.session);
    auto h11_only = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, true, "\x08http/1.1");
    ASSERT_TRUE(h11_only.ok);
    EXPECT_EQ(h11_only.alpn, "http/1.1");
    SSL_SESSION_free(h11_only.session);
    auto neither = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr, true, "\x08spdy/3.1");
    EXPECT_FALSE(neither.ok) << "no common application protocol must be refused (RFC 7301)";
}

TEST_F(TlsContextTest, AcceptsTls12RefusesTls11AndHonoursMinimum13) {
    auto r = build_server_tls_context(config_with({"a"}));
    ASSERT_NE(r.context, nullptr);
    auto v12 = connect(*r.context, "a.test", nullptr, TLS1_2_VERSION);
    ASSERT_TRUE(v12.ok);
    EXPECT_EQ(v12.version, "TLSv1.2");
    SSL_SESSION_free(v12.session);
    EXPECT_FALSE(connect(*r.context, "a.test", nullptr, TLS1_1_VERSION).ok);
    EXPECT_EQ(r.context->counters().handshake_failures.load(), 1u);

    TlsConfig only13 = config_with({"a"});
    only13.min_version = "1.3";
    auto r13 = build_server_tls_context(only13);
    ASSERT_NE(r13.context, nullptr);
    EXPECT_FALSE(connect(*r13.context, "a.test", nullptr, TLS1_2_VERSION).ok);
    auto v13 = connect(*r13.context, "a.test");
    EXPECT_TRUE(v13.ok);
    SSL_SESSION_free(v13.session);
}

TEST_F(TlsContextTest, SessionTicketsResumeAndAreCounted) {
    for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
        auto r = build_server_tls_context(config_with({"a"}));
        ASSERT_NE(r.context, nullptr);
        auto first = connect(*r.context, "a.test", nullptr, version);
        ASSERT_TRUE(first.ok);
        EXPECT_FALSE(first.reused);
        auto second = connect(*r.context, "a.test", first.session, version);
        ASSERT_TRUE(second.ok);
        EXPECT_TRUE(second.reused) << "version " << version;
        EXPECT_EQ(r.context->counters().handshakes.load(), 2u);
        EXPECT_EQ(r.context->counters().resumed.load(), 1u);
        SSL_SESSION_free(first.session);
        SSL_SESSION_free(second.session);
    }
}

TEST_F(TlsContextTest, TicketsSurviveOneRotationButNotTwo) {
    ServerTlsOptions options;
    options.ticket_key_rotation = std::chrono::seconds(60);
    // The ring reads this clock; the test moves it instead of waiting for real rotations.
    auto now = std::make_shared<TicketKeyRing::Clock::time_point>(TicketKeyRing::Clock::now());
    options.ticket_clock = [now] { return *now; };
    auto r = build_server_tls_context(config_with({"a"}), options);
    ASSERT_NE(r.context, nullptr);
    auto first = connect(*r.context, "a.test");
    ASSERT_TRUE(first.ok);
    *now += std::chrono::seconds(61);
    auto after_one = connect(*r.context, "a.test", first.session);
    ASSERT_TRUE(after_one.ok);
    EXPECT_TRUE(after_one.reused) << "the previous key still opens tickets";
    EXPECT_EQ(r.context->runtime()->ticket_keys->live_keys(), 2u);
    *now += std::chrono::seconds(120);
    auto after_two = connect(*r.context, "a.test", first.session);
    ASSERT_TRUE(after_two.ok);
    EXPECT_FALSE(after_two.reused) << "a key two intervals old is gone";
    for (auto* s : {first.session, after_one.session, after_two.session}) SSL_SESSION_free(s);
}

TEST_F(TlsContextTest, RebuildKeepsCountersAndTicketKeysAndServesTheNewCertificate) {
    auto old_build = build_server_tls_context(config_with({"a"}));
    ASSERT_NE(old_build.context, nullptr);
    auto first = connect(*old_build.context, "a.test");
    ASSERT_TRUE(first.ok);
    // An SSL created before the reload keeps working after the old context object is gone.
    SslPtr in_flight(old_build.context->new_ssl());
    auto rebuilt = rebuild_server_tls_context(config_with({"a2"}), *old_build.context);
    ASSERT_NE(rebuilt.context, nullptr);
    old_build.context.reset();
    auto cctx = client_ctx();
    SslPtr late_client(SSL_new(cctx.get()));
    auto late = handshake(late_client.get(), in_flight.get());
    EXPECT_TRUE(late.ok);
    SSL_SESSION_free(late.session);

    auto resumed = connect(*rebuilt.context, "a.test", first.session);
    ASSERT_TRUE(resumed.ok);
    EXPECT_TRUE(resumed.reused) << "tickets issued before SIGHUP still resume";
    EXPECT_EQ(rebuilt.context->counters().handshakes.load(), 3u);
    EXPECT_EQ(rebuilt.context->certificates()[0].cert_file, Pki::file("a2.pem"));
    for (auto* s : {first.session, resumed.session}) SSL_SESSION_free(s);
}

TEST_F(TlsContextTest, ClientCertificatesAreRequiredAndVerifiedAgainstTheCa) {
    TlsConfig mtls = config_with({"a"});
    mtls.client_ca_file = Pki::file("ca.pem");
    auto r = build_server_tls_context(mtls);
    ASSERT_NE(r.context, nullptr) << r.errors.front();
    EXPECT_TRUE(r.context->requires_client_certificate());
    auto good = connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, "client");
    EXPECT_TRUE(good.ok);
    SSL_SESSION_free(good.session);
    EXPECT_FALSE(connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, nullptr).ok);
    EXPECT_FALSE(connect(*r.context, "a.test", nullptr, TLS1_3_VERSION, "rogue").ok);
    EXPECT_FALSE(connect(*r.context, "a.test", nullptr, TLS1_2_VERSION, "rogue").ok);
    EXPECT_EQ(r.context->counters().handshake_failures.load(), 3u);
}

TEST_F(TlsContextTest, PlainHttpOnTheTlsPortGetsA400AndIsCounted) {
    auto r = build_server_tls_context(config_with({"a"}));
    ASSERT_NE(r.context, nullptr);
    int fds[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    const std::string request = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
    ASSERT_EQ(write(fds[1], request.data(), request.size()), static_cast<ssize_t>(request.size()));
    SslPtr server(r.context->new_ssl());
    SSL_set_fd(server.get(), fds[0]);
    EXPECT_LE(SSL_accept(server.get()), 0);
    ERR_clear_error();
    char reply[512] = {};
    const ssize_t n = read(fds[1], reply, sizeof reply - 1);
    ASSERT_GT(n, 0);
    EXPECT_EQ(std::string(reply, 12), "HTTP/1.1 400");
    EXPECT_EQ(read(fds[1], reply, sizeof reply), 0) << "the write side is shut after the reply";
    EXPECT_EQ(r.context->counters().plain_http.load(), 1u);
    EXPECT_EQ(r.context->counters().handshake_failures.load(), 1u);
    close(fds[0]);
    close(fds[1]);
}

TEST_F(TlsContextTest, MissingFilesAreErrorsThatNameTheFile) {
    TlsConfig c;
    c.certificates.push_back({Pki::file("nope.pem"), Pki::file("nope.key")});
    auto r = build_server_tls_context(c);
    EXPECT_EQ(r.context, nullptr);
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_TRUE(any_contains(r.errors, "nope.pem: No such file"));
    EXPECT_TRUE(any_contains(r.errors, "nope.key: No such file"));
    EXPECT_EQ(validate_tls_config(c).size(), 2u);
}

TEST_F(TlsContextTest, KeyThatDoesNotMatchTheCertificateIsAnError) {
    TlsConfig c;
    c.certificates.push_back({Pki::file("a.pem"), Pki::file("b.key")});
    auto errors = validate_tls_config(c);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_TRUE(any_contains(errors, "does not match")) << errors[0];
}

TEST_F(TlsContextTest, NonPemFilesAndEncryptedKeysAreErrorsNotPrompts) {
    const std::string junk = Pki::file("junk.pem");
    std::ofstream(junk) << "not a certificate\n";
    TlsConfig bad_cert;
    bad_cert.certificates.push_back({junk, Pki::file("a.key")});
    EXPECT_TRUE(any_contains(validate_tls_config(bad_cert), "not a PEM certificate chain"));

    // An encrypted key would make OpenSSL prompt on the terminal; it must fail instead.
    const std::string encrypted = Pki::file("a-encrypted.key");
    const std::string cmd = "openssl pkey -in " + Pki::file("a.key") + " -aes256 -passout pass:secret -out " +
                            encrypted + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0);
    TlsConfig enc;
    enc.certificates.push_back({Pki::file("a.pem"), encrypted});
    auto errors = validate_tls_config(enc);
    ASSERT_EQ(errors.size(), 1u);
    EXPECT_TRUE(any_contains(errors, "unencrypted PEM private key"));
    EXPECT_FALSE(any_contains(errors, "secret"));
}

TEST_F(TlsContextTest, ConfigShapeErrors) {
    TlsConfig none;
    EXPECT_TRUE(any_contains(validate_tls_config(none), "at least one certificate"));
    TlsConfig old = config_with({"a"});
    old.min_version = "1.1";
    EXPECT_TRUE(any_contains(validate_tls_config(old), "min_version"));
    TlsConfig ca_missing = config_with({"a"});
    ca_missing.client_ca_file = Pki::file("missing-ca.pem");
    EXPECT_TRUE(any_contains(validate_tls_config(ca_missing), "client_ca_file"));
    TlsConfig ok = config_with({"a", "b"});
    EXPECT_TRUE(validate_tls_config(ok).empty());
}

// Written with the OpenSSL API because the 3.0 CLI cannot back-date a certificate.
void write_expired_certificate(const std::string& cert_path, const std::string& key_path) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 7);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3 * 86400);
    X509_gmtime_adj(X509_getm_notAfter(cert), -86400);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("old.test"),
                               -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    X509_sign(cert, key, EVP_sha256());
    FILE* f = std::fopen(cert_path.c_str(), "w");
    PEM_write_X509(f, cert);
    std::fclose(f);
    f = std::fopen(key_path.c_str(), "w");
    PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
    std::fclose(f);
    X509_free(cert);
    EVP_PKEY_free(key);
}

// Expired is reported apart: serve starts with it (warning), check refuses it (ConfigLoadOptions).
TEST_F(TlsContextTest, ExpiredCertificateIsReportedNotAnError) {
    write_expired_certificate(Pki::file("expired.pem"), Pki::file("expired.key"));
    TlsConfig c;
    c.certificates.push_back({Pki::file("expired.pem"), Pki::file("expired.key")});
    auto r = build_server_tls_context(c);
    EXPECT_TRUE(r.errors.empty());
    ASSERT_NE(r.context, nullptr);
    EXPECT_TRUE(any_contains(r.expired, "has expired"));
    EXPECT_FALSE(any_contains(r.warnings, "has expired"));
    // Its notAfter, as exported on /metrics, lies in the past.
    const int64_t not_after = r.context->certificates().front().not_after;
    EXPECT_GT(not_after, 0);
    EXPECT_LT(not_after, static_cast<int64_t>(std::time(nullptr)));
}

TEST_F(TlsContextTest, DuplicateNamesAcrossCertificatesWarnAndTheFirstWins) {
    auto r = build_server_tls_context(config_with({"a", "a2"}));
    ASSERT_NE(r.context, nullptr);
    EXPECT_TRUE(any_contains(r.warnings, "a.test"));
    EXPECT_EQ(r.context->certificate_for("a.test"), 0u);
}

}  // namespace
}  // namespace edgeguard
