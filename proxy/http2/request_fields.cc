#include "proxy/http2/request_fields.h"

#include "proxy/http1/request_target.h"
#include "proxy/pipeline/router.h"

namespace edgeguard {

namespace {

constexpr uint32_t kFieldOverhead = 32;  // RFC 9113 §6.5.2: each field counts 32 bytes beyond its name and value

bool parse_content_length(std::string_view text, uint64_t& out) {
    if (text.empty() || text.size() > 19) return false;  // 19 digits always fit below 2^63
    uint64_t v = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<uint64_t>(c - '0');
    }
    if (v > static_cast<uint64_t>(INT64_MAX)) return false;
    out = v;
    return true;
}

}  // namespace

bool http2_method(std::string_view name, llhttp_method_t& out) {
    // llhttp's table is the method registry for both codecs; HTTP/2 has no other way to spell one.
#define EDGEGUARD_METHOD_CASE(num, upper, text)   \
    if (name == #text) {                           \
        out = static_cast<llhttp_method_t>(num);   \
        return true;                               \
    }
    HTTP_METHOD_MAP(EDGEGUARD_METHOD_CASE)
#undef EDGEGUARD_METHOD_CASE
    return false;
}

void Http2RequestFields::reset(const Limits& limits) {
    limits_ = limits;
    refusal_ = {};
    list_bytes_ = 0;
    method_.clear();
    scheme_.clear();
    authority_.clear();
    path_.clear();
    host_.clear();
    cookie_.clear();
    protocol_.clear();
    has_authority_ = false;
    has_protocol_ = false;
    websocket_ = false;
    hosts_ = 0;
    content_lengths_ = 0;
    incoming_.clear();
    headers_.clear();
    head_ = RequestHead{};
}

void Http2RequestFields::add(std::string_view name, std::string_view value) {
    if (refusal_.status != 0) return;
    list_bytes_ += static_cast<uint32_t>(name.size() + value.size()) + kFieldOverhead;
    if (list_bytes_ > limits_.max_list_bytes) {
        refusal_ = {431, "request header fields too large"};
        return;
    }
    if (!name.empty() && name.front() == ':') {
        if (name == ":method") {
            method_.assign(value);
        } else if (name == ":scheme") {
            scheme_.assign(value);
        } else if (name == ":authority") {
            authority_.assign(value);
            has_authority_ = true;
        } else if (name == ":path") {
            if (value.size() > limits_.max_uri_bytes) {
                refusal_ = {414, "request target too long"};
                return;
            }
            path_.assign(value);
        } else if (name == ":protocol") {
            protocol_.assign(value);
            has_protocol_ = true;
        } else {
            refusal_ = {400, "unsupported pseudo-header field"};
        }
        return;
    }
    if (name == "host") {
        ++hosts_;
        host_.assign(value);
        return;
    }
    if (name == "cookie") {
        // RFC 9113 §8.2.3: split crumbs are joined with "; " before the request goes on over HTTP/1.1.
        if (!cookie_.empty()) cookie_.append("; ");
        cookie_.append(value);
        return;
    }
    if (incoming_.size() >= limits_.max_fields) {
        refusal_ = {431, "too many request header fields"};
        return;
    }
    if (name == "content-length") ++content_lengths_;
    incoming_.append_name(name.data(), name.size());
    incoming_.append_value(value.data(), value.size());
    incoming_.end_field();
}

Http2RequestFields::Refusal Http2RequestFields::finish(bool has_body) {
    if (refusal_.status != 0) return refusal_;
    if (!http2_method(method_, head_.method)) return {400, "unknown method"};
    if (head_.method == HTTP_CONNECT && has_protocol_) {
        // RFC 8441: the only protocol routes carry is the one an HTTP/1.1 upgrade request may ask for.
        if (!iequals(protocol_, "websocket")) return {501, "unsupported :protocol"};
        if (content_lengths_ != 0) return {400, "Content-Length on a WebSocket CONNECT"};
        websocket_ = true;
    } else if (has_protocol_) {
        return {400, ":protocol without CONNECT"};
    } else if (head_.method == HTTP_CONNECT || head_.method == HTTP_TRACE) {
        return {405, "method not allowed"};  // edgeguard is no forward proxy
    }
    // §8.3.1: the authority is :authority; a Host beside it must name the same one.
    if (hosts_ > 1) return {400, "duplicate Host header"};
    if (has_authority_ && hosts_ == 1 && !iequals(authority_, host_))
        return {400, "Host differs from :authority"};
    if (!has_authority_) {
        if (hosts_ == 0) return {400, "missing :authority"};
        authority_ = host_;
    }
    if (authority_.empty() || !is_valid_authority(authority_)) return {400, "invalid :authority"};
    if (path_.empty() || path_.front() != '/') return {400, "malformed request target"};
    if (!is_valid_target_bytes(path_)) return {400, "invalid character in request target"};
    if (content_lengths_ > 1) return {400, "duplicate Content-Length"};
    uint64_t content_length = 0;
    if (content_lengths_ == 1 && !parse_content_length(incoming_.find(HeaderList::kContentLength), content_length))
        return {400, "invalid Content-Length"};
    const size_t qmark = path_.find('?');
    std::string_view target = path_;
    std::optional<std::string> normalized = normalize_path(target.substr(0, qmark));
    if (!normalized) return {400, "malformed request path"};
    normalized_path_ = std::move(*normalized);
    // Host first, as an HTTP/1.1 client writes it; the joined Cookie as one field.
    auto add_field = [this](std::string_view n, std::string_view v) {
        headers_.append_name(n.data(), n.size());
        headers_.append_value(v.data(), v.size());
        headers_.end_field();
    };
    add_field("host", authority_);
    for (size_t i = 0; i < incoming_.size(); ++i) {
        // The handshake's key and version are edgeguard's own (it is the upstream's WebSocket client).
        if (websocket_ && (iequals(incoming_.name(i), "sec-websocket-key") ||
                           iequals(incoming_.name(i), "sec-websocket-version") ||
                           iequals(incoming_.name(i), "sec-websocket-accept")))
            continue;
        add_field(incoming_.name(i), incoming_.value(i));
    }
    if (!cookie_.empty()) add_field("cookie", cookie_);
    if (websocket_) {
        if (!new_websocket_key(websocket_key_)) return {503, "no randomness for a WebSocket key"};
        add_field("upgrade", "websocket");
        add_field("sec-websocket-key", websocket_key_.view());
        add_field("sec-websocket-version", "13");
        // Tunnel bytes are no body: DATA after the 200 goes through as it comes (Http2Stream's tunnel).
        head_.method = HTTP_GET;
        head_.upgrade_protocol = "websocket";
        has_body = false;
    }
    head_.target = path_;
    head_.normalized_path = normalized_path_;
    head_.query = qmark == std::string::npos ? std::string_view() : target.substr(qmark + 1);
    head_.headers = &headers_;
    // Without Content-Length the length is known at END_STREAM only, as with a chunked HTTP/1.1 body.
    head_.content_length = content_length;
    head_.has_body = has_body || content_length > 0;
    head_.chunked = has_body && content_lengths_ == 0;
    return {};
}

}  // namespace edgeguard
