// FrameSegments: bytes copied once into 16 KiB blocks the evbuffer references, block boundaries on multiples
// of one DATA frame's payload, small appends as plain bytes, blocks freed with their last reference.
#include "proxy/http2/frame_segments.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgeguard {
namespace {

std::string bytes(size_t n, char seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7);
    return s;
}

std::string contents(evbuffer* buf) {
    std::string out(evbuffer_get_length(buf), '\0');
    evbuffer_copyout(buf, out.data(), out.size());
    return out;
}

// Lengths of the buffer's segments (one per evbuffer chain), in order.
std::vector<size_t> segments(evbuffer* buf) {
    const int n = evbuffer_peek(buf, -1, nullptr, nullptr, 0);
    std::vector<evbuffer_iovec> vec(static_cast<size_t>(n));
    evbuffer_peek(buf, -1, nullptr, vec.data(), n);
    std::vector<size_t> lens;
    for (const auto& v : vec) lens.push_back(v.iov_len);
    return lens;
}

struct Buffer {
    evbuffer* buf = evbuffer_new();
    ~Buffer() { evbuffer_free(buf); }
};

TEST(FrameSegments, BlocksEndOnFramePayloadMultiplesAcrossAppends) {
    Buffer b;
    FrameSegments seg;
    const std::string a = bytes(10000, 'a'), c = bytes(30000, 'c'), d = bytes(5000, 'd');
    seg.append(b.buf, a.data(), a.size());
    seg.append(b.buf, c.data(), c.size());
    seg.append(b.buf, d.data(), d.size());
    EXPECT_EQ(contents(b.buf), a + c + d);
    // 10000 | 6384 (fills the first block) | 16384 | 7232 | 5000 (the third block goes on)
    EXPECT_EQ(segments(b.buf), (std::vector<size_t>{10000, 6384, 16384, 7232, 5000}));
    // A frame of kDataFramePayload from the front covers whole segments: moved, not copied.
    Buffer out;
    evbuffer_remove_buffer(b.buf, out.buf, kDataFramePayload);
    EXPECT_EQ(segments(out.buf), (std::vector<size_t>{10000, 6384}));
    EXPECT_EQ(contents(out.buf), (a + c).substr(0, kDataFramePayload));
}

TEST(FrameSegments, SmallAppendsStartNoBlockButFillAnOpenOne) {
    Buffer b;
    FrameSegments seg;
    const std::string small = bytes(100, 's'), big = bytes(FrameSegments::kMinBlockStart, 'b');
    seg.append(b.buf, small.data(), small.size());
    seg.append(b.buf, small.data(), small.size());
    EXPECT_EQ(segments(b.buf), (std::vector<size_t>{200}));  // plain bytes, one chain
    seg.append(b.buf, big.data(), big.size());
    seg.append(b.buf, small.data(), small.size());
    EXPECT_EQ(segments(b.buf), (std::vector<size_t>{200, big.size(), small.size()}));
    EXPECT_EQ(contents(b.buf), small + small + big + small);
}

TEST(FrameSegments, RestartBeginsANewBlockAndDrainedBytesStayValidUntilTheirReferenceGoes) {
    Buffer b;
    FrameSegments seg;
    const std::string first = bytes(8000, 'f'), second = bytes(8000, 'g');
    seg.append(b.buf, first.data(), first.size());
    Buffer out;
    evbuffer_remove_buffer(b.buf, out.buf, first.size());  // the frame moved on; its block is still referenced
    seg.restart();
    seg.append(b.buf, second.data(), second.size());
    EXPECT_EQ(contents(out.buf), first);
    EXPECT_EQ(contents(b.buf), second);
    evbuffer_drain(out.buf, evbuffer_get_length(out.buf));  // the first block's last reference: freed (ASan)
    EXPECT_EQ(contents(b.buf), second);
}

}  // namespace
}  // namespace edgeguard
