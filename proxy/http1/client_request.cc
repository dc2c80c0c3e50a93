// ClientConnection, the request side: parsing the client's bytes, validating the head as HTTP/1.1, handing
// it and then the body to the exchange, 100-continue.
#include "proxy/http1/client_connection.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>
#include <cstring>

#include "proxy/core/direct_write.h"
#include "proxy/pipeline/http_errors.h"
#include "proxy/http1/request_target.h"
#include "proxy/pipeline/router.h"
#include "proxy/tls/tls_redirect.h"
#include "proxy/core/worker.h"

namespace edgeguard {

namespace {

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

ClientConnection* self_of(llhttp_t* p) { return static_cast<ClientConnection*>(p->data); }

int status_for_parse_error(llhttp_errno_t err) {
    switch (err) {
        case HPE_INVALID_TRANSFER_ENCODING: return 501;
        case HPE_INVALID_VERSION: return 505;
        default: return 400;
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Request parsing
// ---------------------------------------------------------------------------------------------------------

// The head's fields come from the scanned lines (process_client_input), so the head is parsed without a
// callback per field; after it the settings switch to the ones that check trailer field names.
const llhttp_settings_t& ClientConnection::request_settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s;
        llhttp_settings_init(&s);
        s.on_message_begin = &ClientConnection::req_message_begin;
        s.on_url = &ClientConnection::req_url;
        s.on_headers_complete = &ClientConnection::req_headers_complete;
        s.on_body = &ClientConnection::req_body;
        s.on_chunk_header = &ClientConnection::req_chunk_header;
        s.on_chunk_extension_name = &ClientConnection::req_chunk_extension;
        s.on_chunk_extension_value = &ClientConnection::req_chunk_extension;
        s.on_message_complete = &ClientConnection::req_message_complete;
        return s;
    }();
    return settings;
}

const llhttp_settings_t& ClientConnection::body_settings() {
    static const llhttp_settings_t settings = [] {
        llhttp_settings_t s = request_settings();
        s.on_header_field = &ClientConnection::req_trailer_field;
        return s;
    }();
    return settings;
}

int ClientConnection::req_message_begin(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    p->settings = const_cast<llhttp_settings_t*>(&request_settings());
    self->url_.clear();
    self->pending_status_ = 0;
    self->ex_.reset_request();
    self->body_bytes_ = 0;
    self->expect_continue_ = false;
    self->continue_sent_ = false;
    self->upgrade_requested_ = false;
    self->response_started_ = false;
    return 0;
}

int ClientConnection::req_url(llhttp_t* p, const char* at, size_t len) {
    ClientConnection* self = self_of(p);
    const Limits& limits = self->snapshot_->config->limits;
    if (self->url_.size() + len > limits.max_uri_bytes) {
        self->pending_status_ = 414;
        self->pending_message_ = "request target too long";
        return -1;
    }
    self->url_.append(at, len);
    return 0;
}

// Trailer fields: never forwarded (their values are not even looked at), but held to the header-name
// grammar (no whitespace before ':').
int ClientConnection::req_trailer_field(llhttp_t* p, const char* at, size_t len) {
    for (size_t i = 0; i < len; ++i) {
        if (at[i] == ' ' || at[i] == '\t') {
            ClientConnection* self = self_of(p);
            self->pending_status_ = 400;
            self->pending_message_ = "malformed trailer field";
            return -1;
        }
    }
    return 0;
}

int ClientConnection::req_headers_complete(llhttp_t* p) {
    ClientConnection* self = self_of(p);
    const Limits& limits = self->snapshot_->config->limits;
    if (!self->req_headers_.index_lines(limits.max_headers)) {
        self->pending_status_ = 431;
        self->pending_message_ = "too many request header fields";
        return -1;
    }
    if (self->req_headers_.bytes() + self->url_.size() > limits.max_header_bytes) {
        self->pending_status_ = 431;
        self->pending_message_ = "request header fields too large";
        return -1;
    }
    p->settings = const_cast<llhttp_settings_t*>(&body_settings());
    self->keep_alive_ = llhttp_should_keep_alive(p) != 0;
    self->req_chunked_ = (p->flags & F_CHUNKED) != 0;
    self->req_content_length_ = (p->flags & F_CONTENT_LENGTH) ? p->content_length : 0;
    self->req_has_body_ = self->req_chunked_ || self->req_content_length_ > 0 ||
                          (p->flags & F_TRANSFER_ENCODING) != 0;
    // An Upgrade request is parsed as an ordinary body-less request: once it is complete the parser stays
    // paused, so bytes a client sends before the 101 are never read as HTTP (RFC 9931); they become tunnel
    // data after a matching 101, or the connection closes after any other response. h2c is never tunnelled
    // (it would bypass path rules, PROXY.md §2.8): its Upgrade header is dropped like any hop-by-hop field.
    self->upgrade_requested_ = false;
    if (p->upgrade && p->method != HTTP_CONNECT && !self->req_has_body_) {
        std::string_view proto = self->req_headers_.find(HeaderList::kUpgrade);
        if (!proto.empty() && !iequals(proto, "h2c")) {
            self->upgrade_requested_ = true;
            self->upgrade_protocol_.assign(proto);
        }
    }
    p->upgrade = 0;
    self->pause_reason_ = PauseReason::HeadComplete;
    return HPE_PAUSED;
}

int ClientConnection::req_body(llhttp_t* p, const char* at, size_t len) {
    return self_of(p)->on_request_body(at, len);
}

int ClientConnection::req_chunk_header(llhttp_t* p) {
    self_of(p)->chunk_extension_bytes_ = 0;
    return 0;
}

int ClientConnection::req_chunk_extension(llhttp_t* p, const char* at, size_t len) {
    constexpr uint32_t kMaxChunkExtensionBytes = 1024;  // PROXY.md §2.1: bound chunk-extension length
    ClientConnection* self = self_of(p);
    (void)at;
    self->chunk_extension_bytes_ += static_cast<uint32_t>(len);
    if (self->chunk_extension_bytes_ > kMaxChunkExtensionBytes) {
        self->pending_status_ = 400;
        self->pending_message_ = "chunk extension too long";
        return -1;
    }
    return 0;
}

int ClientConnection::req_message_complete(llhttp_t* p) {
    self_of(p)->pause_reason_ = PauseReason::MessageComplete;
    return HPE_PAUSED;
}

// Feeds buffered client bytes to the parser while the request may make progress. Stops when the parser is
// paused by us (waiting for an upstream, or for the response), or when the upstream's output is full.
void ClientConnection::process_client_input() {
    // What one call stages upstream (a just-sent head included) leaves in one writev on the way out: sent
    // piecemeal, an upstream could answer before the body it never waited for was all forwarded.
    struct FlushOnExit {
        ClientConnection* self;
        ~FlushOnExit() {
            if (!self->closed_) self->ex_.flush_request();
        }
    } flush_on_exit{this};
    while (!closed_ && !close_after_flush_) {
        if (phase_ == RequestPhase::Dispatch || phase_ == RequestPhase::Done) return;
        if (phase_ == RequestPhase::Body && !ex_.request_body_room()) return;  // request_body_drained resumes
        evbuffer* in = bufferevent_get_input(bev_);
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) return;
        const char* data = static_cast<const char*>(vec.iov_base);
        const size_t len = vec.iov_len;
        if (phase_ == RequestPhase::Idle) begin_request_head();
        if (phase_ == RequestPhase::Head && !head_scanner_.done()) {
            size_t scanned = 0;
            const RequestHeadScanner::Result scan = head_scanner_.scan(data, len, scanned);
            if (scan == RequestHeadScanner::Result::Invalid) {
                evbuffer_drain(in, len);
                respond_error(400, head_scanner_.reason());
                return;
            }
            // The head's field lines, as scanned; indexed into fields when llhttp reaches the head's end.
            const size_t fields_end = scan == RequestHeadScanner::Result::HeadEnd ? scanned : len;
            const size_t fields_from = head_scanner_.fields_from();
            if (fields_from < fields_end) {
                req_headers_.append_lines(data + fields_from, fields_end - fields_from);
                if (req_headers_.bytes() > snapshot_->config->limits.max_header_bytes) {
                    evbuffer_drain(in, len);
                    respond_error(431, "request header fields too large");
                    return;
                }
            }
        }
        pause_reason_ = PauseReason::None;
        llhttp_errno_t err = llhttp_execute(&req_parser_, data, len);
        size_t consumed = len;
        if (err == HPE_PAUSED) {
            consumed = static_cast<size_t>(llhttp_get_error_pos(&req_parser_) - data);
            llhttp_resume(&req_parser_);
        } else if (err != HPE_OK) {
            if (!closed_) ex_.keep_request_body();  // body bytes of this span were lent to the upstream stage
            evbuffer_drain(in, len);
            int status = pending_status_ != 0 ? pending_status_ : status_for_parse_error(err);
            const char* message = pending_status_ != 0 ? pending_message_ : llhttp_get_error_reason(&req_parser_);
            if (closed_) return;
            fail_with_status_or_abort(status, message != nullptr ? message : "malformed request");
            return;
        }
        // Body bytes were lent to the upstream stage from the input: they leave before it is drained when
        // nothing more of this read is to come (the writev this call would make on its way out anyway),
        // and are copied into the stage otherwise.
        if (ex_.request_body_lent() && !closed_) {
            if (pause_reason_ != PauseReason::None || consumed == evbuffer_get_length(in)) {
                ex_.flush_request();
            } else {
                ex_.keep_request_body();
            }
        }
        evbuffer_drain(in, consumed);
        ex_.accounting.bytes_in += consumed;
        if (closed_) return;
        if (pause_reason_ != PauseReason::None) ex_.flush_request();
        if (pause_reason_ == PauseReason::HeadComplete) {
            phase_ = RequestPhase::Dispatch;
            on_request_head();
        } else if (pause_reason_ == PauseReason::MessageComplete) {
            phase_ = RequestPhase::Done;
            on_request_complete();
        }
    }
}

// The head is dispatched: let the parser run on (into the body, or straight to message complete).
void ClientConnection::resume_request_parsing() {
    phase_ = RequestPhase::Body;
    if (expect_continue_ && req_has_body_ && !continue_sent_) {
        // We answer 100-continue ourselves once every check that needs only the head has passed; no body
        // byte is read (or sent upstream) before this point.
        continue_sent_ = true;
        bufferevent_write(bev_, kContinue, sizeof kContinue - 1);
    }
    // A pause at headers-complete resumes in a state that needs no input for a body-less request; run the
    // parser once even with nothing buffered so on_message_complete fires.
    static const char kNothing[1] = {0};
    pause_reason_ = PauseReason::None;
    llhttp_errno_t err = llhttp_execute(&req_parser_, kNothing, 0);
    if (err == HPE_PAUSED) {
        llhttp_resume(&req_parser_);
    } else if (err != HPE_OK) {
        int status = pending_status_ != 0 ? pending_status_ : status_for_parse_error(err);
        fail_with_status_or_abort(status, "malformed request");
        return;
    }
    if (closed_) return;
    if (pause_reason_ == PauseReason::MessageComplete) {
        phase_ = RequestPhase::Done;
        on_request_complete();  // flushes the staged head
        return;
    }
    // A body is still to come: from now on it is timed by the body idle timeout (a complete body-less
    // request never needs it).
    const Timeouts& t = ex_.route != nullptr ? ex_.route->timeouts : snapshot_->config->timeouts;
    arm_client_timer(ClientTimer::BodyIdle, t.client_body_idle);
    process_client_input();  // the staged head leaves with the body bytes already here
}

void ClientConnection::flush_client_stage() {
    if (closed_ || bev_ == nullptr) return;
    client_stage_.flush(bev_, client_direct_);
}

// ---------------------------------------------------------------------------------------------------------
// The request path
// ---------------------------------------------------------------------------------------------------------

void ClientConnection::on_request_head() {
    timer_.disarm();
    timer_kind_ = ClientTimer::None;
    if (!validate_head()) return;
    // Before the exchange's HTTPS redirect: the CA fetches challenges over plain HTTP.
    if (!answer_acme_challenge()) return;
    RequestHead head;
    head.method = static_cast<llhttp_method_t>(req_parser_.method);
    head.target = url_;
    head.normalized_path = normalized_path_;
    head.query = query_;
    head.headers = &req_headers_;
    head.has_body = req_has_body_;
    head.chunked = req_chunked_;
    head.content_length = req_content_length_;
    head.host_override = absolute_form_host_;
    if (upgrade_requested_) head.upgrade_protocol = upgrade_protocol_;
    ex_.on_request_head(head);  // ends in request_admitted or a respond_* call, maybe after a Redis reply
}

// A buffered route (privacy stage, or a small limit: a body over it is refused with nothing forwarded) is
// admitted before the exchange connects, any other once the upstream has the head: either way the body is
// read from now on.
void ClientConnection::request_admitted(bool) { resume_request_parsing(); }

bool ClientConnection::validate_head() {
    const llhttp_t& p = req_parser_;
    if (p.http_major != 1 || p.http_minor > 1) {
        respond_error(505, "HTTP version not supported");
        return false;
    }
    if (p.method == HTTP_CONNECT || p.method == HTTP_TRACE) {
        respond_error(405, "method not allowed");
        return false;
    }
    size_t hosts = req_headers_.count(HeaderList::kHost);
    if (hosts > 1 || (hosts == 0 && p.http_minor == 1)) {
        respond_error(400, hosts > 1 ? "duplicate Host header" : "missing Host header");
        return false;
    }
    if (hosts == 1) {
        // Whether a Host is valid depends on its bytes alone: a connection's next request with the same Host
        // (nearly every one) needs no second look.
        const std::string_view host = req_headers_.find(HeaderList::kHost);
        if (host != valid_host_) {
            if (!is_valid_authority(host)) {
                respond_error(400, "invalid Host header");
                return false;
            }
            valid_host_.assign(host);
        }
    }
    if (req_headers_.count(HeaderList::kContentLength) > 1) {
        respond_error(400, "duplicate Content-Length");
        return false;
    }
    // llhttp reads Content-Length into a uint64; no body, file offset or upstream can hold more than int64.
    if ((p.flags & F_CONTENT_LENGTH) && p.content_length > static_cast<uint64_t>(INT64_MAX)) {
        respond_error(400, "invalid Content-Length");
        return false;
    }
    bool has_te = false;
    std::string_view te = req_headers_.find(HeaderList::kTransferEncoding, &has_te);
    if (has_te) {
        if (req_headers_.count(HeaderList::kContentLength) != 0) {
            respond_error(400, "Content-Length with Transfer-Encoding");
            return false;
        }
        if (p.http_minor == 0) {
            respond_error(400, "Transfer-Encoding in an HTTP/1.0 request");
            return false;
        }
        if (req_headers_.count(HeaderList::kTransferEncoding) != 1 || !is_plain_chunked(te)) {
            respond_error(501, "unsupported Transfer-Encoding");
            return false;
        }
    }
    if (!is_valid_target_bytes(url_)) {
        respond_error(400, "invalid character in request target");
        return false;
    }
    // Request target: origin-form; absolute-form is reduced to its path (RFC 9112 §3.2.2).
    std::string_view target = url_;
    absolute_form_host_ = {};
    if (target.starts_with("http://") || target.starts_with("https://")) {
        size_t authority = target.find("//") + 2;
        size_t slash = target.find_first_of("/?", authority);
        absolute_form_host_ = target.substr(authority, slash == std::string_view::npos ? target.npos
                                                                                        : slash - authority);
        if (absolute_form_host_.empty() || !is_valid_authority(absolute_form_host_)) {
            respond_error(400, "malformed request target");
            return false;
        }
        target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
        if (target.front() == '?') {
            respond_error(400, "malformed request target");
            return false;
        }
    }
    if (target.empty() || target.front() != '/') {
        respond_error(400, "malformed request target");
        return false;
    }
    size_t qmark = target.find('?');
    std::string_view raw_path = target.substr(0, qmark);
    query_ = qmark == std::string_view::npos ? std::string_view() : target.substr(qmark + 1);
    // The normalized form depends on the raw path alone: normalized again only when it changed.
    if (raw_path != normalized_from_) {
        std::optional<std::string> normalized = normalize_path(raw_path);
        if (!normalized) {
            normalized_from_.clear();
            respond_error(400, "malformed request path");
            return false;
        }
        normalized_path_.assign(*normalized);
        normalized_from_.assign(raw_path);
    }
    std::string_view expect = req_headers_.find(HeaderList::kExpect);
    expect_continue_ = p.http_minor == 1 && iequals(trim(expect), "100-continue");
    if (!expect.empty() && !expect_continue_ && p.http_minor == 1) {
        respond_error(417, "unsupported expectation");
        return false;
    }
    return true;
}

void ClientConnection::respond_redirect(std::string_view location) {
    // Body-less requests keep the connection; anything with a body closes (it is never read).
    read_bodyless_request_to_end();
    const bool keep = phase_ == RequestPhase::Done && keep_alive_ && !draining_;
    respond_local(https_redirect_response(location, keep), !keep, 308);
}

int ClientConnection::on_request_body(const char* data, size_t len) {
    body_bytes_ += len;
    if (ex_.body_limit != 0 && body_bytes_ > ex_.body_limit) {
        pending_status_ = 413;
        pending_message_ = "request body too large";
        // A streamed body: the upstream (named in the access log) already holds the part read so far.
        if (!ex_.buffering && ex_.has_upstream())
            ex_.accounting.error = "body_too_large: partial body sent upstream";
        return -1;
    }
    ex_.lend_request_body(data, len);  // settled by process_client_input before the input is drained
    return 0;
}

void ClientConnection::on_request_complete() {
    timer_.disarm();
    timer_kind_ = ClientTimer::None;
    ex_.request_end();
}

}  // namespace edgeguard
