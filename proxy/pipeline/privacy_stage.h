// The privacy step of the request path: on routes that name a profile, the whole request body is
// buffered and handed to the rule set, which answers Unchanged, Rewritten or Rejected. This file only
// decides whether the step applies and translates between the proxy's request and the filter's input.
#pragma once

#include <llhttp.h>

#include <string_view>

#include "filters/filter_api.h"
#include "proxy/config/config.h"

namespace edgeguard {

// True when the request must be buffered and filtered: the route names a profile, rules are loaded, and the
// request can carry data (OPTIONS preflights pass untouched; a GET or HEAD only when it has a body
// (Content-Length > 0 or chunked) or a ?data= query).
bool privacy_stage_applies(const Config& config, const RouteConfig& route, llhttp_method_t method,
                           std::string_view query, bool has_body);

struct PrivacyRequest {
    std::string_view method;
    std::string_view normalized_path;
    std::string_view query;
    std::string_view content_type;
    std::string_view content_encoding;
    std::string_view body;
    std::string_view client_ip;
    uint64_t wire_limit = 0;
    privacy::learn::ObservationShard* observations = nullptr;  // the worker's, for `learn: true` profiles
};

privacy::IpPolicy to_filter_ip_policy(ClientIpPolicy policy);

// Runs the route's profile over the request. Never throws; a filter failure is a Rejected verdict.
privacy::FilterOutput run_privacy_filter(const Config& config, const RouteConfig& route, const PrivacyRequest& req);

}  // namespace edgeguard
