#include "proxy/http1/http_headers.h"

#include "proxy/http1/byte_skip.h"
#include "proxy/pipeline/http_errors.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <bit>
#include <charconv>
#include <cstring>

namespace edgeguard {

namespace {

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

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

// A lower-case field name known at compile time, as the 8-byte words a name is compared with (the last word
// overlaps the one before it when the length is not a multiple of 8) and, per word, the case bit (0x20) of
// each byte that is a letter. Every field of every head is classified, mostly against names of its own
// length: a compare is then one OR and one 64-bit equality per word instead of a lower() per byte.
template <size_t N>
struct KnownName {
    static constexpr size_t kLen = N - 1;
    static constexpr size_t kWords = kLen <= 8 ? 1 : (kLen + 7) / 8;
    uint64_t word[kWords] = {};
    uint64_t fold[kWords] = {};

    consteval KnownName(const char (&lower_name)[N]) {
        for (size_t w = 0; w < kWords; ++w) {
            const size_t at = word_offset(w);
            for (size_t b = 0; b < 8 && at + b < kLen; ++b) {
                const auto c = static_cast<unsigned char>(lower_name[at + b]);
                word[w] |= uint64_t{c} << (8 * b);
                if (c >= 'a' && c <= 'z') fold[w] |= uint64_t{0x20} << (8 * b);
            }
        }
    }
    static constexpr size_t word_offset(size_t w) {
        return kLen >= 8 && (w + 1) * 8 > kLen ? kLen - 8 : w * 8;
    }
};

// Load of min(8, len) bytes at `p`, zero-filled, in KnownName's byte order.
static_assert(std::endian::native == std::endian::little, "KnownName words are little-endian");
inline uint64_t load_word(const char* p, size_t len) {
    uint64_t v = 0;
    std::memcpy(&v, p, len < 8 ? len : 8);
    return v;
}

// `n` starts with `name`, ASCII letters compared without case (as iequals), every other byte exactly.
template <KnownName name>
bool starts_with_name(std::string_view n) {
    constexpr size_t len = decltype(name)::kLen;
    if (n.size() < len) return false;
    for (size_t w = 0; w < decltype(name)::kWords; ++w) {
        const size_t at = decltype(name)::word_offset(w);
        if ((load_word(n.data() + at, len - at) | name.fold[w]) != name.word[w]) return false;
    }
    return true;
}

template <KnownName name>
bool is_name(std::string_view n) {
    return n.size() == decltype(name)::kLen && starts_with_name<name>(n);
}

uint32_t classify_exact(std::string_view n) {
    uint32_t c = 0;
    if (n.empty()) return c;
    // Prefix rules first: "proxy-*" is hop-by-hop, every "x-forwarded-*" is ours (a client's is dropped).
    const char first = lower(n[0]);
    if (first == 'p' && starts_with_name<"proxy-">(n)) c |= kHopByHop;
    if (first == 'x' && starts_with_name<"x-forwarded-">(n)) c |= kProtected | kClientForwarding;
    switch (n.size()) {
        case 2:
            if (is_name<"te">(n)) c |= kHopByHop;
            break;
        case 4:
            if (is_name<"host">(n)) c |= kHost | kProtected;
            break;
        case 6:
            if (is_name<"expect">(n)) c |= kExpect;
            break;
        case 7:
            if (is_name<"trailer">(n) || is_name<"alt-svc">(n)) c |= kHopByHop;
            else if (is_name<"upgrade">(n)) c |= kHopByHop | kUpgrade;
            break;
        case 9:
            if (is_name<"forwarded">(n)) c |= kClientForwarding | kProtected;
            else if (is_name<"x-real-ip">(n)) c |= kClientForwarding;
            break;
        case 10:
            if (is_name<"connection">(n)) c |= kHopByHop | kConnection;
            else if (is_name<"keep-alive">(n)) c |= kHopByHop;
            break;
        case 11:
            if (is_name<"x-client-ip">(n)) c |= kClientForwarding;
            break;
        case 12:
            if (is_name<"content-type">(n)) c |= kContentType | kProtected;
            break;
        case 13:
            if (is_name<"fly-client-ip">(n)) c |= kClientForwarding;
            else if (is_name<"authorization">(n)) c |= kProtected;
            break;
        case 14:
            if (is_name<"content-length">(n)) c |= kContentLength | kProtected;
            else if (is_name<"http2-settings">(n)) c |= kHopByHop;
            else if (is_name<"true-client-ip">(n)) c |= kClientForwarding;
            break;
        case 15:
            if (is_name<"x-forwarded-for">(n)) c |= kClientForwarding;
            break;
        case 16:
            if (is_name<"cf-connecting-ip">(n) || is_name<"x-forwarded-host">(n) || is_name<"fastly-client-ip">(n))
                c |= kClientForwarding;
            else if (is_name<"content-encoding">(n)) c |= kContentEncoding;
            break;
        case 17:
            if (is_name<"transfer-encoding">(n)) c |= kHopByHop | kTransferEncoding;
            else if (is_name<"x-forwarded-proto">(n)) c |= kClientForwarding;
            break;
        case 19:
            if (is_name<"x-cluster-client-ip">(n)) c |= kClientForwarding;
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

// One size change and two copies: four appends each checked the capacity and called memcpy (~100
// instructions a field, and every head is rebuilt field by field).
void append_field(std::string& out, std::string_view name, std::string_view value) {
    const size_t at = out.size();
    out.resize(at + name.size() + value.size() + 4);
    char* p = out.data() + at;
    std::memcpy(p, name.data(), name.size());
    p += name.size();
    p[0] = ':';
    p[1] = ' ';
    p += 2;
    std::memcpy(p, value.data(), value.size());
    p += value.size();
    p[0] = '\r';
    p[1] = '\n';
}

// Writes the fields a head keeps. Received lines that already read "name: value\r\n" and follow one another
// are copied as one run, so a typical head is a few copies instead of one append per field.
class FieldWriter {
  public:
    explicit FieldWriter(std::string& out) : out_(out) {}
    void keep(const HeaderList& in, size_t i) {
        const std::string_view line = in.verbatim_line(i);
        if (line.empty()) {
            write(in.name(i), in.value(i));
        } else if (run_len_ != 0 && run_ + run_len_ == line.data()) {
            run_len_ += line.size();
        } else {
            flush();
            run_ = line.data();
            run_len_ = line.size();
        }
    }
    void write(std::string_view name, std::string_view value) {
        flush();
        append_field(out_, name, value);
    }
    void flush() {
        if (run_len_ == 0) return;
        out_.append(run_, run_len_);
        run_len_ = 0;
    }

  private:
    std::string& out_;
    const char* run_ = nullptr;
    size_t run_len_ = 0;
};

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

bool HeaderList::index_lines(size_t max_fields) {
    fields_.clear();
    classes_ = 0;
    const char* base = arena_.data();
    const size_t end = arena_.size();
    size_t line = 0;
    // The scanner accepted every line: a name free of ':' and CR before the colon, CR only before LF.
    while (line < end && base[line] != '\r') {
        const size_t colon = skip_until<':', '\r'>(base, line, end);
        if (colon == end || base[colon] != ':') break;  // not a scanned line: nothing more is indexed
        const size_t cr = skip_until<'\r'>(base, colon + 1, end);
        if (cr == end) break;
        if (fields_.size() == max_fields) return false;
        size_t value = colon + 1;
        while (value < cr && (base[value] == ' ' || base[value] == '\t')) ++value;
        size_t value_end = cr;
        while (value_end > value && (base[value_end - 1] == ' ' || base[value_end - 1] == '\t')) --value_end;
        Field& f = fields_.emplace_back();
        f.name_off = static_cast<uint32_t>(line);
        f.name_len = static_cast<uint32_t>(colon - line);
        f.value_off = static_cast<uint32_t>(value);
        f.value_len = static_cast<uint32_t>(value_end - value);
        f.cls = classify_field(std::string_view(base + line, f.name_len));
        f.verbatim = value == colon + 2 && base[colon + 1] == ' ' && value_end == cr;
        classes_ |= f.cls;
        line = cr + 2;
    }
    return true;
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
    FieldWriter fields(out);
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
            have_host = true;
            if (head.host_override.empty()) {
                host = in.value(i);
                fields.keep(in, i);
            } else {
                host = head.host_override;
                fields.write(name, host);
            }
            continue;
        }
        fields.keep(in, i);
    }
    fields.flush();
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
    FieldWriter fields(out);
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
        fields.keep(in, i);
    }
    fields.flush();
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
