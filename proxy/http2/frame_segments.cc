#include "proxy/http2/frame_segments.h"

#include <algorithm>
#include <cstring>
#include <new>

namespace edgeguard {

struct FrameSegments::Block {
    unsigned refs = 1;  // the open block's own reference, plus one per evbuffer reference
    char bytes[kDataFramePayload];
};

void FrameSegments::release(const void*, size_t, void* block) {
    auto* b = static_cast<Block*>(block);
    if (--b->refs == 0) delete b;
}

void FrameSegments::restart() {
    if (open_ == nullptr) return;
    release(nullptr, 0, open_);
    open_ = nullptr;
    used_ = 0;
}

void FrameSegments::append(evbuffer* out, const char* data, size_t len) {
    while (len != 0) {
        if (open_ == nullptr) {
            if (len < kMinBlockStart) break;
            open_ = new (std::nothrow) Block;
            if (open_ == nullptr) break;
            used_ = 0;
        }
        const size_t n = std::min(len, kDataFramePayload - used_);
        char* at = open_->bytes + used_;
        std::memcpy(at, data, n);
        ++open_->refs;
        if (evbuffer_add_reference(out, at, n, &FrameSegments::release, open_) != 0) {
            --open_->refs;
            break;  // out of memory: the plain copy below
        }
        used_ += n;
        data += n;
        len -= n;
        if (used_ == kDataFramePayload) restart();
    }
    if (len != 0) evbuffer_add(out, data, len);
}

}  // namespace edgeguard
