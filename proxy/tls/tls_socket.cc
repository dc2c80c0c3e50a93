#include "proxy/tls/tls_socket.h"

#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>

#include <algorithm>
#include <cerrno>

namespace edgeguard {

namespace {

// Plaintext per SSL_read: a whole TLS record (at most 16 KiB of plaintext) lands in one call.
constexpr size_t kReadChunk = 16 * 1024;
// Plaintext per SSL_write: one full TLS record.
constexpr size_t kWriteChunk = 16 * 1024;

bool unexpected_eof() {
    const unsigned long e = ERR_peek_error();
    return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
}

}  // namespace

bool TlsSocket::attach(bufferevent* bev, bufferevent_data_cb on_read, bufferevent_data_cb on_write,
                       bufferevent_event_cb on_event, void* arg) {
    detach();
    SSL* ssl = bufferevent_openssl_get_ssl(bev);
    const evutil_socket_t fd = bufferevent_getfd(bev);
    if (ssl == nullptr || fd < 0 || !SSL_is_init_finished(ssl)) return false;
    evbuffer* out = evbuffer_new();
    if (out == nullptr) return false;
    event_base* base = bufferevent_get_base(bev);
    if (event_assign(&read_event_, base, fd, EV_READ | EV_PERSIST, &TlsSocket::on_readable, this) != 0 ||
        event_assign(&write_event_, base, fd, EV_WRITE | EV_PERSIST, &TlsSocket::on_writable, this) != 0) {
        evbuffer_free(out);
        return false;
    }
    input_ = bufferevent_get_input(bev);
    input_cb_ = evbuffer_add_cb(input_, &TlsSocket::on_input_changed, this);
    if (input_cb_ == nullptr) {
        evbuffer_free(out);
        input_ = nullptr;
        return false;
    }
    // The bufferevent's own reading and writing stop for good; its read watermark callback goes with them.
    bufferevent_disable(bev, EV_READ | EV_WRITE);
    bufferevent_setwatermark(bev, EV_READ | EV_WRITE, 0, 0);
    bufferevent_setcb(bev, nullptr, nullptr, nullptr, nullptr);
    out_ = out;
    evbuffer_add_buffer(out_, bufferevent_get_output(bev));  // nothing is expected there; kept in order if so
    bev_ = bev;
    ssl_ = ssl;
    on_read_ = on_read;
    on_write_ = on_write;
    on_event_ = on_event;
    arg_ = arg;
    // A write that blocked is retried from the same (possibly moved) buffer; each call writes at most one
    // record. Read-ahead lets one socket read bring every record that is waiting instead of two reads
    // (header, then body) per record.
    SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_set_read_ahead(ssl_, 1);
    if (evbuffer_get_length(out_) != 0) write(out_);
    return true;
}

void TlsSocket::detach() {
    if (bev_ == nullptr) return;
    event_del(&read_event_);
    event_del(&write_event_);
    if (input_cb_ != nullptr) evbuffer_remove_cb_entry(input_, input_cb_);
    if (out_ != nullptr) evbuffer_free(out_);
    input_cb_ = nullptr;
    input_ = nullptr;
    out_ = nullptr;
    bev_ = nullptr;
    ssl_ = nullptr;
    wanted_ = read_registered_ = write_registered_ = false;
    read_wants_write_ = write_wants_read_ = write_blocked_ = eof_pending_ = false;
    retry_len_ = 0;
    failed_ = 0;
}

void TlsSocket::enable() {
    if (bev_ == nullptr) return;
    wanted_ = true;
    update_registration();
}

void TlsSocket::disable() {
    if (bev_ == nullptr) return;
    wanted_ = false;
    update_registration();
}

void TlsSocket::set_high_watermark(size_t limit) {
    high_watermark_ = limit;
    if (bev_ != nullptr) update_registration();
}

bool TlsSocket::below_watermark() const {
    return high_watermark_ == 0 || evbuffer_get_length(input_) < high_watermark_;
}

void TlsSocket::update_registration() {
    const bool reading = wanted_ && below_watermark();
    const bool want = reading || write_wants_read_;
    if (want != read_registered_) {
        if (want) {
            event_add(&read_event_, nullptr);
        } else {
            event_del(&read_event_);
        }
        read_registered_ = want;
    }
    // Records OpenSSL already pulled from the socket (read-ahead, or a read stopped at the watermark) never
    // make the socket readable again: run the read from the loop.
    if (reading && (eof_pending_ || SSL_has_pending(ssl_) == 1)) event_active(&read_event_, EV_READ, 1);
}

void TlsSocket::update_write_registration() {
    const bool want = write_blocked_ || read_wants_write_;
    if (want == write_registered_) return;
    if (want) {
        event_add(&write_event_, nullptr);
    } else {
        event_del(&write_event_);
    }
    write_registered_ = want;
}

// Appends and drains of the input: stop reading at the high watermark; once the owner drained it, resume,
// including records a read left in OpenSSL when it stopped at the watermark.
void TlsSocket::on_input_changed(evbuffer*, const evbuffer_cb_info* info, void* arg) {
    auto* self = static_cast<TlsSocket*>(arg);
    if (info->n_added == info->n_deleted || self->in_read_) return;
    self->update_registration();
}

TlsSocket::Io TlsSocket::read_available() {
    in_read_ = true;
    const Io result = read_records();
    in_read_ = false;
    // Stopped at the watermark or at kMaxRead with records left in OpenSSL: the drain that makes room, or
    // the next loop round, reads them.
    update_registration();
    return result;
}

TlsSocket::Io TlsSocket::read_records() {
    size_t total = 0;
    while (below_watermark() && total < kMaxRead) {
        size_t want = kReadChunk;
        if (high_watermark_ != 0) want = std::min(want, high_watermark_ - evbuffer_get_length(input_));
        evbuffer_iovec space;
        if (evbuffer_reserve_space(input_, static_cast<ev_ssize_t>(want), &space, 1) < 1) return Io::Error;
        ERR_clear_error();  // SSL_get_error reads the thread's queue, which other connections share
        const int n = SSL_read(ssl_, space.iov_base, static_cast<int>(std::min(space.iov_len, want)));
        if (n > 0) {
            space.iov_len = static_cast<size_t>(n);
            evbuffer_commit_space(input_, &space, 1);
            total += static_cast<size_t>(n);
            // Nothing buffered in OpenSSL: the socket had no more (or the read-ahead buffer was full, and
            // the socket stays readable). Stopping here saves a read that would only say EAGAIN.
            if (SSL_has_pending(ssl_) == 0) break;
            continue;
        }
        evbuffer_commit_space(input_, &space, 0);
        const int err = SSL_get_error(ssl_, n);
        Io result = Io::Blocked;
        if (err == SSL_ERROR_WANT_WRITE) {
            read_wants_write_ = true;
            update_write_registration();
        } else if (err == SSL_ERROR_ZERO_RETURN || (err == SSL_ERROR_SYSCALL && errno == 0) ||
                   (err == SSL_ERROR_SSL && unexpected_eof())) {
            result = Io::Eof;  // close_notify, or a client that just closed the socket
        } else if (err != SSL_ERROR_WANT_READ) {
            result = Io::Error;
        }
        ERR_clear_error();
        if (result == Io::Blocked) break;
        if (total == 0) return result;
        // Bytes came before the end: they are delivered first, the end is reported on the next round.
        eof_pending_ = true;
        event_active(&read_event_, EV_READ, 1);
        break;
    }
    return total != 0 ? Io::Progress : Io::Blocked;
}

void TlsSocket::write(evbuffer* staged) {
    if (bev_ == nullptr || evbuffer_get_length(staged) == 0) return;
    if (staged != out_) evbuffer_add_buffer(out_, staged);
    // Waiting for the socket (or OpenSSL waiting for a read): the write event sends it in order.
    if (failed_ != 0 || write_blocked_ || write_wants_read_) return;
    if (write_queued() == Io::Error) {
        failed_ = BEV_EVENT_WRITING | BEV_EVENT_ERROR;
        event_active(&write_event_, EV_WRITE, 1);
    }
}

TlsSocket::Io TlsSocket::write_queued() {
    while (evbuffer_get_length(out_) != 0) {
        const int n =
            retry_len_ != 0 ? retry_len_ : static_cast<int>(std::min(evbuffer_get_length(out_), kWriteChunk));
        const unsigned char* data = evbuffer_pullup(out_, n);
        if (data == nullptr) return Io::Error;
        ERR_clear_error();
        const int written = SSL_write(ssl_, data, n);
        if (written > 0) {
            evbuffer_drain(out_, static_cast<size_t>(written));
            retry_len_ = 0;
            continue;
        }
        retry_len_ = n;
        const int err = SSL_get_error(ssl_, written);
        ERR_clear_error();
        if (err == SSL_ERROR_WANT_WRITE) {
            write_blocked_ = true;
            update_write_registration();
            return Io::Blocked;
        }
        if (err == SSL_ERROR_WANT_READ) {
            write_wants_read_ = true;
            update_registration();
            return Io::Blocked;
        }
        return Io::Error;
    }
    write_blocked_ = false;
    update_write_registration();
    return Io::Progress;
}

void TlsSocket::fail(short what) {
    wanted_ = false;
    write_wants_read_ = false;
    read_wants_write_ = false;
    write_blocked_ = false;
    update_registration();
    update_write_registration();
    on_event_(bev_, what, arg_);  // may free the owner, and this object with it
}

// Output that waited for the socket moved: the owner hears of it once the queue fell to its low watermark.
void TlsSocket::notify_written(size_t queued_before) {
    const size_t now = queued();
    if (now < queued_before && now <= write_low_watermark_ && on_write_ != nullptr) on_write_(bev_, arg_);
}

void TlsSocket::on_readable(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<TlsSocket*>(arg);
    if (self->write_wants_read_) {
        // The owner may close inside notify_written, so reading what is there is left to the next round (not
        // while the write still waits for the peer, which would spin).
        self->write_wants_read_ = false;
        self->update_registration();
        const size_t before = self->queued();
        if (self->write_queued() == Io::Error) {
            self->fail(BEV_EVENT_WRITING | BEV_EVENT_ERROR);
            return;
        }
        if (!self->write_wants_read_ && self->wanted_) event_active(&self->read_event_, EV_READ, 1);
        self->notify_written(before);
        return;
    }
    if (!self->wanted_ || !self->below_watermark()) {
        self->update_registration();
        return;
    }
    if (self->eof_pending_) {
        self->eof_pending_ = false;
        self->fail(BEV_EVENT_READING | BEV_EVENT_EOF);
        return;
    }
    switch (self->read_available()) {
        case Io::Progress:
            self->on_read_(self->bev_, self->arg_);  // may free the owner, and this object with it
            return;
        case Io::Blocked:
            return;
        case Io::Eof:
            self->fail(BEV_EVENT_READING | BEV_EVENT_EOF);
            return;
        case Io::Error:
            self->fail(BEV_EVENT_READING | BEV_EVENT_ERROR);
            return;
    }
}

void TlsSocket::on_writable(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<TlsSocket*>(arg);
    if (self->failed_ != 0) {
        const short what = self->failed_;
        self->failed_ = 0;
        self->fail(what);
        return;
    }
    if (self->read_wants_write_) {
        self->read_wants_write_ = false;
        self->update_write_registration();
        if (self->wanted_) event_active(&self->read_event_, EV_READ, 1);  // the read runs again from the loop
    }
    if (!self->write_blocked_) return;
    self->write_blocked_ = false;
    const size_t before = self->queued();
    if (self->write_queued() == Io::Error) {
        self->fail(BEV_EVENT_WRITING | BEV_EVENT_ERROR);
        return;
    }
    self->notify_written(before);
}

}  // namespace edgeguard
