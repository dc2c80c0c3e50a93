#include "proxy/core/direct_write.h"

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
