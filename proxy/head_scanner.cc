#include "proxy/head_scanner.h"

namespace edgeguard {

RequestHeadScanner::Result RequestHeadScanner::scan(const char* data, size_t len, size_t& consumed) {
    for (size_t i = 0; i < len; ++i) {
        if (done_) {
            consumed = i;
            return Result::HeadEnd;
        }
        const char c = data[i];
        if (prev_cr_ && c != '\n') return fail("bare CR in request head");
        if (c == '\r') {
            prev_cr_ = true;
            continue;
        }
        if (c == '\n') {
            if (!prev_cr_) return fail("bare LF in request head");
            prev_cr_ = false;
            if (!seen_request_line_) {
                if (line_len_ == 0) continue;  // empty lines before the request line are ignored (RFC 9112 §2.2)
                if (!response_ && spaces_ != 2) return fail("malformed request line");
                if (response_ && (spaces_ == 0 || (spaces_ == 1 && status_digits_ != 3)))
                    return fail("status code is not three digits");
                seen_request_line_ = true;
            } else if (line_len_ == 0) {
                done_ = true;
                consumed = i + 1;
                return Result::HeadEnd;
            } else if (!seen_colon_) {
                return fail("header line without a colon");
            }
            line_len_ = name_len_ = spaces_ = 0;
            seen_colon_ = prev_space_ = false;
            continue;
        }
        const bool space = c == ' ' || c == '\t';
        if (!seen_request_line_ && response_) {
            // status line: llhttp takes any number of digits (or none) as the code; RFC 9112 §4 wants three
            if (c == ' ') {
                if (spaces_ == 1 && status_digits_ != 3) return fail("status code is not three digits");
                ++spaces_;
            } else if (spaces_ == 1) {
                if (c < '0' || c > '9') return fail("status code is not three digits");
                ++status_digits_;
            }
        } else if (!seen_request_line_) {
            if (c == ' ') {
                if (prev_space_ || line_len_ == 0) return fail("malformed request line");
                ++spaces_;
            } else if (c == '\t') {
                return fail("malformed request line");
            } else if (c == '#' && spaces_ == 1) {
                return fail("fragment in request target");
            }
            prev_space_ = c == ' ';
        } else if (!seen_colon_) {
            if (space) return fail(line_len_ == 0 ? "obs-fold or leading whitespace in a header line"
                                                  : "whitespace before a header colon");
            if (c == ':') {
                if (name_len_ == 0) return fail("empty header name");
                seen_colon_ = true;
            } else {
                ++name_len_;
            }
        }
        ++line_len_;
    }
    consumed = len;
    return done_ ? Result::HeadEnd : Result::NeedMore;
}

}  // namespace edgeguard
