#include "proxy/pipeline/response_headers.h"

#include <algorithm>
#include <array>
#include <cstdio>

namespace edgeguard {
namespace {

bool iequal(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
               return lower(x) == lower(y);
           });
}

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// Fields whose value edgeguard computes (framing, connection management) or that belong to one hop.
constexpr std::array<std::string_view, 11> kOwnedFields = {
    "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te", "trailer",
    "proxy-connection", "proxy-authenticate", "proxy-authorization", "host"};

// Offset of the line "name: ..." in `head` (after the status line), or npos.
size_t find_field(const std::string& head, std::string_view name, size_t from) {
    size_t line = head.find("\r\n", from);
    while (line != std::string::npos) {
        line += 2;
        if (line + name.size() < head.size() && head[line + name.size()] == ':' &&
            iequal(std::string_view(head).substr(line, name.size()), name))
            return line;
        line = head.find("\r\n", line);
    }
    return std::string::npos;
}

void apply_one(std::string& head, const ResponseHeaderConfig& field) {
    if (head.size() < 4 || !head.ends_with("\r\n\r\n")) return;
    if (find_field(head, field.name, 0) != std::string::npos) {
        if (!field.override_upstream) return;
        size_t at;
        while ((at = find_field(head, field.name, 0)) != std::string::npos) {
            head.erase(at, head.find("\r\n", at) + 2 - at);
        }
    }
    const size_t insert_at = head.size() - 2;  // before the blank line
    head.insert(insert_at, "\r\n");
    head.insert(insert_at, field.value);
    head.insert(insert_at, ": ");
    head.insert(insert_at, field.name);
}

}  // namespace

std::string response_header_problem(std::string_view name, std::string_view value) {
    if (name.empty()) return "name is empty";
    if (!std::all_of(name.begin(), name.end(), is_tchar)) return "name '" + std::string(name) + "' is not a token";
    for (std::string_view owned : kOwnedFields) {
        if (iequal(name, owned))
            return "'" + std::string(name) + "' is managed by edgeguard and cannot be set";
    }
    if (value.empty()) return "value of '" + std::string(name) + "' is empty";
    if (value.front() == ' ' || value.front() == '\t' || value.back() == ' ' || value.back() == '\t')
        return "value of '" + std::string(name) + "' has leading or trailing whitespace";
    for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u >= 0x7f)
            return "value of '" + std::string(name) + "' holds a control or non-ASCII byte";
    }
    return {};
}

void apply_response_headers(std::string& head, const std::vector<ResponseHeaderConfig>* listener_fields,
                            const std::vector<ResponseHeaderConfig>* route_fields) {
    if (route_fields != nullptr) {
        for (const ResponseHeaderConfig& f : *route_fields) apply_one(head, f);
    }
    if (listener_fields == nullptr) return;
    for (const ResponseHeaderConfig& f : *listener_fields) {
        const bool route_sets_it =
            route_fields != nullptr && std::any_of(route_fields->begin(), route_fields->end(),
                                                   [&](const ResponseHeaderConfig& r) { return iequal(r.name, f.name); });
        if (!route_sets_it) apply_one(head, f);
    }
}

void append_rate_limit_fields(std::string& head, const RateLimitDecision* decision) {
    if (decision == nullptr || decision->limit == 0 || !head.ends_with("\r\n\r\n")) return;
    char fields[128];
    const int n = std::snprintf(fields, sizeof fields,
                                "RateLimit-Limit: %u\r\nRateLimit-Remaining: %u\r\nRateLimit-Reset: %u\r\n",
                                decision->limit, decision->remaining, decision->reset_seconds);
    if (n > 0 && static_cast<size_t>(n) < sizeof fields) head.insert(head.size() - 2, fields, static_cast<size_t>(n));
}

}  // namespace edgeguard
