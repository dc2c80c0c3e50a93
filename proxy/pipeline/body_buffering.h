// Which request bodies are held whole before anything is sent upstream. A route that inspects bodies
// (privacy profile) always buffers. Otherwise a chunked body is buffered when the route's limit fits in
// memory (kMaxBufferedBodyLimit): its size is unknown until the last chunk, and streaming it would let the
// upstream see part of a body that ends in a 413. Bodies with a Content-Length never exceed the limit once
// admitted (the length is checked before reading), so they stream.
#pragma once

#include <cstdint>

namespace edgeguard {

// 1 MiB: the webhook (512 KiB) and flags limits fit; the capture and replay limits (20-25 MiB) stream.
inline constexpr uint64_t kMaxBufferedBodyLimit = 1024 * 1024;

// `body_limit` is the route's limit after defaults (0 = unlimited).
constexpr bool buffers_body_before_forwarding(uint64_t body_limit, bool chunked) {
    return chunked && body_limit != 0 && body_limit <= kMaxBufferedBodyLimit;
}

}  // namespace edgeguard
