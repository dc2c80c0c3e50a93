#include "proxy/direct_write.h"

#include <sys/uio.h>

#include <algorithm>

namespace edgeguard {

void flush_staged(bufferevent* bev, evbuffer* staged, bool direct) {
    if (evbuffer_get_length(staged) == 0) return;
    evbuffer* out = bufferevent_get_output(bev);
    if (direct && evbuffer_get_length(out) == 0) {
        const evutil_socket_t fd = bufferevent_getfd(bev);
        // EAGAIN or an error leaves the bytes staged; the bufferevent retries them and reports the error.
        if (fd >= 0) evbuffer_write(staged, fd);
        if (evbuffer_get_length(staged) == 0) return;
    }
    evbuffer_add_buffer(out, staged);
}

void read_rest(bufferevent* bev, size_t limit) {
    // The cap of one libevent read, and how much more we take in one go (a bounded chain, not `limit`).
    static constexpr size_t kLibeventMaxRead = 4096;
    static constexpr size_t kMaxRest = 32 * 1024;
    evbuffer* in = bufferevent_get_input(bev);
    const size_t have = evbuffer_get_length(in);
    if (have < kLibeventMaxRead || (limit != 0 && have >= limit)) return;
    const evutil_socket_t fd = bufferevent_getfd(bev);
    if (fd < 0) return;
    const size_t want = limit != 0 ? std::min(kMaxRest, limit - have) : kMaxRest;
    // A socket bufferevent keeps its input's end frozen except while it reads itself; so do we.
    evbuffer_unfreeze(in, 0);
    evbuffer_iovec vec[2];
    const int n = evbuffer_reserve_space(in, static_cast<ev_ssize_t>(want), vec, 2);
    if (n > 0) {
        iovec iov[2];
        size_t reserved = 0;
        for (int i = 0; i < n; ++i) {
            if (reserved + vec[i].iov_len > want) vec[i].iov_len = want - reserved;
            iov[i].iov_base = vec[i].iov_base;
            iov[i].iov_len = vec[i].iov_len;
            reserved += vec[i].iov_len;
        }
        const ssize_t got = ::readv(fd, iov, n);
        size_t left = got > 0 ? static_cast<size_t>(got) : 0;
        int used = 0;
        for (; used < n && left > 0; ++used) {
            vec[used].iov_len = std::min(vec[used].iov_len, left);
            left -= vec[used].iov_len;
        }
        evbuffer_commit_space(in, vec, used);
    }
    evbuffer_freeze(in, 0);
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
