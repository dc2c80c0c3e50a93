#include "proxy/tls/tls_upstream.h"

#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace edgeguard {
namespace {

std::string drain_errors() {
    std::string out;
    while (unsigned long e = ERR_get_error()) {
        char buf[256];
        ERR_error_string_n(e, buf, sizeof buf);
        if (!out.empty()) out += "; ";
        out += buf;
    }
    return out.empty() ? "unknown OpenSSL error" : out;
}

}  // namespace

struct UpstreamTlsBuilder {
    static UpstreamTlsBuildResult build(const UpstreamTlsConfig& config) {
        UpstreamTlsBuildResult result;
        ERR_clear_error();
        std::unique_ptr<UpstreamTlsContext> context(new UpstreamTlsContext());
        context->server_name_ = config.server_name;
        context->verify_ = config.verify;
        SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
        if (ctx == nullptr) {
            result.errors.push_back("cannot create upstream TLS context: " + drain_errors());
            return result;
        }
        context->ctx_ = ctx;
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
        SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
        static constexpr unsigned char kAlpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        SSL_CTX_set_alpn_protos(ctx, kAlpn, sizeof kAlpn);
        if (config.verify) {
            int loaded = 0;
            if (config.ca_file.empty()) {
                loaded = SSL_CTX_set_default_verify_paths(ctx);
            } else if (std::FILE* f = std::fopen(config.ca_file.c_str(), "rb"); f == nullptr) {
                result.errors.push_back("cannot read upstream tls ca_file " + config.ca_file + ": " +
                                        std::strerror(errno));
                return result;
            } else {
                std::fclose(f);
                loaded = SSL_CTX_load_verify_locations(ctx, config.ca_file.c_str(), nullptr);
            }
            if (loaded != 1) {
                result.errors.push_back(
                    "upstream tls ca_file " +
                    (config.ca_file.empty() ? std::string("(system store)") : config.ca_file) + ": " +
                    drain_errors());
                return result;
            }
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
        } else {
            SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
        }
        ERR_clear_error();
        result.context = std::move(context);
        return result;
    }
};

UpstreamTlsContext::~UpstreamTlsContext() {
    SSL_CTX_free(ctx_);
}

SSL* UpstreamTlsContext::new_ssl(std::string_view host) const {
    SSL* ssl = SSL_new(ctx_);
    if (ssl == nullptr) return nullptr;
    const std::string name = server_name_.empty() ? std::string(host) : server_name_;
    unsigned char addr[16];
    const bool is_ip =
        inet_pton(AF_INET, name.c_str(), addr) == 1 || inet_pton(AF_INET6, name.c_str(), addr) == 1;
    bool ok = true;
    if (!is_ip) ok = SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;  // RFC 6066: no IP literals in SNI
    if (ok && verify_) {
        if (is_ip) {
            ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name.c_str()) == 1;
        } else {
            SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(ssl, name.c_str()) == 1;
        }
    }
    if (!ok) {
        ERR_clear_error();
        SSL_free(ssl);
        return nullptr;
    }
    return ssl;
}

UpstreamTlsBuildResult build_upstream_tls_context(const UpstreamTlsConfig& config) {
    return UpstreamTlsBuilder::build(config);
}

std::vector<std::string> validate_upstream_tls_config(const UpstreamTlsConfig& config) {
    return build_upstream_tls_context(config).errors;
}

}  // namespace edgeguard
