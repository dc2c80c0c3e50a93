// A client's TLS connection after its handshake, read and written with SSL_read/SSL_write straight on the
// socket instead of through bufferevent_openssl.
//
// bufferevent_openssl adds its write event whenever bytes are appended to its output and removes it once they
// are written (two epoll_ctl per flush), and reads 4 KB per SSL_read with one socket read per TLS record
// header and another per record body. This class reads with OpenSSL's read-ahead (one socket read brings
// every record that is waiting), decrypts straight into the bufferevent's input buffer, writes with SSL_write
// at once and registers for writability only when the socket did not take everything (SSL_ERROR_WANT_WRITE).
//
// The bufferevent stays the owner of the socket and the SSL (BEV_OPT_CLOSE_ON_FREE) and keeps its input
// buffer, so bytes it already decrypted are read first and everything that asks the bufferevent about its
// connection (is_tls_bufferevent, shutdown_write, the fd) keeps working; its own events are disabled for
// good. The callbacks have bufferevent signatures and semantics, so an owner written for SocketReader and a
// bufferevent's write callback works unchanged: `on_read` after bytes were appended to the input, `on_write`
// when queued output fell to the write low watermark after waiting for the socket, and `on_event` once with
// BEV_EVENT_READING|BEV_EVENT_EOF (close_notify or an unclean close, which HTTP/2 framing tells apart) or
// BEV_EVENT_ERROR, reading disabled, from the event loop (never from inside write()).
#pragma once

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <openssl/ssl.h>

#include <cstddef>

namespace edgeguard {

class TlsSocket {
  public:
    TlsSocket() = default;
    ~TlsSocket() { detach(); }
    TlsSocket(const TlsSocket&) = delete;
    TlsSocket& operator=(const TlsSocket&) = delete;

    // Takes over `bev`, a TLS bufferevent whose handshake completed. Reading starts disabled. False when
    // `bev` is not such a bufferevent or the events cannot be set up (the bufferevent is then left as it
    // was).
    bool attach(bufferevent* bev, bufferevent_data_cb on_read, bufferevent_data_cb on_write,
                bufferevent_event_cb on_event, void* arg);
    // Must run before the bufferevent is freed (the destructor does it too). Unwritten output is dropped.
    void detach();

    // Reading is wanted; it actually happens while the input holds less than the high watermark.
    void enable();
    void disable();
    // 0: no limit. Beyond it bytes stay in the socket (or in OpenSSL's buffer) until the input is drained.
    void set_high_watermark(size_t limit);
    void set_write_low_watermark(size_t limit) { write_low_watermark_ = limit; }

    // Moves everything in `staged` toward the peer: written now as far as the socket takes it, the rest
    // queued and written when the socket is writable. A write error is reported through on_event from the
    // loop.
    void write(evbuffer* staged);
    // Bytes given to write() that the socket has not taken yet.
    size_t queued() const { return out_ == nullptr ? 0 : evbuffer_get_length(out_); }

    // The most plaintext one readiness event moves into the input, so one busy connection cannot starve the
    // others on its worker.
    static constexpr size_t kMaxRead = 256 * 1024;

  private:
    enum class Io { Progress, Blocked, Eof, Error };

    static void on_readable(evutil_socket_t fd, short what, void* arg);
    static void on_writable(evutil_socket_t fd, short what, void* arg);
    static void on_input_changed(evbuffer* buf, const evbuffer_cb_info* info, void* arg);
    Io read_available();
    Io read_records();
    Io write_queued();
    bool below_watermark() const;
    void update_registration();
    void update_write_registration();
    // Reading stops and on_event runs with `what`; the owner may free this object inside.
    void fail(short what);
    // After output that waited for the socket was written: on_write once the queue fell to the low watermark.
    // The owner may free this object inside: nothing may follow the call.
    void notify_written(size_t queued_before);

    bufferevent* bev_ = nullptr;
    SSL* ssl_ = nullptr;
    evbuffer* input_ = nullptr;
    evbuffer* out_ = nullptr;
    evbuffer_cb_entry* input_cb_ = nullptr;
    event read_event_{};
    event write_event_{};
    bufferevent_data_cb on_read_ = nullptr;
    bufferevent_data_cb on_write_ = nullptr;
    bufferevent_event_cb on_event_ = nullptr;
    void* arg_ = nullptr;
    size_t high_watermark_ = 0;
    size_t write_low_watermark_ = 0;
    int retry_len_ = 0;    // an SSL_write that blocked must be retried with the same length
    short failed_ = 0;     // a write failed: reported from the write event
    bool wanted_ = false;  // the owner wants to read
    bool read_registered_ = false;
    bool write_registered_ = false;
    bool write_blocked_ = false;     // SSL_write said WANT_WRITE: the write event sends the rest
    bool read_wants_write_ = false;  // SSL_read needs the socket writable (a KeyUpdate answer did not fit)
    bool eof_pending_ = false;       // the end came after bytes that were delivered first
    bool in_read_ = false;           // our own appends to the input are not the owner's drains
    bool write_wants_read_ = false;  // SSL_write needs the socket readable
};

}  // namespace edgeguard
