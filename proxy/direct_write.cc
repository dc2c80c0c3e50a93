#include "proxy/direct_write.h"

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

}  // namespace edgeguard
