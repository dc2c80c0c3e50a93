// Parsers for the scalar value types the config file uses: durations, sizes, rates and addresses.
// Pure functions on text, so the loader and `check` agree on what a value means and tests can probe edges.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "proxy/config/config.h"

namespace edgeguard {

// "500ms", "10s", "30m", "1h", "1.5s"; a unit is required so "10" cannot be misread as ms or s.
std::optional<Millis> parse_duration(std::string_view text);

// "512", "512B", "64KB", "20MB", "1GB" (decimal, as disks and Caddy count) and "64KiB", "20MiB", "1GiB"
// (binary). Result in bytes; nullopt on overflow past 2^63.
std::optional<uint64_t> parse_size(std::string_view text);

// "100/s", "600/m", "3600/h", or a bare number meaning per second. Result in events per second, > 0.
std::optional<double> parse_rate(std::string_view text);

// "host:port" or "[v6-literal]:port" with port 1-65535. Host names may use letters, digits, '-', '_' and '.'
// (compose service names such as "replay-capture"); IPv6 literals must be bracketed.
std::optional<HostPort> parse_host_port(std::string_view text);

// Where a redirect_https_to listener sends clients: ":<port>" (the request's own host on that port), or an
// authority "host", "host:port", "[v6]" or "[v6]:port".
bool valid_redirect_target(std::string_view text);

}  // namespace edgeguard
