// Byte-level strictness for request heads where llhttp 8 is lenient (PROXY.md §2.1): bare LF or bare CR
// line endings, obs-fold and whitespace-led header lines, whitespace between a field name and its colon,
// empty field names, more than one space between request-line parts, and fragments in the target. Each of
// these is a classic desync vector between a lenient front and a strict back, so all are 400.
// The scanner sees the same bytes llhttp does, chunk by chunk, and stops at the empty line ending the head.
#pragma once

#include <cstddef>
#include <cstdint>

namespace edgeguard {

class RequestHeadScanner {
public:
    enum class Result { NeedMore, HeadEnd, Invalid };

    // `response`: scan an upstream response head instead (status line: a three-digit code; header rules the
    // same, since a proxy must not relay obs-fold or whitespace before a colon either, RFC 9112 §5).
    void reset(bool response = false) {
        *this = RequestHeadScanner();
        response_ = response;
    }
    // Scans `len` bytes; on HeadEnd `consumed` is the number of bytes up to and including the final LF.
    Result scan(const char* data, size_t len, size_t& consumed);
    bool done() const { return state_.done; }
    const char* reason() const { return reason_; }
    // Where the header field lines began in the bytes of the last scan() (its `len` when they had not yet):
    // the scanned bytes from here to `consumed` are field lines that passed every check above, which the
    // caller hands to HeaderList::append_lines.
    size_t fields_from() const { return fields_from_; }

private:
    Result fail(const char* why) {
        reason_ = why;
        return Result::Invalid;
    }

    // Where the scan stands between chunks. scan() works on a local copy (kept in registers: stores through
    // `this` would otherwise be reloaded after every byte, since a char may alias them) and writes it back.
    struct State {
        bool done = false;
        bool prev_cr = false;
        bool prev_space = false;
        bool seen_request_line = false;
        bool seen_colon = false;
        uint32_t line_len = 0;
        uint32_t name_len = 0;
        uint32_t spaces = 0;
        uint32_t status_digits = 0;
    };

    bool response_ = false;
    State state_;
    size_t fields_from_ = 0;
    const char* reason_ = "";
};

}  // namespace edgeguard
