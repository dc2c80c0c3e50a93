#include "proxy/pipeline/router.h"

namespace edgeguard {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

bool is_control(unsigned char c) {
    return c < 0x20 || c == 0x7f;
}

// A route prefix matches on whole segments: "/e" takes "/e", "/e/" and "/e/x" but never "/events".
// A prefix that ends in '/' ("/public/m/", or "/" as a catch-all) takes only what lies under it.
bool prefix_matches(std::string_view prefix, std::string_view path) {
    if (path.size() < prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
    if (prefix.back() == '/' || path.size() == prefix.size()) return true;
    return path[prefix.size()] == '/';
}

}  // namespace

std::optional<std::string> normalize_path(std::string_view raw) {
    if (raw.empty() || raw.front() != '/') return std::nullopt;

    // Pass 1: canonical escapes. Unreserved characters are decoded so "/%65" and "/e" are one path; anything
    // else stays encoded in uppercase hex, so "%2F" can never become a segment separator.
    std::string decoded;
    decoded.reserve(raw.size());
    for (size_t i = 0; i < raw.size(); ++i) {
        const auto c = static_cast<unsigned char>(raw[i]);
        if (c == '%') {
            if (i + 2 >= raw.size()) return std::nullopt;
            const int hi = hex_value(raw[i + 1]);
            const int lo = hex_value(raw[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            const auto v = static_cast<unsigned char>(hi * 16 + lo);
            if (v == 0 || is_control(v)) return std::nullopt;
            if (is_unreserved(v)) {
                decoded.push_back(static_cast<char>(v));
            } else {
                static constexpr char kHex[] = "0123456789ABCDEF";
                decoded.push_back('%');
                decoded.push_back(kHex[v >> 4]);
                decoded.push_back(kHex[v & 0xf]);
            }
            i += 2;
        } else if (is_control(c)) {
            return std::nullopt;
        } else {
            decoded.push_back(static_cast<char>(c));
        }
    }

    // Pass 2: segments. Empty segments ("//") vanish, "." is dropped and ".." removes the previous segment
    // but never climbs above the root. A trailing '/' (or a trailing dot segment) keeps the path a directory.
    std::string out;
    out.reserve(decoded.size());
    size_t pos = 1;
    bool trailing_slash = false;
    while (pos <= decoded.size()) {
        size_t end = decoded.find('/', pos);
        if (end == std::string::npos) end = decoded.size();
        const std::string_view seg(decoded.data() + pos, end - pos);
        const bool last = end == decoded.size();
        if (seg == "..") {
            const size_t cut = out.rfind('/');
            out.resize(cut == std::string::npos ? 0 : cut);
            trailing_slash = true;
        } else if (seg == "." || seg.empty()) {
            trailing_slash = true;
        } else {
            out.push_back('/');
            out.append(seg);
            trailing_slash = false;
        }
        if (last) break;
        pos = end + 1;
    }
    if (out.empty() || trailing_slash) out.push_back('/');
    return out;
}

Router::Router(const std::vector<RouteConfig>& routes) : routes_(&routes) {}

const RouteConfig* Router::match(std::string_view normalized_path) const {
    for (const RouteConfig& route : *routes_) {
        for (const std::string& prefix : route.paths) {
            if (!prefix.empty() && prefix_matches(prefix, normalized_path)) return &route;
        }
    }
    return nullptr;
}

std::string_view upstream_path_view(const RouteConfig& route, std::string_view normalized_path) {
    std::string_view strip = route.strip_prefix;
    while (!strip.empty() && strip.back() == '/') strip.remove_suffix(1);
    if (strip.empty() || !prefix_matches(strip, normalized_path)) return normalized_path;
    std::string_view rest = normalized_path.substr(strip.size());
    if (rest.empty()) return "/";
    return rest;
}

std::string upstream_path(const RouteConfig& route, std::string_view normalized_path) {
    return std::string(upstream_path_view(route, normalized_path));
}

}  // namespace edgeguard
