#include "proxy/tcp/relay_buffer_pool.h"

namespace edgeguard {

uint8_t* RelayBufferPool::take(uint32_t size) {
    for (Free& f : free_) {
        if (f.size != size || f.buffers.empty()) continue;
        uint8_t* b = f.buffers.back();
        f.buffers.pop_back();
        return b;
    }
    return new uint8_t[size];
}

void RelayBufferPool::give_back(uint8_t* buffer, uint32_t size) {
    for (Free& f : free_) {
        if (f.size != size) continue;
        if (f.buffers.size() >= kMaxFreePerSize) {
            delete[] buffer;
        } else {
            f.buffers.push_back(buffer);
        }
        return;
    }
    free_.push_back(Free{size, {buffer}});
}

RelayBufferPool::~RelayBufferPool() {
    for (Free& f : free_)
        for (uint8_t* b : f.buffers) delete[] b;
}

}  // namespace edgeguard
