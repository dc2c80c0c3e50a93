#include "proxy/privacy_stage.h"

namespace edgeguard {

bool privacy_stage_applies(const Config& config, const RouteConfig& route, llhttp_method_t method,
                           std::string_view query) {
    if (route.privacy_profile.empty() || config.privacy == nullptr) return false;
    if (method == HTTP_OPTIONS) return false;
    if (method == HTTP_GET || method == HTTP_HEAD) return !query.empty();
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
    return config.privacy->apply(route.privacy_profile, in);
}

}  // namespace edgeguard
