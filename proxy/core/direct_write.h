// Writing without registering for writability. A bufferevent adds its write event (an epoll_ctl) whenever
// bytes are appended and removes it (another epoll_ctl) once they are sent, i.e. twice per response and
// twice per upstream request. Most heads and small bodies fit in the socket buffer at once, so we stage
// them and send them with one writev when nothing is queued; only what the kernel does not take goes
// through the bufferevent (and its write event, which keeps backpressure working).
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace edgeguard {

// Moves everything in `staged` toward `bev`'s peer, preserving order. `direct` false (TLS) just appends.
void flush_staged(bufferevent* bev, evbuffer* staged, bool direct);

// The bytes of one flush of an HTTP/1.1 message: a head and the body bytes of one read. Small pieces are
// copied into a reused string, so a keep-alive request or response stages and sends with no allocation
// (an evbuffer allocates a chain for the first byte it holds and frees it once sent). Once the string
// would pass kSmall, later pieces go to an evbuffer instead, so a large body is copied once as before and
// a connection never keeps more than a few KB of capacity while idle.
class WriteStage {
  public:
    WriteStage();
    ~WriteStage();
    WriteStage(const WriteStage&) = delete;
    WriteStage& operator=(const WriteStage&) = delete;

    bool ready() const { return large_ != nullptr; }  // false: out of memory at construction
    void append(const char* data, size_t len);
    void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }
    bool empty() const { return small_.empty() && evbuffer_get_length(large_) == 0; }
    void clear();
    // Moves everything staged toward `bev`'s peer, preserving order: one writev when `direct` (a plain
    // socket) and nothing is queued in the bufferevent, which gets whatever the kernel did not take.
    void flush(bufferevent* bev, bool direct);

    static constexpr size_t kSmall = 2048;

  private:
    std::string small_;          // the first bytes staged, up to kSmall
    evbuffer* large_ = nullptr;  // everything staged after small_ was full, in order
};

// bufferevent_enable(EV_WRITE) registers the write event at once even with nothing to send: on a new
// connection that is two epoll_ctl and one wakeup for nothing, and direct writes may never need it. Call
// instead of enabling EV_WRITE: it is enabled the first time bytes are queued in `bev`'s output.
void enable_write_when_queued(bufferevent* bev);

}  // namespace edgeguard
