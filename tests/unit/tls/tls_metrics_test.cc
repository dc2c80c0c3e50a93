// Per-listener TLS counters as exported on /metrics: failure classification of OpenSSL reasons, and real
// handshakes (full, resumed, refused) moving the rendered samples of the right listener only.
#include "proxy/tls/tls_metrics.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <string>
#include <vector>

#include "proxy/tls/tls_context.h"
#include "tests/unit/tls/tls_test_support.h"

namespace edgeguard {
namespace {

using tls_test::client_ctx;
using tls_test::handshake;
using tls_test::Pki;
using tls_test::SslPtr;

unsigned long ssl_reason(int reason) {
    return ERR_PACK(ERR_LIB_SSL, 0, reason);
}

TEST(TlsFailureClassTest, MapsOpenSslReasonsToClosedClasses) {
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_HTTP_REQUEST)),
              TlsFailureClass::PlainHttp);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_UNSUPPORTED_PROTOCOL)),
              TlsFailureClass::ProtocolVersion);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_VERSION_TOO_LOW)),
              TlsFailureClass::ProtocolVersion);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_NO_SHARED_CIPHER)),
              TlsFailureClass::NoSharedCipher);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_NO_APPLICATION_PROTOCOL)),
              TlsFailureClass::Alpn);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE)),
              TlsFailureClass::ClientCertificate);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_TLSV1_ALERT_UNKNOWN_CA)),
              TlsFailureClass::PeerAlert);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_TLSV1_ALERT_PROTOCOL_VERSION)),
              TlsFailureClass::ProtocolVersion);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_WRONG_VERSION_NUMBER)),
              TlsFailureClass::Malformed);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ssl_reason(SSL_R_UNEXPECTED_EOF_WHILE_READING)),
              TlsFailureClass::PeerClosed);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SYSCALL, 0), TlsFailureClass::PeerClosed);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, 0), TlsFailureClass::Other);
    EXPECT_EQ(classify_tls_failure(SSL_ERROR_SSL, ERR_PACK(ERR_LIB_EVP, 0, 1)), TlsFailureClass::Other);
}

TEST(TlsFailureClassTest, NamesAreDistinctLabelValues) {
    std::vector<std::string> names;
    for (size_t c = 0; c < kTlsFailureClassCount; ++c) {
        const std::string name(tls_failure_class_name(static_cast<TlsFailureClass>(c)));
        ASSERT_FALSE(name.empty());
        for (char ch : name) EXPECT_TRUE((ch >= 'a' && ch <= 'z') || ch == '_') << name;
        for (const std::string& seen : names) EXPECT_NE(seen, name);
        names.push_back(name);
    }
}

class TlsMetricsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_FALSE(Pki::dir().empty()) << "openssl CLI could not generate the test PKI";
    }

    static std::shared_ptr<const ServerTlsContext> listener(const std::string& name,
                                                            const std::string& min_version,
                                                            bool mtls = false) {
        TlsConfig config;
        config.certificates.push_back({Pki::file("a.pem"), Pki::file("a.key")});
        config.min_version = min_version;
        if (mtls) config.client_ca_file = Pki::file("ca.pem");
        ServerTlsOptions options;
        options.listener_name = name;
        auto built = build_server_tls_context(config, options);
        EXPECT_TRUE(built.errors.empty()) << (built.errors.empty() ? "" : built.errors.front());
        return built.context;
    }

    // One client handshake; `alpn` is a wire-format ALPN list ("" = offer none).
    static tls_test::HandshakeOutcome connect(const ServerTlsContext& server, int max_version,
                                              SSL_SESSION* resume = nullptr,
                                              std::string_view alpn = "\x08http/1.1") {
        auto cctx = client_ctx(max_version);
        SslPtr client(SSL_new(cctx.get()));
        SslPtr srv(server.new_ssl());
        SSL_set_tlsext_host_name(client.get(), "a.test");
        if (!alpn.empty())
            SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>(alpn.data()),
                                static_cast<unsigned int>(alpn.size()));
        if (resume != nullptr) SSL_set_session(client.get(), resume);
        return handshake(client.get(), srv.get());
    }

    static bool has_line(const std::string& text, const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    }
};

TEST_F(TlsMetricsTest, HandshakesResumptionsAndFailuresAreRenderedPerListener) {
    auto https = listener("https", "1.2");
    auto strict = listener("strict13", "1.3", /*mtls=*/true);
    ASSERT_NE(https, nullptr);
    ASSERT_NE(strict, nullptr);

    auto full12 = connect(*https, TLS1_2_VERSION);
    ASSERT_TRUE(full12.ok);
    auto full13 = connect(*https, TLS1_3_VERSION);
    ASSERT_TRUE(full13.ok);
    auto resumed = connect(*https, TLS1_3_VERSION, full13.session);
    ASSERT_TRUE(resumed.ok);
    EXPECT_TRUE(resumed.reused);
    EXPECT_FALSE(connect(*https, TLS1_3_VERSION, nullptr, "\x02h2").ok) << "h2-only client: no common ALPN";
    EXPECT_FALSE(connect(*strict, TLS1_2_VERSION).ok) << "TLS 1.2 client against min_version 1.3";
    EXPECT_FALSE(connect(*strict, TLS1_3_VERSION).ok) << "mTLS listener, no client certificate";
    for (auto* s : {full12.session, full13.session, resumed.session}) SSL_SESSION_free(s);

    std::string out = "\n";
    append_tls_listener_metrics(out, {https, nullptr, strict});
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_handshakes_total{listener="https",version="TLSv1.2"} 1)"))
        << out;
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_handshakes_total{listener="https",version="TLSv1.3"} 2)"))
        << out;
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_handshakes_total{listener="strict13",version="TLSv1.3"} 0)"));
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_resumed_handshakes_total{listener="https"} 1)")) << out;
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_resumed_handshakes_total{listener="strict13"} 0)")) << out;
    EXPECT_TRUE(has_line(out, R"(edgeguard_tls_handshake_errors_total{listener="https",reason="alpn"} 1)"))
        << out;
    EXPECT_TRUE(has_line(
        out, R"(edgeguard_tls_handshake_errors_total{listener="https",reason="protocol_version"} 0)"));
    EXPECT_TRUE(has_line(
        out, R"(edgeguard_tls_handshake_errors_total{listener="strict13",reason="protocol_version"} 1)"))
        << out;
    EXPECT_TRUE(has_line(
        out, R"(edgeguard_tls_handshake_errors_total{listener="strict13",reason="client_certificate"} 1)"))
        << out;
    // Every failure lands in exactly one class.
    uint64_t classified = 0;
    for (const auto& c : strict->counters().failures_by_class) classified += c.load();
    EXPECT_EQ(classified, strict->counters().handshake_failures.load());
}

TEST_F(TlsMetricsTest, FamiliesArePresentWithoutTlsListeners) {
    std::string out;
    append_tls_listener_metrics(out, {nullptr});
    for (const char* family : {"edgeguard_tls_handshakes_total", "edgeguard_tls_resumed_handshakes_total",
                               "edgeguard_tls_handshake_errors_total"}) {
        EXPECT_NE(out.find(std::string("# TYPE ") + family + " counter\n"), std::string::npos) << family;
        EXPECT_EQ(out.find(std::string(family) + "{"), std::string::npos)
            << "no samples without a TLS listener";
    }
}

}  // namespace
}  // namespace edgeguard
