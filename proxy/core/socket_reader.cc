#include "proxy/core/socket_reader.h"

#include <sys/uio.h>

#include <algorithm>
#include <bit>
#include <cerrno>

namespace edgeguard {

namespace {

// Bytes read straight into the input buffer's own memory (no copy); a read that brings more lands in a stack
// buffer and is appended to the input right-sized, so a slow client cannot pin 64 KB. With libevent's chain
// header the small chunk is one 1 KB allocation, small enough for glibc's per-thread cache (up to 1032
// bytes): a request head or a small response is read and freed without malloc's slow path. A connection
// whose last read was larger (bodies) gets a chunk the size of that read, rounded up to the power of two
// libevent allocates anyway (a 10 KB POST: 16 KB), so a repeat of it is read in place rather than copied
// from the stack. That holds no more memory than before: the stack copy was appended into a chain of the
// same size.
constexpr size_t kChainHeader = 64;
constexpr size_t kSmallDirectRead = 1024 - kChainHeader;
constexpr size_t kLargeDirectRead = 4096 - kChainHeader;

size_t direct_read_size(size_t last_read) {
    if (last_read <= kSmallDirectRead) return kSmallDirectRead;
    const size_t chain = std::bit_ceil(std::min(last_read, SocketReader::kMaxRead) + kChainHeader);
    return std::clamp(chain, kLargeDirectRead + kChainHeader, SocketReader::kMaxRead) - kChainHeader;
}

}  // namespace

bool SocketReader::attach(bufferevent* bev, bool plain, bufferevent_data_cb on_read, bufferevent_data_cb on_write,
                          bufferevent_event_cb on_event, void* arg) {
    detach();
    bev_ = bev;
    plain_ = plain;
    on_read_ = on_read;
    on_event_ = on_event;
    arg_ = arg;
    wanted_ = false;
    registered_ = false;
    if (!plain_) {
        bufferevent_setcb(bev, on_read, on_write, on_event, arg);
        return true;
    }
    bufferevent_setcb(bev, nullptr, on_write, on_event, arg);
    input_ = bufferevent_get_input(bev);
    if (event_assign(&read_event_, bufferevent_get_base(bev), bufferevent_getfd(bev), EV_READ | EV_PERSIST,
                     &SocketReader::on_readable, this) != 0) {
        bev_ = nullptr;
        return false;
    }
    // A socket bufferevent freezes the end of its input so only its own read path appends; we are that
    // read path now.
    evbuffer_unfreeze(input_, 0);
    return true;
}

void SocketReader::detach() {
    if (bev_ == nullptr) return;
    if (plain_) {
        if (registered_) event_del(&read_event_);
        if (input_cb_ != nullptr) evbuffer_remove_cb_entry(input_, input_cb_);
        input_cb_ = nullptr;
        input_ = nullptr;
    }
    registered_ = false;
    wanted_ = false;
    bev_ = nullptr;
}

void SocketReader::enable() {
    if (bev_ == nullptr) return;
    wanted_ = true;
    if (!plain_) {
        bufferevent_enable(bev_, EV_READ);
        return;
    }
    update_registration();
}

void SocketReader::disable() {
    if (bev_ == nullptr) return;
    wanted_ = false;
    if (!plain_) {
        bufferevent_disable(bev_, EV_READ);
        return;
    }
    update_registration();
}

void SocketReader::set_high_watermark(size_t limit) {
    high_watermark_ = limit;
    if (bev_ == nullptr) return;
    if (!plain_) {
        bufferevent_setwatermark(bev_, EV_READ, 0, limit);
        return;
    }
    update_registration();
}

bool SocketReader::below_watermark() const {
    return high_watermark_ == 0 || evbuffer_get_length(input_) < high_watermark_;
}

void SocketReader::update_registration() {
    const bool below = below_watermark();
    const bool want = wanted_ && below;
    // Throttled at the watermark: watch the owner's drains to resume. Otherwise nothing needs to hear of
    // them, and an input buffer without callbacks costs nothing per append or drain.
    const bool watch = wanted_ && !below;
    if (watch && input_cb_ == nullptr) {
        input_cb_ = evbuffer_add_cb(input_, &SocketReader::on_input_changed, this);
    } else if (!watch && input_cb_ != nullptr) {
        // Safe from inside on_input_changed: libevent reads the next entry before running a callback.
        evbuffer_remove_cb_entry(input_, input_cb_);
        input_cb_ = nullptr;
    }
    if (want == registered_) return;
    if (want) {
        event_add(&read_event_, nullptr);
    } else {
        event_del(&read_event_);
    }
    registered_ = want;
}

// Drains of the input while reading is throttled: resume once the owner drained it below the watermark.
void SocketReader::on_input_changed(evbuffer*, const evbuffer_cb_info* info, void* arg) {
    auto* self = static_cast<SocketReader*>(arg);
    if (info->n_added == info->n_deleted) return;
    self->update_registration();
}

// Kept out of line: the 64 KB stack buffer must be gone before the owner's read callback runs.
[[gnu::noinline]] ssize_t SocketReader::read_once(evutil_socket_t fd) {
    size_t want = kMaxRead;
    if (high_watermark_ != 0) want = std::min(want, high_watermark_ - evbuffer_get_length(input_));
    evbuffer_iovec direct[2];
    const size_t direct_size = direct_read_size(last_read_);
    const int n_direct =
        evbuffer_reserve_space(input_, static_cast<ev_ssize_t>(std::min(want, direct_size)), direct, 2);
    if (n_direct < 0) {
        errno = ENOMEM;
        return -1;
    }
    iovec iov[3];
    int n_iov = 0;
    size_t reserved = 0;
    for (int i = 0; i < n_direct && reserved < want; ++i) {
        direct[i].iov_len = std::min(direct[i].iov_len, want - reserved);
        iov[n_iov++] = iovec{direct[i].iov_base, direct[i].iov_len};
        reserved += direct[i].iov_len;
    }
    const int n_reserved = n_iov;
    char overflow[kMaxRead];
    if (reserved < want) iov[n_iov++] = iovec{overflow, want - reserved};
    const ssize_t got = ::readv(fd, iov, n_iov);
    last_read_ = got > 0 ? static_cast<size_t>(got) : 0;
    size_t left = got > 0 ? static_cast<size_t>(got) : 0;
    int used = 0;
    for (; used < n_reserved && left > 0; ++used) {
        direct[used].iov_len = std::min(direct[used].iov_len, left);
        left -= direct[used].iov_len;
    }
    const int saved_errno = errno;
    evbuffer_commit_space(input_, direct, used);
    if (left > 0) evbuffer_add(input_, overflow, left);
    errno = saved_errno;
    return got;
}

void SocketReader::on_readable(evutil_socket_t fd, short, void* arg) {
    auto* self = static_cast<SocketReader*>(arg);
    if (!self->below_watermark()) {
        self->update_registration();
        return;
    }
    const ssize_t got = self->read_once(fd);
    bufferevent* bev = self->bev_;
    void* owner = self->arg_;
    if (got > 0) {
        self->update_registration();  // this read may have filled the input to the watermark
        self->on_read_(bev, owner);  // may free the owner, and this reader with it
        return;
    }
    if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    // As libevent's socket bufferevent reports them: reading stops, then the event callback runs.
    const short what = static_cast<short>(BEV_EVENT_READING | (got == 0 ? BEV_EVENT_EOF : BEV_EVENT_ERROR));
    bufferevent_event_cb on_event = self->on_event_;
    self->disable();
    on_event(bev, what, owner);
}

}  // namespace edgeguard
