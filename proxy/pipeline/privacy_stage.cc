#include "proxy/pipeline/privacy_stage.h"

#include <variant>

#include "filters/decode/url_form.h"

namespace edgeguard {

bool privacy_stage_applies(const Config& config, const RouteConfig& route, llhttp_method_t method,
                           std::string_view query, bool has_body) {
    if (route.privacy_profile.empty() || config.privacy == nullptr) return false;
    if (method == HTTP_OPTIONS) return false;
    if (method == HTTP_GET || method == HTTP_HEAD) {
        // Capture reads the body whenever ?data= is absent, whatever the method (WIRE.md §2.2), so a GET or
        // HEAD with a body is inspected like a POST.
        if (has_body) return true;
        // Without a body a GET carries an event only in ?data=. Other queries (?v=2, cache busters) have no
        // payload to inspect; a duplicated data= is ambiguous, so the filter sees it and rejects it.
        auto data = privacy::find_form_value(query, "data");
        const auto* found = std::get_if<std::optional<std::string_view>>(&data);
        return found == nullptr || found->has_value();
    }
    return true;
}

privacy::IpPolicy to_filter_ip_policy(ClientIpPolicy policy) {
    switch (policy) {
        case ClientIpPolicy::Forward: return privacy::IpPolicy::Forward;
        case ClientIpPolicy::Truncate: return privacy::IpPolicy::Truncate;
        case ClientIpPolicy::Drop: return privacy::IpPolicy::Drop;
    }
    return privacy::IpPolicy::Drop;
}

privacy::FilterOutput run_privacy_filter(const Config& config, const RouteConfig& route, const PrivacyRequest& req) {
    privacy::FilterInput in;
    in.method = req.method;
    in.path = req.normalized_path;
    in.query = req.query;
    in.content_type = req.content_type;
    in.content_encoding = req.content_encoding;
    in.body = req.body;
    in.client_ip = req.client_ip;
    in.ip_policy = to_filter_ip_policy(route.client_ip);
    if (req.wire_limit != 0) in.wire_limit = req.wire_limit;
    in.observations = req.observations;
    return config.privacy->apply(route.privacy_profile, in);
}

}  // namespace edgeguard
