// ConfigLoader: reads `listeners:` and their `tls:` blocks.
#include "proxy/config/config_loader.h"

#include <sys/stat.h>

namespace edgeguard {

// For TCP listeners' `tls:`, checked like an HTTP listener's.
void ConfigLoader::read_checked_tls(const YAML::Node& v, const std::string& what, TlsConfig& tls) {
    const size_t errors_before = r_.errors().size();
    read_tls(v, what, tls);
    if (r_.errors().size() == errors_before) {
        for (const auto& e : validate_tls_config(tls)) r_.error(v, what + ": " + e);
    }
}

void ConfigLoader::read_tls(const YAML::Node& n, const std::string& what, TlsConfig& tls) {
    auto readable_file = [&](const YAML::Node& v, const std::string& field, std::string& out) {
        auto s = r_.string(v, field);
        if (!s) return;
        out = config_files::resolve_path(dir_, *s);
        const std::string why = config_files::unreadable_reason(out);
        if (!why.empty()) r_.error(v, field + ": file '" + out + "' " + why);
    };
    r_.read_map(
        n, what,
        {{"certificates",
          [&](const YAML::Node& v) {
              r_.read_list(v, what + ".certificates", [&](const YAML::Node& item) {
                  TlsCertConfig c;
                  r_.read_map(
                      item, what + " certificate",
                      {{"cert",
                        [&](const YAML::Node& f) { readable_file(f, what + " cert", c.cert_file); },
                        true},
                       {"key", [&](const YAML::Node& f) { readable_file(f, what + " key", c.key_file); },
                        true}});
                  tls.certificates.push_back(std::move(c));
              });
              if (tls.certificates.empty()) r_.error(v, what + ".certificates: needs at least one");
          },
          true},
         {"min_version",
          [&](const YAML::Node& v) {
              auto s = r_.string(v, what + ".min_version");
              if (!s) return;
              if (*s != "1.2" && *s != "1.3") {
                  r_.error(v, what + ".min_version: expected \"1.2\" or \"1.3\", got '" + *s + "'");
              } else {
                  tls.min_version = *s;
              }
          }},
         {"client_ca",
          [&](const YAML::Node& v) { readable_file(v, what + ".client_ca", tls.client_ca_file); }},
         {"watch_interval", [&](const YAML::Node& v) {
              if (auto d = r_.duration(v, what + ".watch_interval")) tls.watch_interval = *d;
          }}});
}

void ConfigLoader::read_listeners(const YAML::Node& n) {
    std::map<std::string, YAML::Node> names;
    std::map<std::string, YAML::Node> addresses;
    r_.read_list(n, "listeners", [&](const YAML::Node& item) {
        ListenerConfig l;
        l.name = "listener-" + std::to_string(cfg_.listeners.size() + 1);
        std::string what = "listener " + std::to_string(cfg_.listeners.size() + 1);
        YAML::Node name_node = item;
        std::optional<YAML::Node> address_node, http2_node, h2c_node;
        if (item.IsMap() && item["name"] && item["name"].IsScalar()) {
            what = "listener '" + item["name"].Scalar() + "'";
        }
        r_.read_map(
            item, what,
            {{"name",
              [&](const YAML::Node& v) {
                  name_node.reset(v);
                  if (auto s = r_.string(v, what + " name")) l.name = *s;
              }},
             {"address",
              [&](const YAML::Node& v) {
                  address_node.emplace(v);
                  if (auto a = r_.address(v, what + " address")) l.address = *a;
              },
              true},
             {"allow", [&](const YAML::Node& v) { r_.cidr_list(v, what + " allow", l.allow); }},
             {"deny", [&](const YAML::Node& v) { r_.cidr_list(v, what + " deny", l.deny); }},
             {"tls",
              [&](const YAML::Node& v) {
                  l.tls.emplace();
                  const size_t errors_before = r_.errors().size();
                  read_tls(v, what + " tls", *l.tls);
                  // Only when the files were readable: then check loads them as serve would, so a key
                  // that does not match its certificate is a check error, not a startup failure.
                  if (r_.errors().size() == errors_before) {
                      const ServerTlsBuildResult built = build_server_tls_context(*l.tls);
                      for (const auto& e : built.errors) r_.error(v, what + " tls: " + e);
                      for (const auto& w : built.warnings) r_.warning(v, what + " tls: " + w);
                      for (const auto& e : built.expired) {
                          if (options_.expired_certificate_is_error) {
                              r_.error(v, what + " tls: " + e);
                          } else {
                              r_.warning(v, what + " tls: " + e);
                          }
                      }
                  }
              }},
             {"acme_webroot",
              [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + " acme_webroot");
                  if (!s) return;
                  l.acme_webroot = config_files::resolve_path(dir_, *s);
                  struct stat st {};
                  if (::stat(l.acme_webroot.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
                      r_.error(v, what + " acme_webroot: '" + l.acme_webroot + "' is not a directory");
              }},
             {"response_headers",
              [&](const YAML::Node& v) { read_response_headers(v, what, l.response_headers); }},
             {"http2",
              [&](const YAML::Node& v) {
                  http2_node.emplace(v);
                  if (auto b = r_.boolean(v, what + " http2")) l.http2 = *b;
              }},
             {"h2c",
              [&](const YAML::Node& v) {
                  h2c_node.emplace(v);
                  if (auto b = r_.boolean(v, what + " h2c")) l.h2c = *b;
              }},
             {"redirect_https_to", [&](const YAML::Node& v) {
                  auto s = r_.string(v, what + " redirect_https_to");
                  if (!s) return;
                  if (!valid_redirect_target(*s)) {
                      r_.error(
                          v, what +
                                 " redirect_https_to: expected ':<port>' such as ':443' or a host[:port]"
                                 " such as 'posthog.example.com', got '" +
                                 *s + "'");
                  } else {
                      l.redirect_https_to = *s;
                  }
              }}});
        // ALPN is part of the TLS handshake; a plain listener learns HTTP/2 only from the client's preface.
        if (http2_node && !l.tls && l.http2)
            r_.error(*http2_node, what + " http2: needs tls (plain listeners speak HTTP/2 only with h2c: true)");
        if (h2c_node && l.tls && l.h2c)
            r_.error(*h2c_node, what + " h2c: only on a plain listener (a TLS listener offers h2 by ALPN)");
        if (!l.tls) l.http2 = false;
        if (l.tls) l.tls->offer_h2 = l.http2;
        if (!names.emplace(l.name, name_node).second) {
            r_.error(name_node, "duplicate listener name '" + l.name + "'");
        }
        if (address_node && l.address.port != 0 &&
            !addresses.emplace(l.address.str(), *address_node).second) {
            r_.error(*address_node, "two listeners on " + l.address.str());
        }
        cfg_.listeners.push_back(std::move(l));
    });
    if ((n.IsSequence() && n.size() == 0) || n.IsNull())
        r_.error(n, "listeners: needs at least one listener");
}

}  // namespace edgeguard
