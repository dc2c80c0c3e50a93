// The read side of a connection's bufferevent, and the one place that turns reading on and off.
//
// libevent 2.1's socket bufferevent reads at most 4096 bytes per readiness event and asks the kernel how
// much is waiting (ioctl FIONREAD) before every read: for a proxy that is one extra syscall per read on
// each side, two per request, plus extra wakeups and reads for anything over 4 KB. For plain sockets this
// class keeps the bufferevent for writing (and its write-side backpressure) but reads the socket itself:
// a persistent EV_READ event whose callback does one readv straight into the bufferevent's input buffer
// and then runs the same read callback a bufferevent would. EOF and errors reach the same event callback
// as BEV_EVENT_READING | BEV_EVENT_EOF / BEV_EVENT_ERROR, with reading disabled, as libevent reports them.
// TLS connections keep bufferevent_openssl: there this class only forwards to bufferevent_enable/disable
// and the read watermark, so callers treat both kinds the same way.
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include <cstddef>

namespace edgeguard {

class SocketReader {
public:
    SocketReader() = default;
    ~SocketReader() { detach(); }
    SocketReader(const SocketReader&) = delete;
    SocketReader& operator=(const SocketReader&) = delete;

    // Takes over `bev`'s callbacks: `on_read` and `on_event` are called exactly as bufferevent callbacks
    // (with `bev` and `arg`), `on_write` is left to the bufferevent. `plain` false (TLS): everything is
    // delegated to the bufferevent. Reading starts disabled. False when the read event cannot be set up.
    bool attach(bufferevent* bev, bool plain, bufferevent_data_cb on_read, bufferevent_data_cb on_write,
                bufferevent_event_cb on_event, void* arg);
    // Must run before the bufferevent is freed (the destructor does it too).
    void detach();

    // Reading is wanted; it actually happens while the input holds less than the high watermark.
    void enable();
    void disable();
    bool enabled() const { return wanted_; }
    // 0: no limit. Input beyond it is left in the socket (backpressure) until the input is drained.
    void set_high_watermark(size_t limit);

    // How many bytes one read may take: the most a single readiness event moves into the input buffer.
    static constexpr size_t kMaxRead = 64 * 1024;

private:
    static void on_readable(evutil_socket_t fd, short what, void* arg);
    static void on_input_changed(evbuffer* buf, const evbuffer_cb_info* info, void* arg);
    // One readv into the input. Returns its result (bytes, 0 at EOF, -1 with errno set).
    ssize_t read_once(evutil_socket_t fd);
    bool below_watermark() const;
    void update_registration();

    bufferevent* bev_ = nullptr;
    evbuffer* input_ = nullptr;
    evbuffer_cb_entry* input_cb_ = nullptr;  // only while reading waits for the owner to drain the input
    event read_event_{};
    bufferevent_data_cb on_read_ = nullptr;
    bufferevent_event_cb on_event_ = nullptr;
    void* arg_ = nullptr;
    size_t high_watermark_ = 0;
    bool plain_ = false;
    bool wanted_ = false;
    bool registered_ = false;  // read_event_ is added to the event loop
    size_t last_read_ = 0;  // bytes the last read brought: sizes the next one's direct chunk
};

}  // namespace edgeguard
