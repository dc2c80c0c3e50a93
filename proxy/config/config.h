// The immutable configuration snapshot. Everything a worker reads at request time lives here; a reload
// builds a new snapshot off the workers and swaps the shared_ptr whole, so in-flight requests keep theirs.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "proxy/access/cidr.h"

namespace edgeguard::privacy {
class RuleSet;
}

namespace edgeguard {

struct TcpConfig;  // proxy/tcp/tcp_config.h

using Millis = std::chrono::milliseconds;

struct HostPort {
    std::string host;  // name or literal; IPv6 literals without brackets
    uint16_t port = 0;
    std::string str() const;  // "host:port" or "[v6]:port"
    bool operator==(const HostPort&) const = default;
};

struct Timeouts {
    Millis client_header{10'000};             // total deadline for the request line + headers
    Millis client_keepalive{60'000};          // idle between requests on a client connection
    Millis client_body_idle{60'000};          // no request-body byte for this long -> 408
    Millis upstream_connect{3'000};
    Millis upstream_response_header{60'000};  // request sent -> response headers complete, else 504
    Millis upstream_body_idle{60'000};        // no response-body byte for this long -> close
    Millis stream_idle{60'000};               // upgraded tunnels and event streams with no byte either way
};

enum class ClientIpPolicy { Forward, Truncate, Drop };

// Optional TLS to an upstream (YAML `upstreams[].tls`); absent = plain HTTP.
struct UpstreamTlsConfig {
    std::string ca_file;      // PEM bundle that verifies the upstream; empty = the system trust store
    std::string server_name;  // SNI and the name checked in its certificate; empty = the server's host
    bool verify = true;       // false skips verification (self-signed test upstreams only)
};

struct UpstreamConfig {
    std::string name;
    std::vector<HostPort> servers;
    Millis keepalive_idle{4'000};  // below Node/Go's 5 s server idle so we never reuse a closing socket
    uint32_t max_idle_per_worker = 64;
    Millis dns_refresh{30'000};
    std::optional<UpstreamTlsConfig> tls;
};

struct TlsCertConfig {
    std::string cert_file;  // PEM chain
    std::string key_file;
};

struct TlsConfig {
    std::vector<TlsCertConfig> certificates;  // first is the default; others chosen by SNI
    std::string min_version = "1.2";          // "1.2" or "1.3"
    std::string client_ca_file;               // non-empty: mTLS required
    // How often the certificate and key files are compared with what is loaded; a renewed pair is
    // loaded for new handshakes without a signal. 0 = not watched (SIGHUP only).
    Millis watch_interval{60'000};
    // ALPN offers "h2" before "http/1.1" (the listener's `http2`); otherwise "http/1.1" only.
    bool offer_h2 = false;
};

// A fixed field added to responses (YAML `response_headers`). The upstream's own field of that name wins
// unless `override_upstream`; edgeguard's own responses always get it.
struct ResponseHeaderConfig {
    std::string name;
    std::string value;
    bool override_upstream = false;
};

struct ListenerConfig {
    std::string name;
    HostPort address;
    CidrSet allow;  // empty = allow all
    CidrSet deny;
    std::optional<TlsConfig> tls;
    std::string redirect_https_to;  // non-empty: this listener only answers 308 to https://<host><this>
    // Non-empty: GET/HEAD /.well-known/acme-challenge/<token> is answered from
    // <acme_webroot>/.well-known/acme-challenge/<token> (certbot --webroot, lego --http.webroot) before the
    // HTTPS redirect and before routing.
    std::string acme_webroot;
    std::vector<ResponseHeaderConfig> response_headers;  // on every response of this listener
    // HTTP/2 from clients: on a TLS listener ALPN offers "h2" before "http/1.1" (`http2`, on by default);
    // on a plain listener a client may open with the HTTP/2 preface (`h2c`, prior knowledge, off by default).
    bool http2 = true;
    bool h2c = false;
};

struct RouteConfig {
    std::string name;
    // Segment-aware prefixes: "/e" matches "/e", "/e/" and "/e/...", never "/events".
    // A prefix ending in '/' ("/public/m/") matches only paths under it.
    std::vector<std::string> paths;
    std::string upstream;          // name in Config::upstreams
    size_t upstream_index = 0;     // resolved at load
    std::string strip_prefix;      // removed from the path sent upstream ("/livestream")
    std::string privacy_profile;   // non-empty: body buffered, decoded and filtered with this profile
    bool privacy_none = false;     // `privacy: none`: an ingestion route left unfiltered on purpose
    uint64_t max_body_bytes = 0;   // 0 = config.limits.max_body_bytes
    ClientIpPolicy client_ip = ClientIpPolicy::Forward;
    Timeouts timeouts;             // effective values (global defaults merged with the route's overrides)
    CidrSet allow;                 // empty = inherit listener's
    CidrSet deny;
    std::string rate_limit;        // name in Config::rate_limits, empty = none
    // Added after the listener's; a name set here replaces the listener's field of that name.
    std::vector<ResponseHeaderConfig> response_headers;
};

struct Limits {
    uint32_t max_header_bytes = 64 * 1024;  // request line + headers
    uint32_t max_uri_bytes = 8 * 1024;
    uint32_t max_headers = 100;
    uint64_t max_body_bytes = 0;            // 0 = unlimited by default (streaming routes)
    uint32_t buffer_per_direction = 64 * 1024;
    uint32_t max_connections = 20'000;       // total per process
    uint32_t max_connections_per_ip = 0;     // 0 = unlimited
};

// What one HTTP/2 connection may cost (the `http2:` section): every limit closes the connection with GOAWAY
// when a client goes over it, so a flood of cheap frames can never make edgeguard do unbounded work.
struct Http2Config {
    uint32_t max_concurrent_streams = 100;       // SETTINGS_MAX_CONCURRENT_STREAMS; more are refused
    uint32_t max_header_list_bytes = 64 * 1024;  // decoded header list of one request (names + values + 32 each)
    uint32_t max_continuations = 8;              // CONTINUATION frames after one HEADERS
    // Streams the client resets (RST_STREAM) or that are refused/reset for it: a token bucket per connection
    // (Rapid Reset, CVE-2023-44487).
    uint32_t stream_resets_burst = 200;
    double stream_resets_per_second = 20;
    // SETTINGS, PING, PRIORITY, WINDOW_UPDATE and empty DATA frames: what costs work but carries no request.
    uint32_t control_frames_burst = 1000;
    double control_frames_per_second = 200;
    Millis zero_window_timeout{30'000};  // a stream with a response waiting and its window closed this long
    Millis idle_timeout{60'000};         // a connection without an open stream this long is closed (GOAWAY)
};

struct RateLimitConfig {
    std::string name;
    double rate_per_second = 0;  // sustained
    uint32_t burst = 0;
    enum class Key { ClientIp, Route, Header } key = Key::ClientIp;
    std::string header;          // for Key::Header
    CidrSet exempt;
};

struct AccessLogConfig {
    bool enabled = true;
    std::string output = "stdout";  // "stdout", "off", or a file path
    bool include_query = false;
};

struct AdminConfig {
    HostPort address{"127.0.0.1", 9180};
    CidrSet allow;
};

// Rate-limit state shared by several edgeguard instances. Empty redis_url = local limiter only.
struct SharedLimitsConfig {
    std::string redis_url;       // "redis://host:port[/db]" as written
    HostPort redis_address;      // parsed from redis_url
    uint32_t redis_db = 0;
    Millis timeout{50};          // a Redis answer slower than this counts as a failure
    bool fail_open = true;       // on failure: true = decide with the local limiter, false = refuse (429)
};

struct Config {
    std::string source_path;
    std::string hash;  // hex SHA-256 of the config (and rules) bytes, exported as a metric
    uint32_t workers = 0;  // 0 = hardware threads
    Millis graceful_shutdown{30'000};
    std::vector<ListenerConfig> listeners;
    AdminConfig admin;
    CidrSet trusted_proxies;
    std::vector<UpstreamConfig> upstreams;
    std::vector<RouteConfig> routes;
    std::vector<RateLimitConfig> rate_limits;
    Limits limits;
    Timeouts timeouts;
    Http2Config http2;
    AccessLogConfig access_log;
    std::string privacy_rules_file;  // resolved relative to the config file; empty = no privacy rules
    std::shared_ptr<const privacy::RuleSet> privacy;  // compiled rules, null when none
    SharedLimitsConfig shared_limits;
    std::shared_ptr<const TcpConfig> tcp;  // the `tcp:` section's listeners; null when absent
};

struct ConfigError {
    std::string file;
    int line = 0;  // 1-based; 0 when unknown
    int col = 0;
    std::string message;
    std::string str() const;  // "file:line:col: message"
};

struct ConfigLoadResult {
    std::shared_ptr<const Config> config;  // null when errors is non-empty
    std::vector<ConfigError> errors;
    std::vector<ConfigError> warnings;
};

// `check` loads with create_missing_hash_key off: it has no side effects on the machine.
struct ConfigLoadOptions {
    bool create_missing_hash_key = true;
    // `check` refuses an expired certificate; `serve` only warns, so the plain listener stays up to answer
    // the ACME challenge that renews it.
    bool expired_certificate_is_error = false;
};

// Parses, validates and compiles a config file (and the privacy rules it names). Never throws.
ConfigLoadResult load_config(const std::string& path, const ConfigLoadOptions& options = {});
// Same, from text (for tests); `path` is used in messages and to resolve relative files.
ConfigLoadResult load_config_text(const std::string& text, const std::string& path,
                                  const ConfigLoadOptions& options = {});

}  // namespace edgeguard
