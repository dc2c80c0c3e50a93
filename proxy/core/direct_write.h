// Writing without registering for writability. A bufferevent adds its write event (an epoll_ctl) whenever
// bytes are appended and removes it (another epoll_ctl) once they are sent, i.e. twice per response and
// twice per upstream request. Most heads and small bodies fit in the socket buffer at once, so we stage
// them in a plain evbuffer and send them with one writev when nothing is queued; only what the kernel does
// not take goes through the bufferevent (and its write event, which keeps backpressure working).
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

namespace edgeguard {

// Moves everything in `staged` toward `bev`'s peer, preserving order. `direct` false (TLS) just appends.
void flush_staged(bufferevent* bev, evbuffer* staged, bool direct);

// bufferevent_enable(EV_WRITE) registers the write event at once even with nothing to send: on a new
// connection that is two epoll_ctl and one wakeup for nothing, and direct writes may never need it. Call
// instead of enabling EV_WRITE: it is enabled the first time bytes are queued in `bev`'s output.
void enable_write_when_queued(bufferevent* bev);

}  // namespace edgeguard
