#include "proxy/upstream/upstream_response_parser.h"

#include <cstdint>

namespace edgeguard {

namespace {

UpstreamResponseParser* self_of(llhttp_t* p) { return static_cast<UpstreamResponseParser*>(p->data); }

}  // namespace

UpstreamResponseParser::UpstreamResponseParser(Sink& sink) : sink_(sink) {
    llhttp_init(&parser_, HTTP_RESPONSE, &settings());
    parser_.data = this;
}

const llhttp_settings_t& UpstreamResponseParser::settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        // No field callbacks: the fields come from the scanned lines (feed), trailers are not relayed.
        s.on_headers_complete = &UpstreamResponseParser::on_headers_complete;
        s.on_body = &UpstreamResponseParser::on_body;
        s.on_message_complete = &UpstreamResponseParser::on_message_complete;
        return s;
    }();
    return settings;
}

void UpstreamResponseParser::begin(bool head_request, std::string_view upgrade_protocol,
                                   uint32_t max_header_bytes) {
    llhttp_init(&parser_, HTTP_RESPONSE, &settings());
    parser_.data = this;
    scanner_.reset(true);
    fields_.clear();
    state_ = State::Head;
    head_request_ = head_request;
    upgrade_protocol_ = upgrade_protocol;
    max_header_bytes_ = max_header_bytes;
    bytes_received_ = 0;
    until_close_ = false;
}

bool UpstreamResponseParser::feed(const char* data, size_t len, size_t& consumed) {
    consumed = 0;
    if (state_ != State::Head && state_ != State::Body) return true;
    if (state_ == State::Head && !scanner_.done()) {
        // llhttp gets only bytes the scanner has checked, so a head after an interim response (which resets
        // the scanner) is never parsed unscanned.
        size_t scanned = 0;
        if (scanner_.scan(data, len, scanned) == RequestHeadScanner::Result::Invalid) return false;
        len = scanned;
        const size_t from = scanner_.fields_from();
        if (from < len) {
            fields_.append_lines(data + from, len - from);
            if (fields_.bytes() > max_header_bytes_) return false;
        }
    }
    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    consumed = len;
    if (err == HPE_PAUSED) {
        consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
        llhttp_resume(&parser_);
    } else if (err != HPE_OK) {
        return false;  // upstream framing errors (RFC 9112 §6.3)
    }
    bytes_received_ += consumed;
    return true;
}

bool UpstreamResponseParser::finish() {
    if (state_ == State::Body && until_close_ && llhttp_finish(&parser_) == HPE_OK) state_ = State::Complete;
    return state_ == State::Complete;
}

int UpstreamResponseParser::on_headers_complete(llhttp_t* p) { return self_of(p)->headers_complete(); }

int UpstreamResponseParser::headers_complete() {
    const int status = parser_.status_code;
    fields_.index_lines(SIZE_MAX);
    head_ = ResponseHead{};
    head_.status = status;
    head_.fields = &fields_;
    if (status >= 100 && status < 200) {
        // Interim responses are not relayed (edgeguard answers 100-continue itself). A 101 is accepted only
        // for the protocol the request asked for; anything else is a protocol violation.
        if (status == 101) {
            if (upgrade_protocol_.empty() || !iequals(fields_.find(HeaderList::kUpgrade), upgrade_protocol_))
                return -1;
            head_.has_body = false;
            state_ = State::Upgraded;
            return 0;
        }
        // The final head that follows gets the same strict scan as a first head, and its own fields.
        scanner_.reset(true);
        fields_.clear();
        // A 1xx ends at its blank line whatever its fields claim (RFC 9112 §6.3); reading a body here would
        // swallow the start of the final response.
        return 1;
    }
    // llhttp takes any number of digits (or none); a code outside 100-599 is no HTTP status (RFC 9110 §15).
    if (status < 100 || status > 599) return -1;
    if (fields_.count(HeaderList::kContentLength) > 1) return -1;
    if ((parser_.flags & F_CONTENT_LENGTH) && parser_.content_length > static_cast<uint64_t>(INT64_MAX)) return -1;
    const bool bodyless = head_request_ || status == 204 || status == 304;
    head_.has_body = !bodyless;
    until_close_ = false;
    if (!bodyless && !(parser_.flags & F_CHUNKED)) {
        if (parser_.flags & F_CONTENT_LENGTH) {
            head_.length_known = true;
            head_.content_length = parser_.content_length;
        } else {
            until_close_ = true;  // close-delimited (SSE from some servers, HTTP/1.0 upstreams)
        }
    }
    state_ = State::Body;
    sink_.upstream_response_head(head_);
    return bodyless ? 1 : 0;
}

int UpstreamResponseParser::on_body(llhttp_t* p, const char* at, size_t len) {
    UpstreamResponseParser* self = self_of(p);
    if (self->state_ == State::Body) self->sink_.upstream_response_body(at, len);
    return 0;
}

int UpstreamResponseParser::on_message_complete(llhttp_t* p) {
    UpstreamResponseParser* self = self_of(p);
    if (self->state_ == State::Upgraded) return HPE_PAUSED;  // the rest is the new protocol
    if (self->state_ != State::Body) return 0;               // an interim 1xx response ended
    self->state_ = State::Complete;
    return HPE_PAUSED;
}

}  // namespace edgeguard
