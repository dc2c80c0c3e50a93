#include "proxy/http1/head_scanner.h"

#include "proxy/http1/byte_skip.h"

namespace edgeguard {

namespace {

size_t skip_value_bytes(const char* data, size_t i, size_t len) {
    return skip_until<'\r', '\n'>(data, i, len);
}

size_t skip_name_bytes(const char* data, size_t i, size_t len) {
    return skip_until<':', '\r', '\n', ' ', '\t'>(data, i, len);
}

// Header lines from their first byte, a whole line at a time: a few vector scans per line where the byte
// state machine below decides at every delimiter. Only lines that are certainly valid are taken (name
// non-empty and free of whitespace, a colon, CR only right before the LF); at anything else this stops at
// the start of that line, and the state machine reads it and reports what is wrong. Returns where it
// stopped; `head_end`: it took the empty line that ends the head, and returned the index after its LF.
size_t skip_valid_header_lines(const char* data, size_t i, size_t len, bool& head_end) {
    while (i < len) {
        if (data[i] == '\r') {
            if (i + 1 == len || data[i + 1] != '\n') return i;
            head_end = true;
            return i + 2;
        }
        const size_t colon = skip_name_bytes(data, i, len);
        if (colon == len || colon == i || data[colon] != ':') return i;
        const size_t cr = skip_value_bytes(data, colon + 1, len);
        if (cr + 1 >= len || data[cr] != '\r' || data[cr + 1] != '\n') return i;
        i = cr + 2;
    }
    return i;
}

}  // namespace

RequestHeadScanner::Result RequestHeadScanner::scan(const char* data, size_t len, size_t& consumed) {
    State s = state_;
    const char* why = nullptr;
    size_t i = 0;
    fields_from_ = s.seen_request_line ? 0 : len;
    for (; i < len; ++i) {
        if (s.done) {
            consumed = i;
            state_ = s;
            return Result::HeadEnd;
        }
        if (s.seen_request_line && s.line_len == 0 && !s.prev_cr) {
            bool head_end = false;
            i = skip_valid_header_lines(data, i, len, head_end);
            if (head_end) {
                s.done = true;
                consumed = i;
                state_ = s;
                return Result::HeadEnd;
            }
            if (i == len) break;
        }
        if (!s.prev_cr) {
            // Runs of bytes that need no decision where they stand only lengthen the line (and the name).
            size_t next = i;
            if (s.seen_request_line) {
                if (s.line_len != 0)
                    next = s.seen_colon ? skip_value_bytes(data, i, len) : skip_name_bytes(data, i, len);
            } else if (response_) {
                // The version before the first space; the reason phrase after the code. The code's digits are
                // counted one by one below.
                if (s.spaces == 0)
                    next = skip_until<' ', '\r', '\n'>(data, i, len);
                else if (s.spaces >= 2)
                    next = skip_value_bytes(data, i, len);
            } else {
                next = skip_until<' ', '\t', '#', '\r', '\n'>(data, i, len);
                if (next != i) s.prev_space = false;
            }
            const auto skipped = static_cast<uint32_t>(next - i);
            s.line_len += skipped;
            if (s.seen_request_line && !s.seen_colon) s.name_len += skipped;
            i = next;
            if (i == len) break;
        }
        const char c = data[i];
        if (s.prev_cr && c != '\n') {
            why = "bare CR in request head";
            break;
        }
        if (c == '\r') {
            s.prev_cr = true;
            continue;
        }
        if (c == '\n') {
            if (!s.prev_cr) {
                why = "bare LF in request head";
                break;
            }
            s.prev_cr = false;
            if (!s.seen_request_line) {
                if (s.line_len == 0)
                    continue;  // empty lines before the request line are ignored (RFC 9112 §2.2)
                if (!response_ && s.spaces != 2) {
                    why = "malformed request line";
                    break;
                }
                if (response_ && (s.spaces == 0 || (s.spaces == 1 && s.status_digits != 3))) {
                    why = "status code is not three digits";
                    break;
                }
                s.seen_request_line = true;
                fields_from_ = i + 1;
            } else if (s.line_len == 0) {
                s.done = true;
                consumed = i + 1;
                state_ = s;
                return Result::HeadEnd;
            } else if (!s.seen_colon) {
                why = "header line without a colon";
                break;
            }
            s.line_len = s.name_len = s.spaces = 0;
            s.seen_colon = s.prev_space = false;
            continue;
        }
        const bool space = c == ' ' || c == '\t';
        if (!s.seen_request_line && response_) {
            // status line: llhttp takes any number of digits (or none) as the code; RFC 9112 §4 wants three
            if (c == ' ') {
                if (s.spaces == 1 && s.status_digits != 3) {
                    why = "status code is not three digits";
                    break;
                }
                ++s.spaces;
            } else if (s.spaces == 1) {
                if (c < '0' || c > '9') {
                    why = "status code is not three digits";
                    break;
                }
                ++s.status_digits;
            }
        } else if (!s.seen_request_line) {
            if (c == ' ') {
                if (s.prev_space || s.line_len == 0) {
                    why = "malformed request line";
                    break;
                }
                ++s.spaces;
            } else if (c == '\t') {
                why = "malformed request line";
                break;
            } else if (c == '#' && s.spaces == 1) {
                why = "fragment in request target";
                break;
            }
            s.prev_space = c == ' ';
        } else if (!s.seen_colon) {
            if (space) {
                why = s.line_len == 0 ? "obs-fold or leading whitespace in a header line"
                                      : "whitespace before a header colon";
                break;
            }
            if (c == ':') {
                if (s.name_len == 0) {
                    why = "empty header name";
                    break;
                }
                s.seen_colon = true;
            } else {
                ++s.name_len;
            }
        }
        ++s.line_len;
    }
    state_ = s;
    if (why != nullptr) return fail(why);
    consumed = len;
    return s.done ? Result::HeadEnd : Result::NeedMore;
}

}  // namespace edgeguard
