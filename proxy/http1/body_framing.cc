#include "proxy/http1/body_framing.h"

namespace edgeguard {

size_t format_chunk_size_line(uint64_t size, char* buf) {
    static constexpr char kHex[] = "0123456789abcdef";
    char digits[16];
    size_t n = 0;
    do {
        digits[n++] = kHex[size & 0xf];
        size >>= 4;
    } while (size != 0);
    size_t len = 0;
    while (n > 0) buf[len++] = digits[--n];
    buf[len++] = '\r';
    buf[len++] = '\n';
    return len;
}

namespace {

void add(evbuffer* out, const char* data, size_t len) { evbuffer_add(out, data, len); }
void add(WriteStage& out, const char* data, size_t len) { out.append(data, len); }

template <typename Out, typename AddBody>
void append_framed(Out& out, const char* data, size_t len, bool chunked, AddBody add_body) {
    if (len == 0) return;
    if (!chunked) {
        add_body(out, data, len);
        return;
    }
    char line[20];
    size_t line_len = format_chunk_size_line(len, line);
    add(out, line, line_len);
    add_body(out, data, len);
    add(out, "\r\n", 2);
}

template <typename Out>
void append_framed(Out& out, const char* data, size_t len, bool chunked) {
    append_framed(out, data, len, chunked, [](Out& o, const char* d, size_t n) { add(o, d, n); });
}

}  // namespace

void append_body_bytes(evbuffer* out, const char* data, size_t len, bool chunked) {
    append_framed(out, data, len, chunked);
}

void append_body_bytes(WriteStage& out, const char* data, size_t len, bool chunked) {
    append_framed(out, data, len, chunked);
}

void lend_body_bytes(WriteStage& out, const char* data, size_t len, bool chunked) {
    append_framed(out, data, len, chunked, [](WriteStage& o, const char* d, size_t n) { o.lend(d, n); });
}

void append_last_chunk(evbuffer* out) { evbuffer_add(out, kLastChunk, sizeof kLastChunk - 1); }
void append_last_chunk(WriteStage& out) { out.append(kLastChunk, sizeof kLastChunk - 1); }

}  // namespace edgeguard
