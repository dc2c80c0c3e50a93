// ClientConnection: ACME HTTP-01 challenge answers on listeners with `acme_webroot`.
#include <charconv>

#include "proxy/http1/client_connection.h"
#include "proxy/pipeline/acme_challenge.h"

namespace edgeguard {

void ClientConnection::read_bodyless_request_to_end() {
    if (req_has_body_) return;
    pause_reason_ = PauseReason::None;
    static const char kNothing[1] = {0};
    if (llhttp_execute(&req_parser_, kNothing, 0) == HPE_PAUSED) llhttp_resume(&req_parser_);
    if (pause_reason_ == PauseReason::MessageComplete) phase_ = RequestPhase::Done;
}

bool ClientConnection::answer_acme_challenge() {
    if (listener_->acme_webroot.empty() || !is_acme_challenge_path(normalized_path_)) return true;
    const auto method = static_cast<llhttp_method_t>(req_parser_.method);
    if (method != HTTP_GET && method != HTTP_HEAD) {
        respond_error(405, "ACME challenges are fetched with GET");
        return false;
    }
    const std::string_view token = acme_challenge_token(normalized_path_);
    if (token.empty()) {
        respond_error(404, "not an ACME challenge token");
        return false;
    }
    const AcmeChallengeFile file = read_acme_challenge(listener_->acme_webroot, token);
    if (file.status != 200) {
        respond_error(file.status, file.reason);
        return false;
    }
    read_bodyless_request_to_end();
    const bool keep = phase_ == RequestPhase::Done && keep_alive_ && !draining_;
    scratch_.assign("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nCache-Control: no-store\r\nContent-Length: ");
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, file.body.size());
    (void)ec;
    scratch_.append(digits, end);
    scratch_.append(keep ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    if (method != HTTP_HEAD) scratch_.append(file.body);
    respond_local(scratch_, !keep, 200);
    return false;
}

}  // namespace edgeguard
