#include "proxy/http1/http_headers.h"

#include "proxy/pipeline/http_errors.h"

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

constexpr uint32_t kHopByHop = HeaderList::kHopByHop;
constexpr uint32_t kClientForwarding = HeaderList::kClientForwarding;
constexpr uint32_t kProtected = HeaderList::kProtected;
constexpr uint32_t kUpgrade = HeaderList::kUpgrade;
constexpr uint32_t kHost = HeaderList::kHost;
constexpr uint32_t kContentLength = HeaderList::kContentLength;
constexpr uint32_t kExpect = HeaderList::kExpect;
constexpr uint32_t kContentType = HeaderList::kContentType;
constexpr uint32_t kContentEncoding = HeaderList::kContentEncoding;
constexpr uint32_t kConnection = HeaderList::kConnection;
constexpr uint32_t kTransferEncoding = HeaderList::kTransferEncoding;

uint32_t classify_exact(std::string_view n) {
    uint32_t c = 0;
    if (n.empty()) return c;
    // Prefix rules first: "proxy-*" is hop-by-hop, every "x-forwarded-*" is ours (a client's is dropped).
    const char first = lower(n[0]);
    if (first == 'p' && istarts_with(n, "proxy-")) c |= kHopByHop;
    if (first == 'x' && istarts_with(n, "x-forwarded-")) c |= kProtected | kClientForwarding;
    switch (n.size()) {
        case 2:
            if (iequals(n, "te")) c |= kHopByHop;
            break;
        case 4:
            if (iequals(n, "host")) c |= kHost | kProtected;
            break;
        case 6:
            if (iequals(n, "expect")) c |= kExpect;
            break;
        case 7:
            if (iequals(n, "trailer") || iequals(n, "alt-svc")) c |= kHopByHop;
            else if (iequals(n, "upgrade")) c |= kHopByHop | kUpgrade;
            break;
        case 9:
            if (iequals(n, "forwarded")) c |= kClientForwarding | kProtected;
            else if (iequals(n, "x-real-ip")) c |= kClientForwarding;
            break;
        case 10:
            if (iequals(n, "connection")) c |= kHopByHop | kConnection;
            else if (iequals(n, "keep-alive")) c |= kHopByHop;
            break;
        case 11:
            if (iequals(n, "x-client-ip")) c |= kClientForwarding;
            break;
        case 12:
            if (iequals(n, "content-type")) c |= kContentType | kProtected;
            break;
        case 13:
            if (iequals(n, "fly-client-ip")) c |= kClientForwarding;
            else if (iequals(n, "authorization")) c |= kProtected;
            break;
        case 14:
            if (iequals(n, "content-length")) c |= kContentLength | kProtected;
            else if (iequals(n, "http2-settings")) c |= kHopByHop;
            else if (iequals(n, "true-client-ip")) c |= kClientForwarding;
            break;
        case 15:
            if (iequals(n, "x-forwarded-for")) c |= kClientForwarding;
            break;
        case 16:
            if (iequals(n, "cf-connecting-ip") || iequals(n, "x-forwarded-host") || iequals(n, "fastly-client-ip"))
                c |= kClientForwarding;
            else if (iequals(n, "content-encoding")) c |= kContentEncoding;
            break;
        case 17:
            if (iequals(n, "transfer-encoding")) c |= kHopByHop | kTransferEncoding;
            else if (iequals(n, "x-forwarded-proto")) c |= kClientForwarding;
            break;
        case 19:
            if (iequals(n, "x-cluster-client-ip")) c |= kClientForwarding;
            break;
        default: break;
    }
    return c;
}

// CGI and WSGI stacks (Django behind `web`) read "X_Forwarded_For" as X-Forwarded-For, and some servers fold
// "_" into "-" themselves: a name that is one of the fields edgeguard owns or interprets once "_" reads as
// "-" would let a client spoof what edgeguard writes or frames. Such a field is an alias and is dropped.
constexpr uint32_t kAliasedClasses = kClientForwarding | kHopByHop | HeaderList::kHost | HeaderList::kContentLength |
                                     HeaderList::kTransferEncoding | HeaderList::kExpect | HeaderList::kUpgrade |
                                     HeaderList::kConnection;

