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

// libevent 2.1 reads a socket at most 4096 bytes per readiness event (EVBUFFER_MAX_READ), each after an
// ioctl(FIONREAD): a 10 KB request took three wakeups, three ioctls, three reads and three writes upstream.
// Called from a read callback of a plain socket: when that read filled the cap, take what else has arrived
// with one readv, so the whole message is parsed and forwarded at once. Never grows `bev`'s input past
// `limit` (its read high watermark). EOF and errors are left for the bufferevent's next read to report.
void read_rest(bufferevent* bev, size_t limit);

// bufferevent_enable(EV_WRITE) registers the write event at once even with nothing to send: on a new
// connection that is two epoll_ctl and one wakeup for nothing, and direct writes may never need it. Call
// instead of enabling EV_WRITE: it is enabled the first time bytes are queued in `bev`'s output.
void enable_write_when_queued(bufferevent* bev);

}  // namespace edgeguard
