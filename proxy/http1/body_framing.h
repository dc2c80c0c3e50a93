// Chunked transfer-coding on the way out. llhttp hands us de-chunked body bytes in both directions; when the
// outgoing message has no known length we re-chunk them here. Chunk extensions and trailers are never
// forwarded (PROXY.md §2.1: drop extensions when re-encoding).
#pragma once

#include <event2/buffer.h>

#include <cstddef>
#include <cstdint>

#include "proxy/core/direct_write.h"

namespace edgeguard {

// Writes "<hex size>\r\n" into `buf` (at least 19 bytes) and returns its length.
size_t format_chunk_size_line(uint64_t size, char* buf);

// Appends `len` body bytes to `out` in the given framing: as they are, or as one chunk when `chunked`.
// Zero-length input appends nothing (a zero-size chunk would end the body).
void append_body_bytes(evbuffer* out, const char* data, size_t len, bool chunked);
void append_body_bytes(WriteStage& out, const char* data, size_t len, bool chunked);
// The same, with the body bytes lent to `out` (WriteStage::lend) rather than copied; framing is copied.
void lend_body_bytes(WriteStage& out, const char* data, size_t len, bool chunked);

// The last chunk and the empty trailer section.
inline constexpr char kLastChunk[] = "0\r\n\r\n";
void append_last_chunk(evbuffer* out);
void append_last_chunk(WriteStage& out);

}  // namespace edgeguard
