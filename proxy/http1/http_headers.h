// Header fields of one parsed message and the re-serialisation of request and response heads. We never
// forward a client's or upstream's header bytes verbatim: every head is rebuilt here from parsed fields,
// with hop-by-hop fields removed and forwarding fields written by us (PROXY.md §2.2, §2.3).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/config.h"

namespace edgeguard {

// Case-insensitive ASCII comparison of two strings of the same length.
bool iequals_same_size(const char* a, const char* b, size_t n);
// Case-insensitive ASCII comparison for header names and tokens. Inline: most comparisons on the request
// path are against names of another length and end at the size check, without a call.
inline bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && iequals_same_size(a.data(), b.data(), a.size());
}

// Header fields stored in one reusable byte arena, so parsing a message allocates nothing once a
// connection has warmed up. llhttp hands names and values over in pieces; the appenders join them.
class HeaderList {
public:
    // What a field name means to the proxy, decided once per field when it ends (end_field) instead of by
    // dozens of case-insensitive comparisons each time a head is checked or rebuilt.
    enum Class : uint32_t {
        kHopByHop = 1u << 0,          // RFC 9110 §7.6.1 and PROXY.md §2.2 (is_hop_by_hop)
        kClientForwarding = 1u << 1,  // a client's claim about its address or scheme (X-Forwarded-For, ...)
        kProtected = 1u << 2,         // a client's Connection header must not be able to delete it
        kUpgrade = 1u << 3,           // exactly "upgrade"; the single-name classes below likewise
        kHost = 1u << 4,
        kContentLength = 1u << 5,
        kExpect = 1u << 6,
        kContentType = 1u << 7,
        kContentEncoding = 1u << 8,
        kConnection = 1u << 9,
        kTransferEncoding = 1u << 10,
        kAlias = 1u << 11,  // reads as an owned or framing field once "_" is "-" ("X_Forwarded_For"): dropped
    };
    static uint32_t classify(std::string_view name);

    void clear();
    // A list is filled one of two ways. Field by field, from a parser that hands names and values over in
    // pieces (HTTP/2's fields):
    void append_name(const char* data, size_t len);
    void append_value(const char* data, size_t len);
    void end_field();  // the current field is complete (trailing whitespace of the value is trimmed)
    // Or from the field lines of an HTTP/1.1 head as received, in the pieces they arrive in, then indexed
    // once the head is complete. Only for lines the strict head scanner accepted (RequestHeadScanner::
    // fields_from): each ends in CRLF with no other CR or LF, has a colon after a non-empty name without
    // whitespace, and none is folded, so a field is what precedes the first colon and, trimmed, what follows
    // it. One copy per read instead of a parser callback for every name and value piece.
    void append_lines(const char* data, size_t len) { arena_.append(data, len); }
    // Indexes the appended lines up to the empty one; false when there are more than `max_fields`.
    bool index_lines(size_t max_fields);
    // The field's line as received when it reads exactly "name: value\r\n", as a rebuilt head writes it,
    // so runs of such lines are copied whole; empty otherwise.
    std::string_view verbatim_line(size_t i) const {
        const Field& f = fields_[i];
        return f.verbatim ? view(f.name_off, f.value_off + f.value_len + 2 - f.name_off) : std::string_view();
    }

    size_t size() const { return fields_.size(); }
    std::string_view name(size_t i) const { return view(fields_[i].name_off, fields_[i].name_len); }
    std::string_view value(size_t i) const { return view(fields_[i].value_off, fields_[i].value_len); }
    // Value of the first field named `name`, empty when absent (`found` tells the two apart).
    std::string_view find(std::string_view name, bool* found = nullptr) const;
    size_t count(std::string_view name) const;
    // The same for the field named by a single-name class (kHost, kContentLength, ...).
    std::string_view find(Class single_name, bool* found = nullptr) const;
    size_t count(Class single_name) const;
    uint32_t field_class(size_t i) const {
        return (field_open_ && i + 1 == fields_.size()) ? classify(name(i)) : fields_[i].cls;
    }
    // Some field has a class in `classes`.
    bool has(uint32_t classes) const { return (classes_ & classes) != 0 || field_open_; }
    size_t bytes() const { return arena_.size(); }

private:
    struct Field {
        uint32_t name_off = 0, name_len = 0, value_off = 0, value_len = 0;
        uint32_t cls = 0;  // set by end_field
        bool verbatim = false;  // index_lines: the line is "name: value\r\n" exactly
    };
    std::string_view view(uint32_t off, uint32_t len) const { return {arena_.data() + off, len}; }

    std::string arena_;
    std::vector<Field> fields_;
    uint32_t classes_ = 0;     // every ended field's class, or-ed
    bool field_open_ = false;  // a name has started and its field is not yet ended
    bool in_value_ = false;
};

enum class BodyFraming { None, ContentLength, Chunked, UntilClose };

// Everything the upstream request head needs besides the client's header fields.
struct UpstreamRequestHead {
    std::string_view method;
    std::string_view target;            // origin-form path (+ "?query") to send upstream
    std::string_view forwarded_for;     // X-Forwarded-For value; empty = send none (ClientIpPolicy::Drop)
    std::string_view forwarded_proto;   // "http" / "https"
    std::string_view host_override;     // absolute-form authority: replaces the client's Host (RFC 9112 §3.2.2)
    BodyFraming body = BodyFraming::None;
    uint64_t content_length = 0;        // for BodyFraming::ContentLength
    bool upgrade = false;               // keep Upgrade and send Connection: upgrade
    bool replace_content_type_json = false;  // privacy rewrite: Content-Type: application/json, no encoding
    std::string_view rewritten_content_type;  // with replace_content_type_json: this type instead of JSON
};

// Appends the request line and re-serialised headers. Drops hop-by-hop fields, the fields the client's
// Connection header names (except ones we own), client-supplied forwarding headers and Expect (edgeguard
// answers 100-continue itself), then adds X-Forwarded-For/-Proto/-Host and the body framing.
void append_upstream_request_head(std::string& out, const HeaderList& in, const UpstreamRequestHead& head);

struct DownstreamResponseHead {
    int status = 200;
    BodyFraming body = BodyFraming::None;
    uint64_t content_length = 0;
    bool keep_original_content_length = false;  // HEAD / 304: no body, but Content-Length is informative
    bool close = false;                         // send Connection: close
    bool upgrade = false;                       // 101: keep Upgrade, send Connection: upgrade
};

// Appends the status line and the upstream's headers minus hop-by-hop fields, plus our framing.
void append_downstream_response_head(std::string& out, const HeaderList& in, const DownstreamResponseHead& head);

// True for fields a proxy must not forward in either direction (RFC 9110 §7.6.1 and PROXY.md §2.2).
bool is_hop_by_hop(std::string_view name);

// The X-Forwarded-For value for a peer under a route's client-IP policy: the address itself, the address
// truncated to /24 (IPv4) or /48 (IPv6), or empty for Drop. IPv4-mapped IPv6 peers are written as IPv4.
std::string forwarded_for_value(const sockaddr* peer, ClientIpPolicy policy);

// Textual address of a peer (IPv4-mapped IPv6 as IPv4); empty for non-IP sockets.
std::string peer_address_text(const sockaddr* peer);

// Transfer-Encoding value acceptance: exactly one "chunked" token, case-insensitive, no parameters.
bool is_plain_chunked(std::string_view transfer_encoding);

}  // namespace edgeguard
