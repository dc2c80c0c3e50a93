#include "proxy/http_headers.h"

#include "proxy/http_errors.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace edgeguard {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

bool istarts_with(std::string_view s, std::string_view prefix) {
    return s.size() >= prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// Calls f(token) for each comma-separated, trimmed, non-empty token of a list-valued field.
template <typename F>
void for_each_token(std::string_view list, F&& f) {
    while (!list.empty()) {
        size_t comma = list.find(',');
        std::string_view token = trim_ows(list.substr(0, comma));
        if (!token.empty()) f(token);
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
}

// Client-supplied claims about the client address or scheme. Only edgeguard writes these upstream
// (trusted proxies are the access-control layer's business).
bool is_client_forwarding_header(std::string_view name) {
    return iequals(name, "x-forwarded-for") || iequals(name, "forwarded") || iequals(name, "x-real-ip") ||
           iequals(name, "cf-connecting-ip") || iequals(name, "true-client-ip") ||
           iequals(name, "fly-client-ip") || iequals(name, "x-forwarded-proto") ||
           iequals(name, "x-forwarded-host") || iequals(name, "x-client-ip");
}

// Fields a client's Connection header must not be able to delete (PROXY.md §2.2: `Connection: X-Forwarded-For`).
bool is_protected_from_connection(std::string_view name) {
    return iequals(name, "host") || iequals(name, "content-length") || iequals(name, "content-type") ||
           istarts_with(name, "x-forwarded-") || iequals(name, "forwarded") || iequals(name, "authorization");
}

bool named_by_connection(const HeaderList& in, std::string_view name) {
    if (is_protected_from_connection(name)) return false;
    bool named = false;
    for (size_t i = 0; i < in.size() && !named; ++i) {
        if (!iequals(in.name(i), "connection")) continue;
        for_each_token(in.value(i), [&](std::string_view token) {
            if (iequals(token, name)) named = true;
        });
    }
    return named;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out.append(name);
    out.append(": ");
    out.append(value);
    out.append("\r\n");
}

void append_number(std::string& out, uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    (void)ec;
    out.append(buf, end);
}

void append_framing(std::string& out, BodyFraming body, uint64_t content_length) {
    if (body == BodyFraming::ContentLength) {
        out.append("Content-Length: ");
        append_number(out, content_length);
        out.append("\r\n");
    } else if (body == BodyFraming::Chunked) {
        out.append("Transfer-Encoding: chunked\r\n");
    }
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

void HeaderList::clear() {
    arena_.clear();
    fields_.clear();
    field_open_ = false;
    in_value_ = false;
}

void HeaderList::append_name(const char* data, size_t len) {
    if (!field_open_) {
        Field f;
        f.name_off = static_cast<uint32_t>(arena_.size());
        fields_.push_back(f);
        field_open_ = true;
        in_value_ = false;
    }
    arena_.append(data, len);
    fields_.back().name_len += static_cast<uint32_t>(len);
}

void HeaderList::append_value(const char* data, size_t len) {
    if (!field_open_) return;  // llhttp never sends a value without a name
    Field& f = fields_.back();
    if (!in_value_) {
        f.value_off = static_cast<uint32_t>(arena_.size());
        in_value_ = true;
    }
    arena_.append(data, len);
    f.value_len += static_cast<uint32_t>(len);
}

void HeaderList::end_field() {
    if (!field_open_) return;
    Field& f = fields_.back();
    if (!in_value_) f.value_off = static_cast<uint32_t>(arena_.size());
    while (f.value_len > 0) {
        char c = arena_[f.value_off + f.value_len - 1];
        if (c != ' ' && c != '\t') break;
        --f.value_len;
    }
    field_open_ = false;
    in_value_ = false;
}

std::string_view HeaderList::find(std::string_view wanted, bool* found) const {
    for (size_t i = 0; i < fields_.size(); ++i) {
        if (iequals(name(i), wanted)) {
            if (found) *found = true;
            return value(i);
        }
    }
    if (found) *found = false;
    return {};
}

size_t HeaderList::count(std::string_view wanted) const {
    size_t n = 0;
    for (size_t i = 0; i < fields_.size(); ++i)
        if (iequals(name(i), wanted)) ++n;
    return n;
}

bool is_hop_by_hop(std::string_view name) {
    return iequals(name, "connection") || iequals(name, "keep-alive") || iequals(name, "te") ||
           iequals(name, "trailer") || iequals(name, "transfer-encoding") || iequals(name, "upgrade") ||
           istarts_with(name, "proxy-") || iequals(name, "http2-settings") || iequals(name, "alt-svc");
}

bool is_plain_chunked(std::string_view transfer_encoding) {
    return iequals(trim_ows(transfer_encoding), "chunked");
}

void append_upstream_request_head(std::string& out, const HeaderList& in, const UpstreamRequestHead& head) {
    out.append(head.method);
    out.push_back(' ');
    out.append(head.target);
    out.append(" HTTP/1.1\r\n");
    std::string_view host;
    bool have_host = false;
    std::string_view upgrade_value;
    for (size_t i = 0; i < in.size(); ++i) {
        std::string_view name = in.name(i);
        if (iequals(name, "upgrade")) {
            upgrade_value = in.value(i);
            continue;
        }
        if (is_hop_by_hop(name) || is_client_forwarding_header(name) || iequals(name, "content-length") ||
            iequals(name, "expect"))
            continue;
        if (head.replace_content_type_json && (iequals(name, "content-type") || iequals(name, "content-encoding")))
            continue;
        if (named_by_connection(in, name)) continue;
        if (iequals(name, "host")) {
            if (have_host) continue;
            host = head.host_override.empty() ? in.value(i) : head.host_override;
            have_host = true;
            append_field(out, name, host);
            continue;
        }
        append_field(out, name, in.value(i));
    }
    if (!have_host && !head.host_override.empty()) {
        host = head.host_override;
        have_host = true;
        append_field(out, "Host", host);
    }
    if (head.replace_content_type_json) out.append("Content-Type: application/json\r\n");
    if (!head.forwarded_for.empty()) append_field(out, "X-Forwarded-For", head.forwarded_for);
    if (!head.forwarded_proto.empty()) append_field(out, "X-Forwarded-Proto", head.forwarded_proto);
    if (have_host) append_field(out, "X-Forwarded-Host", host);
    if (head.upgrade && !upgrade_value.empty()) {
        out.append("Connection: upgrade\r\n");
        append_field(out, "Upgrade", upgrade_value);
    }
    append_framing(out, head.body, head.content_length);
    out.append("\r\n");
}

void append_downstream_response_head(std::string& out, const HeaderList& in, const DownstreamResponseHead& head) {
    out.append("HTTP/1.1 ");
    append_number(out, static_cast<uint64_t>(head.status));
    out.push_back(' ');
    out.append(reason_phrase(head.status));
    out.append("\r\n");
    std::string_view upgrade_value;
    for (size_t i = 0; i < in.size(); ++i) {
        std::string_view name = in.name(i);
        if (iequals(name, "upgrade")) {
            upgrade_value = in.value(i);
            continue;
        }
        if (is_hop_by_hop(name)) continue;
        if (iequals(name, "content-length") && !head.keep_original_content_length) continue;
        if (named_by_connection(in, name)) continue;
        append_field(out, name, in.value(i));
    }
    if (head.upgrade && !upgrade_value.empty()) {
        out.append("Connection: upgrade\r\n");
        append_field(out, "Upgrade", upgrade_value);
    } else if (head.close) {
        out.append("Connection: close\r\n");
    }
    append_framing(out, head.body, head.content_length);
    out.append("\r\n");
}

std::string peer_address_text(const sockaddr* peer) {
    char buf[INET6_ADDRSTRLEN] = {0};
    if (peer->sa_family == AF_INET) {
        inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(peer)->sin_addr, buf, sizeof buf);
    } else if (peer->sa_family == AF_INET6) {
        const in6_addr& a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
        } else {
            inet_ntop(AF_INET6, &a, buf, sizeof buf);
        }
    }
    return buf;
}

std::string forwarded_for_value(const sockaddr* peer, ClientIpPolicy policy) {
    if (policy == ClientIpPolicy::Drop) return {};
    if (policy == ClientIpPolicy::Forward) return peer_address_text(peer);
    char buf[INET6_ADDRSTRLEN] = {0};
    if (peer->sa_family == AF_INET) {
        in_addr a = reinterpret_cast<const sockaddr_in*>(peer)->sin_addr;
        reinterpret_cast<uint8_t*>(&a.s_addr)[3] = 0;
        inet_ntop(AF_INET, &a, buf, sizeof buf);
    } else if (peer->sa_family == AF_INET6) {
        in6_addr a = reinterpret_cast<const sockaddr_in6*>(peer)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(&a)) {
            a.s6_addr[15] = 0;
            inet_ntop(AF_INET, &a.s6_addr[12], buf, sizeof buf);
        } else {
            std::memset(&a.s6_addr[6], 0, 10);
            inet_ntop(AF_INET6, &a, buf, sizeof buf);
        }
    }
    return buf;
}

}  // namespace edgeguard
