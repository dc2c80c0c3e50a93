// The HTTP->HTTPS redirect a listener with `redirect_https_to` answers instead of proxying.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace edgeguard {

// The Location for a request with Host `host_header` and origin-form `request_target` ("/path?query").
// `redirect_https_to` is either ":<port>" (same host, that port; ":443" is left out) or "host[:port]"
// (a fixed authority). Returns nullopt when the Host or target is not safe to echo into a header
// (missing, control bytes, characters a host cannot hold): answer 400 then.
std::optional<std::string> https_redirect_location(std::string_view host_header,
                                                   std::string_view request_target,
                                                   std::string_view redirect_https_to);

// A complete "308 Permanent Redirect" response with that Location and an empty body.
// `keep_alive` false adds "Connection: close".
std::string https_redirect_response(std::string_view location, bool keep_alive);

}  // namespace edgeguard
