#include "proxy/core/direct_write.h"

#include <event2/bufferevent_struct.h>
#include <sys/uio.h>

#include <algorithm>

namespace edgeguard {

namespace {

// The socket of a plain bufferevent is its write event's; bufferevent_getfd would take the bufferevent's
// lock and go through its control callback for the same number on every flush.
evutil_socket_t socket_of(bufferevent* bev) { return event_get_fd(&bev->ev_write); }

}  // namespace

void flush_staged(bufferevent* bev, evbuffer* staged, bool direct) {
    if (evbuffer_get_length(staged) == 0) return;
    evbuffer* out = bufferevent_get_output(bev);
    if (direct && evbuffer_get_length(out) == 0) {
        const evutil_socket_t fd = socket_of(bev);
        // EAGAIN or an error leaves the bytes staged; the bufferevent retries them and reports the error.
        if (fd >= 0) evbuffer_write(staged, fd);
        if (evbuffer_get_length(staged) == 0) return;
    }
    evbuffer_add_buffer(out, staged);
}

WriteStage::WriteStage() : large_(evbuffer_new()) {}

WriteStage::~WriteStage() {
    if (large_ != nullptr) evbuffer_free(large_);
}

void WriteStage::append(const char* data, size_t len) {
    if (len == 0) return;
    if (small_.size() + len <= kSmall && evbuffer_get_length(large_) == 0) {
        small_.append(data, len);
        return;
    }
    evbuffer_add(large_, data, len);
}

void WriteStage::clear() {
    small_.clear();
    evbuffer_drain(large_, evbuffer_get_length(large_));
}

void WriteStage::flush(bufferevent* bev, bool direct) {
    const size_t large_len = evbuffer_get_length(large_);
    if (small_.empty() && large_len == 0) return;
    evbuffer* out = bufferevent_get_output(bev);
    size_t sent = 0;
    if (direct && evbuffer_get_length(out) == 0) {
        const evutil_socket_t fd = socket_of(bev);
        constexpr int kMaxVecs = 16;
        iovec iov[kMaxVecs];
        int n = 0;
        if (!small_.empty()) iov[n++] = iovec{small_.data(), small_.size()};
        if (large_len != 0) {
            evbuffer_iovec chains[kMaxVecs];
            const int room = kMaxVecs - n;
            const int peeked = std::min(evbuffer_peek(large_, -1, nullptr, chains, room), room);
            for (int i = 0; i < peeked; ++i) iov[n++] = iovec{chains[i].iov_base, chains[i].iov_len};
        }
        // EAGAIN or an error sends nothing; the bufferevent retries the bytes and reports the error.
        const ssize_t written = fd >= 0 ? ::writev(fd, iov, n) : -1;
        if (written > 0) sent = static_cast<size_t>(written);
    }
    const size_t from_small = std::min(sent, small_.size());
    if (from_small < small_.size()) evbuffer_add(out, small_.data() + from_small, small_.size() - from_small);
    small_.clear();
    if (large_len != 0) {
        evbuffer_drain(large_, sent - from_small);
        evbuffer_add_buffer(out, large_);
    }
}

namespace {

void enable_write_on_first_bytes(evbuffer* out, const evbuffer_cb_info* info, void* arg) {
    auto* bev = static_cast<bufferevent*>(arg);
    if (info->n_added == 0 || (bufferevent_get_enabled(bev) & EV_WRITE) != 0) return;
    bufferevent_enable(bev, EV_WRITE);
    // From now on the bufferevent adds and removes its write event itself.
    evbuffer_remove_cb(out, &enable_write_on_first_bytes, arg);
}

}  // namespace

void enable_write_when_queued(bufferevent* bev) {
    evbuffer_add_cb(bufferevent_get_output(bev), &enable_write_on_first_bytes, bev);
}

}  // namespace edgeguard