uint32_t classify_field(std::string_view n) {
    const uint32_t c = classify_exact(n);
    if (c != 0 || n.size() > 64 || n.find('_') == std::string_view::npos) return c;
    char dashed[64];
    for (size_t i = 0; i < n.size(); ++i) dashed[i] = n[i] == '_' ? '-' : n[i];
    return (classify_exact(std::string_view(dashed, n.size())) & kAliasedClasses) ? uint32_t{HeaderList::kAlias} : 0u;
}

// The field names a message's Connection header(s) list, gathered once per head. A list too long for the
// fixed array falls back to reading the Connection fields again for each question.
class ConnectionTokens {
public:
    explicit ConnectionTokens(const HeaderList& in) : in_(in) {
        if (!in.has(kConnection)) return;
        for (size_t i = 0; i < in.size(); ++i) {
            if (!(in.field_class(i) & kConnection)) continue;
            for_each_token(in.value(i), [&](std::string_view token) {
                if (count_ < kMax) {
                    tokens_[count_++] = token;
                } else {
                    overflow_ = true;
                }
            });
        }
    }

    // True when a Connection header names `name` and `name` is not one of ours (PROXY.md §2.2).
    bool names(std::string_view name, uint32_t field_class) const {
        if (count_ == 0 || (field_class & kProtected) != 0) return false;
        if (overflow_) return names_slow(name);
        for (size_t i = 0; i < count_; ++i)
            if (iequals(tokens_[i], name)) return true;
        return false;
    }

private:
    bool names_slow(std::string_view name) const {
        bool named = false;
        for (size_t i = 0; i < in_.size() && !named; ++i) {
            if (!(in_.field_class(i) & kConnection)) continue;
            for_each_token(in_.value(i), [&](std::string_view token) {
                if (iequals(token, name)) named = true;
            });
        }
        return named;
    }

    static constexpr size_t kMax = 16;
    const HeaderList& in_;
    std::string_view tokens_[kMax];
    size_t count_ = 0;
    bool overflow_ = false;
};

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

bool iequals_same_size(const char* a, const char* b, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

void HeaderList::clear() {
    arena_.clear();
    fields_.clear();
    classes_ = 0;
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
    f.cls = classify_field(view(f.name_off, f.name_len));
    classes_ |= f.cls;
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

std::string_view HeaderList::find(Class single_name, bool* found) const {
    if (has(single_name)) {
        for (size_t i = 0; i < fields_.size(); ++i) {
            if (field_class(i) & single_name) {
                if (found) *found = true;
                return value(i);
            }
        }
    }
    if (found) *found = false;
    return {};
}

size_t HeaderList::count(Class single_name) const {
    if (!has(single_name)) return 0;
    size_t n = 0;
    for (size_t i = 0; i < fields_.size(); ++i)
        if (field_class(i) & single_name) ++n;
    return n;
}

size_t HeaderList::count(std::string_view wanted) const {
    size_t n = 0;
    for (size_t i = 0; i < fields_.size(); ++i)
        if (iequals(name(i), wanted)) ++n;
    return n;
}

bool is_hop_by_hop(std::string_view name) { return (classify_field(name) & kHopByHop) != 0; }

uint32_t HeaderList::classify(std::string_view name) { return classify_field(name); }

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
    const ConnectionTokens connection(in);
    for (size_t i = 0; i < in.size(); ++i) {
        std::string_view name = in.name(i);
        const uint32_t cls = in.field_class(i);
        if (cls & kUpgrade) {
            upgrade_value = in.value(i);
            continue;
        }
        if (cls & (kHopByHop | kClientForwarding | kContentLength | kExpect | HeaderList::kAlias)) continue;
        if (head.replace_content_type_json && (cls & (kContentType | kContentEncoding))) continue;
        if (connection.names(name, cls)) continue;
        if (cls & kHost) {
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
    if (head.replace_content_type_json) {
        if (head.rewritten_content_type.empty()) out.append("Content-Type: application/json\r\n");
        else append_field(out, "Content-Type", head.rewritten_content_type);
    }
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
    const ConnectionTokens connection(in);
    for (size_t i = 0; i < in.size(); ++i) {
        std::string_view name = in.name(i);
        const uint32_t cls = in.field_class(i);
        if (cls & kUpgrade) {
            upgrade_value = in.value(i);
            continue;
        }
        if (cls & kHopByHop) continue;
        if ((cls & kContentLength) && !head.keep_original_content_length) continue;
        if (connection.names(name, cls)) continue;
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
