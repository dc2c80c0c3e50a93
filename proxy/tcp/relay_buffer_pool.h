// A worker's free relay buffers. A TCP relay holds a buffer for a direction only while bytes wait in it, so
// idle connections hold none, and taking or giving one back on the hot path is a vector push or pop instead
// of an allocation. Used by one worker thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace edgeguard {

class RelayBufferPool {
  public:
    // A buffer of `size` bytes (listeners may differ in size); allocates only when none of that size is free.
    uint8_t* take(uint32_t size);
    void give_back(uint8_t* buffer, uint32_t size);
    ~RelayBufferPool();

  private:
    struct Free {
        uint32_t size;
        std::vector<uint8_t*> buffers;
    };
    // Past this many free buffers of one size, returned ones are freed: a burst must not pin its peak.
    static constexpr size_t kMaxFreePerSize = 256;
    std::vector<Free> free_;  // one entry per distinct size, a handful at most
};

}  // namespace edgeguard
