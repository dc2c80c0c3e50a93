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
    if (!spilled_ && small_.size() + len <= kSmall) {
        Piece* last = n_pieces_ != 0 ? &pieces_[n_pieces_ - 1] : nullptr;
        if (last != nullptr && last->lent == nullptr) {
            last->len += len;  // runs of small_ are contiguous: a piece after a lent one starts a new run
        } else if (n_pieces_ < kMaxPieces) {
            pieces_[n_pieces_++] = Piece{nullptr, small_.size(), len};
        } else {
            spill(data, len);
            return;
        }
        small_.append(data, len);
        return;
    }
    spill(data, len);
}

void WriteStage::spill(const char* data, size_t len) {
    evbuffer_add(large_, data, len);
    spilled_ = true;
}

void WriteStage::lend(const char* data, size_t len) {
    if (len == 0) return;
    if (spilled_ || n_pieces_ == kMaxPieces) {
        spill(data, len);  // behind copied bytes: copied too, to keep the order
        return;
    }
    pieces_[n_pieces_++] = Piece{data, 0, len};
    ++lent_;
}

void WriteStage::keep_lent() {
    if (lent_ == 0) return;
    // Everything staged so far goes in front of large_, copied, in order.
    for (int i = n_pieces_ - 1; i >= 0; --i) evbuffer_prepend(large_, piece_data(pieces_[i]), pieces_[i].len);
    reset_pieces();
    spilled_ = true;
}

void WriteStage::reset_pieces() {
    small_.clear();
    n_pieces_ = 0;
    lent_ = 0;
}

void WriteStage::clear() {
    reset_pieces();
    if (spilled_) evbuffer_drain(large_, evbuffer_get_length(large_));
    spilled_ = false;
}

void WriteStage::flush(bufferevent* bev, bool direct) {
    const size_t large_len = spilled_ ? evbuffer_get_length(large_) : 0;
    if (n_pieces_ == 0 && large_len == 0) return;
    evbuffer* out = bufferevent_get_output(bev);
    size_t sent = 0;
    if (direct && evbuffer_get_length(out) == 0) {
        const evutil_socket_t fd = socket_of(bev);
        constexpr int kMaxVecs = 16;
        static_assert(kMaxPieces < kMaxVecs);
        iovec iov[kMaxVecs];
        int n = 0;
        for (int i = 0; i < n_pieces_; ++i)
            iov[n++] = iovec{const_cast<char*>(piece_data(pieces_[i])), pieces_[i].len};
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
    // What the kernel did not take is copied into the output (lent bytes may be drained once we return).
    size_t skip = sent;
    for (int i = 0; i < n_pieces_; ++i) {
        const size_t from = std::min(skip, pieces_[i].len);
        skip -= from;
        if (from < pieces_[i].len) evbuffer_add(out, piece_data(pieces_[i]) + from, pieces_[i].len - from);
    }
    reset_pieces();
    if (large_len != 0) {
        evbuffer_drain(large_, skip);
        evbuffer_add_buffer(out, large_);
    }
    spilled_ = false;
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
