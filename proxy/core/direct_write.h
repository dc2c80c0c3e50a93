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
//
// Body bytes that stay put until the flush — still in the buffer they were read into, or a buffered body
// sent whole — can be lent instead of copied (lend): the stage points at them, and a flush sends them from
// there with the rest in the same writev. Until then
// the lender keeps them where they are; before it drains or changes them it either flushes or calls
// keep_lent, which copies them into the stage. Whatever the kernel does not take is copied on the way out.
class WriteStage {
  public:
    WriteStage();
    ~WriteStage();
    WriteStage(const WriteStage&) = delete;
    WriteStage& operator=(const WriteStage&) = delete;

    bool ready() const { return large_ != nullptr; }  // false: out of memory at construction
    void append(const char* data, size_t len);
    void append(std::string_view bytes) { append(bytes.data(), bytes.size()); }
    // Stages `len` bytes at `data` without copying them: they must stay unchanged until the next flush,
    // clear or keep_lent.
    void lend(const char* data, size_t len);
    bool has_lent() const { return lent_ != 0; }
    // Copies lent bytes into the stage (their owner is about to drain them); order is kept.
    void keep_lent();
    bool empty() const { return n_pieces_ == 0 && !spilled_; }
    void clear();
    // Moves everything staged toward `bev`'s peer, preserving order: one writev when `direct` (a plain
    // socket) and nothing is queued in the bufferevent, which gets whatever the kernel did not take.
    void flush(bufferevent* bev, bool direct);

    static constexpr size_t kSmall = 2048;

  private:
    // What goes out before large_, in order: runs of small_ (by offset, as small_ may move when it grows)
    // and lent bytes.
    struct Piece {
        const char* lent;  // nullptr: small_[offset, offset + len)
        size_t offset;
        size_t len;
    };
    static constexpr int kMaxPieces = 8;
    const char* piece_data(const Piece& p) const { return p.lent != nullptr ? p.lent : small_.data() + p.offset; }
    void reset_pieces();
    void spill(const char* data, size_t len);

    std::string small_;          // the first bytes staged, up to kSmall
    Piece pieces_[kMaxPieces];
    int n_pieces_ = 0;
    int lent_ = 0;               // pieces that are lent
    evbuffer* large_ = nullptr;  // everything staged after small_ was full (or pieces_ ran out), in order
    bool spilled_ = false;       // large_ holds bytes
};

// bufferevent_enable(EV_WRITE) registers the write event at once even with nothing to send: on a new
// connection that is two epoll_ctl and one wakeup for nothing, and direct writes may never need it. Call
// instead of enabling EV_WRITE: it is enabled the first time bytes are queued in `bev`'s output.
void enable_write_when_queued(bufferevent* bev);

}  // namespace edgeguard
