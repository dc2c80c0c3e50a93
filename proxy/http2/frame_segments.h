// Response bytes for DATA frames, copied once. Each append is copied into a 16 KiB block (one DATA frame's
// payload) that the evbuffer references instead of copying again; a block is shared by the references of
// the appends that filled it and freed when the last of them leaves the buffers it moved through. Blocks
// start where the stream's buffer was empty or the previous block filled up, so a full frame covers whole
// references and moves into the connection's output without a copy (Http2Stream::read_body ends a frame at
// a reference boundary).
#pragma once

#include <event2/buffer.h>

#include <cstddef>

namespace edgeguard {

// nghttp2 cuts DATA frames at this payload unless told otherwise (NGHTTP2_DATA_PAYLOADLEN).
inline constexpr size_t kDataFramePayload = 16384;

class FrameSegments {
  public:
    FrameSegments() = default;
    ~FrameSegments() { restart(); }
    FrameSegments(const FrameSegments&) = delete;
    FrameSegments& operator=(const FrameSegments&) = delete;

    // Appends `len` bytes to `out` (the stream's response buffer).
    void append(evbuffer* out, const char* data, size_t len);
    // The next append starts a new block: `out` was drained empty (the next frame starts there), or the
    // stream starts over. The open block is freed once the references to it are gone.
    void restart();

    // Appends below this size start no block of their own (an idle event stream keeps no 16 KiB block);
    // they go into `out` as plain bytes unless a block is open.
    static constexpr size_t kMinBlockStart = 4096;

  private:
    struct Block;
    static void release(const void* data, size_t len, void* block);

    Block* open_ = nullptr;
    size_t used_ = 0;
};

}  // namespace edgeguard
