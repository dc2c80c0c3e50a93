// Re-chunking of body bytes toward upstreams and clients.
#include "proxy/http1/body_framing.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <string>

namespace edgeguard {
namespace {

std::string drain(evbuffer* b) {
    std::string s(evbuffer_get_length(b), '\0');
    evbuffer_remove(b, s.data(), s.size());
    return s;
}

TEST(ChunkSizeLine, LowercaseHexWithoutPrefix) {
    char buf[20];
    EXPECT_EQ(std::string(buf, format_chunk_size_line(0, buf)), "0\r\n");
    EXPECT_EQ(std::string(buf, format_chunk_size_line(10, buf)), "a\r\n");
    EXPECT_EQ(std::string(buf, format_chunk_size_line(65536, buf)), "10000\r\n");
    EXPECT_EQ(std::string(buf, format_chunk_size_line(UINT64_MAX, buf)), "ffffffffffffffff\r\n");
}

TEST(BodyBytes, ChunkedAndPlain) {
    evbuffer* b = evbuffer_new();
    append_body_bytes(b, "hello", 5, true);
    append_body_bytes(b, "", 0, true);  // must not emit a terminating zero chunk
    append_body_bytes(b, "0123456789abcdefX", 17, true);
    append_last_chunk(b);
    EXPECT_EQ(drain(b), "5\r\nhello\r\n11\r\n0123456789abcdefX\r\n0\r\n\r\n");
    append_body_bytes(b, "raw", 3, false);
    EXPECT_EQ(drain(b), "raw");
    evbuffer_free(b);
}

}  // namespace
}  // namespace edgeguard
