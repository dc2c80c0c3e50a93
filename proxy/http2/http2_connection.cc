#include "proxy/http2/http2_connection.h"

#include <unistd.h>

#include <event2/bufferevent_ssl.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "proxy/core/direct_write.h"
#include "proxy/core/worker.h"
#include "proxy/http2/http2_stream.h"
#include "proxy/tls/tls_bufferevent.h"

namespace edgeguard {

namespace {

// Each DATA frame sent earns two WINDOW_UPDATEs (its stream's and the connection's), up to a cap so a long
// download cannot bank an allowance for a later flood.
constexpr uint32_t kWindowUpdatesPerDataFrame = 2;
constexpr uint32_t kMaxWindowUpdateCredit = 4096;

Http2Connection* self_of(void* user) { return static_cast<Http2Connection*>(user); }

// A redirect-only listener answers every request with 308 and so can never open a tunnel.
bool websocket_enabled(const ListenerConfig& listener) {
    return listener.redirect_https_to.empty();
}

Http2Stream* stream_of(nghttp2_session* session, int32_t stream_id) {
    return static_cast<Http2Stream*>(nghttp2_session_get_stream_user_data(session, stream_id));
}

// The connection-level receive window: room for several streams' bodies in flight at once; each stream's
// own window (SETTINGS_INITIAL_WINDOW_SIZE) is limits.buffer_per_direction.
constexpr int32_t kConnectionWindow = 16 * 1024 * 1024;
// Finished streams kept for reuse beyond those open: enough for a browser's burst without holding memory
// for a connection that once had many.
constexpr uint32_t kFreeStreamsKept = 16;
// The timer's tick while streams are open: request and zero-window deadlines are checked this often.
constexpr Millis kTick{250};
// After the GOAWAY: how long unread client bytes are read and dropped before the socket closes.
constexpr Millis kLingerTime{2'000};
constexpr size_t kLingerMaxBytes = 1 << 20;

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Setup and teardown
// ---------------------------------------------------------------------------------------------------------

Http2Connection::Http2Connection(Worker& worker, bufferevent* bev, bool plain, size_t listener_index,
                                 ConnectionLimits::Ticket ticket)
    : worker_(worker), listener_index_(listener_index), bev_(bev), plain_(plain), ticket_(ticket) {
    timer_ready_ = timer_.init(worker_.base(), &Http2Connection::on_timer_fired, this);
    stage_ = evbuffer_new();
    flush_event_ready_ =
        event_assign(&flush_event_, worker_.base(), -1, 0, &Http2Connection::on_flush_event, this) == 0;
    peer_len_ = sizeof peer_;
    if (getpeername(bufferevent_getfd(bev_), reinterpret_cast<sockaddr*>(&peer_), &peer_len_) != 0) peer_len_ = 0;
}

Http2Connection::~Http2Connection() {
    while (streams_ != nullptr) {
        Http2Stream* s = streams_;
        streams_ = s->next;
        delete s;
    }
    while (free_streams_ != nullptr) {
        Http2Stream* s = free_streams_;
        free_streams_ = s->next;
        delete s;
    }
    if (session_ != nullptr) nghttp2_session_del(session_);
    if (stage_ != nullptr) evbuffer_free(stage_);
    if (flush_event_ready_) event_del(&flush_event_);
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    timer_.stop();
    detach_socket();
    if (bev_ != nullptr) bufferevent_free(bev_);
}

void Http2Connection::adopt(Worker& worker, bufferevent* bev, bool plain, size_t listener_index,
                            ConnectionLimits::Ticket ticket, DownstreamConnection* replacing) {
    auto* conn = new Http2Connection(worker, bev, plain, listener_index, ticket);
    worker.connection_replaced(replacing, conn);
    if (!conn->start()) conn->close();
}

bool Http2Connection::start() {
    snapshot_ = worker_.current_snapshot();
    listener_ = worker_.listener_config(*snapshot_, listener_index_);
    if (listener_ == nullptr || !timer_ready_ || peer_len_ == 0 || stage_ == nullptr || !flush_event_ready_)
        return false;
    const Config& cfg = *snapshot_->config;
    const Http2Config& h2 = cfg.http2;

    nghttp2_option* option = nullptr;
    if (nghttp2_option_new(&option) != 0) return false;
    // Window updates are ours to send: only for bytes an exchange took (back-pressure).
    nghttp2_option_set_no_auto_window_update(option, 1);
    nghttp2_option_set_no_closed_streams(option, 1);
    nghttp2_option_set_max_continuations(option, h2.max_continuations);
    nghttp2_option_set_stream_reset_rate_limit(option, h2.stream_resets_burst,
                                               static_cast<uint64_t>(std::max(1.0, h2.stream_resets_per_second)));
    const int rv = nghttp2_session_server_new2(&session_, session_callbacks(), this, option);
    nghttp2_option_del(option);
    if (rv != 0) return false;

    const nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, h2.max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, cfg.limits.buffer_per_direction},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, h2.max_header_list_bytes},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        // RFC 9218: no RFC 7540 priority tree to build or to flood.
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
        // RFC 8441: WebSocket over extended CONNECT, where the listener's requests reach routes (as HTTP/1.1
        // upgrade requests do); nghttp2 accepts :protocol only once this was sent. Last: left off otherwise.
        {NGHTTP2_SETTINGS_ENABLE_CONNECT_PROTOCOL, 1},
    };
    const size_t setting_count = std::size(settings) - (websocket_enabled(*listener_) ? 0 : 1);
    if (nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, setting_count) != 0) return false;
    if (nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow) != 0) return false;

    const auto now = std::chrono::steady_clock::now();
    resets_.reset(h2.stream_resets_burst, h2.stream_resets_per_second, now);
    control_frames_.reset(h2.control_frames_burst, h2.control_frames_per_second, now);
    idle_since_ = now;

    if (!attach_socket()) return false;
    set_read_limit(cfg.limits.buffer_per_direction);
    set_reading(true);
    if (MetricsShard* m = worker_.metrics_shard()) m->http2_connection_opened();
    Entry entry(this);
    arm_timer();
    // The h2c preface, or bytes a TLS client sent right after its handshake, may be waiting already.
    if (evbuffer_get_length(bufferevent_get_input(bev_)) != 0) {
        on_read(bev_, this);
    } else {
        flush();  // our SETTINGS go out at once
    }
    return true;
}

void Http2Connection::release() {
    if (--depth_ == 0 && closed_) delete this;
}

void Http2Connection::close() {
    if (closed_) return;
    closed_ = true;
    flush_requests();  // gives back the holds (the exchanges are cancelled below)
    timer_.stop();
    const bool flush_was_scheduled = flush_scheduled_;
    if (flush_scheduled_) {
        event_del(&flush_event_);
        flush_scheduled_ = false;
    }
    // Streams still open end with the connection: their exchanges are cancelled and their lines logged.
    for (Http2Stream* s = streams_; s != nullptr;) {
        Http2Stream* next = s->next;
        if (s->open()) s->on_closed(NGHTTP2_CANCEL);
        s = next;
    }
    if (ConnectionLimits* limits = worker_.connection_limits()) limits->release(ticket_);
    if (bev_ != nullptr) {
        detach_socket();
        bufferevent_free(bev_);
        bev_ = nullptr;
    }
    worker_.connection_closed(this);
    if (flush_was_scheduled) --depth_;  // the hold schedule_flush took
    if (depth_ == 0) delete this;
}

void Http2Connection::begin_drain() {
    Entry entry(this);
    if (closed_ || draining_) return;
    draining_ = true;
    // RFC 9113 §6.8: streams already started finish; new ones are refused.
    nghttp2_submit_shutdown_notice(session_);
    nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(session_),
                          NGHTTP2_NO_ERROR, nullptr, 0);
    if (MetricsShard* m = worker_.metrics_shard()) m->http2_goaway(Http2Goaway::Drain);
    flush();
}

void Http2Connection::go_away(uint32_t error, Http2Goaway why) {
    if (closing_ || closed_) return;
    if (MetricsShard* m = worker_.metrics_shard()) m->http2_goaway(why);
    nghttp2_session_terminate_session(session_, error);
    closing_ = true;
    set_reading(false);
}

// ---------------------------------------------------------------------------------------------------------
// Socket events
// ---------------------------------------------------------------------------------------------------------

void Http2Connection::on_read(bufferevent*, void* arg) {
    auto* self = static_cast<Http2Connection*>(arg);
    Entry entry(self);
    if (self->closed_) return;
    evbuffer* in = bufferevent_get_input(self->bev_);
    if (self->lingering_) {
        self->lingered_bytes_ += evbuffer_get_length(in);
        evbuffer_drain(in, evbuffer_get_length(in));
        if (self->lingered_bytes_ > kLingerMaxBytes) self->close();
        return;
    }
    if (self->closing_) return;
    while (!self->closed_ && !self->closing_) {
        evbuffer_iovec vec;
        if (evbuffer_peek(in, -1, nullptr, &vec, 1) <= 0 || vec.iov_len == 0) break;
        const ssize_t n = nghttp2_session_mem_recv(self->session_, static_cast<const uint8_t*>(vec.iov_base),
                                                   vec.iov_len);
        if (n < 0) {
            // A fatal error nghttp2 does not answer itself: too many CONTINUATION frames or queued frames the
            // client never reads (floods), a bad preface, or a broken session. It still gets its GOAWAY.
            const bool flood = n == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS || n == NGHTTP2_ERR_FLOODED;
            self->go_away(flood ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR,
                          flood ? Http2Goaway::ControlFrames : Http2Goaway::Protocol);
            break;
        }
        evbuffer_drain(in, static_cast<size_t>(n));
    }
    self->flush_requests();
    if (self->closed_) return;
    self->flush();
}

void Http2Connection::flush_request_later(Http2Stream& stream) {
    if (stream.flush_pending) return;
    stream.flush_pending = true;
    stream.hold();  // released in flush_requests
    stream.next_flush = request_flushes_;
    request_flushes_ = &stream;
}

void Http2Connection::flush_requests() {
    while (request_flushes_ != nullptr) {
        Http2Stream* s = request_flushes_;
        request_flushes_ = s->next_flush;
        s->next_flush = nullptr;
        s->flush_pending = false;
        if (s->open()) s->flush_request();
        s->release();
    }
}

void Http2Connection::on_write(bufferevent*, void* arg) {
    auto* self = static_cast<Http2Connection*>(arg);
    Entry entry(self);
    if (self->closed_ || self->lingering_) return;
    if (self->closing_) {
        if (self->queued_output() == 0) self->linger();  // the last frames are out
        return;
    }
    self->output_full_since_ = {};
    self->flush(true);
}

void Http2Connection::on_event(bufferevent*, short events, void* arg) {
    auto* self = static_cast<Http2Connection*>(arg);
    if (events & BEV_EVENT_CONNECTED) return;
    Entry entry(self);
    self->close();  // EOF or an error: the client is gone, and with it every stream
}

bool Http2Connection::output_has_room() const {
    return bev_ != nullptr &&
           queued_output() + evbuffer_get_length(stage_) < snapshot_->config->limits.buffer_per_direction;
}

bool Http2Connection::attach_socket() {
    if (!plain_) {
        if (!tls_.attach(bev_, &Http2Connection::on_read, &Http2Connection::on_write,
                         &Http2Connection::on_event, this))
            return false;
        tls_.set_write_low_watermark(snapshot_->config->limits.buffer_per_direction / 2);
        return true;
    }
    if (!reader_.attach(bev_, true, &Http2Connection::on_read, &Http2Connection::on_write,
                        &Http2Connection::on_event, this))
        return false;
    bufferevent_setwatermark(bev_, EV_WRITE, snapshot_->config->limits.buffer_per_direction / 2, 0);
    bufferevent_enable(bev_, EV_WRITE);
    return true;
}

void Http2Connection::detach_socket() {
    reader_.detach();
    tls_.detach();
}

void Http2Connection::set_reading(bool on) {
    if (!plain_) {
        on ? tls_.enable() : tls_.disable();
    } else {
        on ? reader_.enable() : reader_.disable();
    }
}

void Http2Connection::set_read_limit(size_t limit) {
    if (!plain_) {
        tls_.set_high_watermark(limit);
    } else {
        reader_.set_high_watermark(limit);
    }
}

size_t Http2Connection::queued_output() const {
    if (!plain_) return tls_.queued();
    return evbuffer_get_length(bufferevent_get_output(bev_));
}

// Every frame of one flush leaves in one write: one writev on a plain socket; on TLS full records, since
// TlsSocket joins the frame headers and moved body segments into one SSL_write per 16 KiB.
void Http2Connection::send_staged() {
    if (!plain_) {
        tls_.write(stage_);
        return;
    }
    flush_staged(bev_, stage_, true);
}

void Http2Connection::wait_for_output_room(Http2Stream& stream) {
    if (stream.waiting_for_room) return;
    stream.waiting_for_room = true;
    stream.next_waiting = waiting_for_room_;
    waiting_for_room_ = &stream;
}

// Streams that stopped reading their upstream for lack of room read again; what they produce is sent by
// the caller's next round. Each is asked once per round (it registers again if it is still full).
void Http2Connection::resume_waiting_streams() {
    Http2Stream* list = waiting_for_room_;
    waiting_for_room_ = nullptr;
    while (list != nullptr) {
        Http2Stream* s = list;
        list = s->next_waiting;
        s->next_waiting = nullptr;
        s->waiting_for_room = false;
        s->hold();
        s->output_drained();
        s->release();
    }
}

// Runs nghttp2's send loop into the socket's output while it has room (streams that waited for room produce
// more between rounds), then closes when the session is over.
void Http2Connection::flush(bool socket_drained) {
    if (closed_ || in_flush_ || lingering_) return;
    Entry entry(this);
    in_flush_ = true;
    for (int round = 0; round < 16 && !closed_; ++round) {
        const size_t staged = evbuffer_get_length(stage_);
        if (nghttp2_session_send(session_) != 0) {
            in_flush_ = false;
            close();
            return;
        }
        // Waiting streams read on only when bytes left for the client (or the socket drained): with every
        // window shut nothing moves, and waking them would spin.
        const bool progressed = evbuffer_get_length(stage_) != staged || socket_drained;
        socket_drained = false;
        if (waiting_for_room_ == nullptr || !output_has_room() || !progressed) break;
        resume_waiting_streams();
    }
    in_flush_ = false;
    if (closed_) return;
    const bool wrote = evbuffer_get_length(stage_) != 0;
    send_staged();
    // The socket took the bytes at once, so no write event will report it: streams that stopped for room
    // read on from the loop, as after a write event (only after bytes left, so a shut window cannot spin).
    if (wrote && waiting_for_room_ != nullptr && output_has_room()) {
        socket_drained_ = true;
        schedule_flush();
    }
    if (!output_has_room() && output_full_since_ == std::chrono::steady_clock::time_point{})
        output_full_since_ = std::chrono::steady_clock::now();
    const bool over = closing_ || (nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0);
    if (over) close_when_flushed();
}

void Http2Connection::schedule_flush() {
    if (closed_ || flush_scheduled_) return;
    flush_scheduled_ = true;
    hold();  // the connection outlives the pending event
    event_active(&flush_event_, 0, 0);
}

void Http2Connection::on_flush_event(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Http2Connection*>(arg);
    self->flush_scheduled_ = false;
    self->flush(std::exchange(self->socket_drained_, false));
    self->release();
}

// The last frames (a GOAWAY) leave before the socket closes.
void Http2Connection::close_when_flushed() {
    if (lingering_) return;
    closing_ = true;
    set_reading(false);
    if (bev_ == nullptr) {
        close();
        return;
    }
    if (queued_output() == 0) {
        linger();
        return;
    }
    // on_write (which lingers now that closing_ is set) once everything is written.
    if (!plain_) {
        tls_.set_write_low_watermark(0);
    } else {
        bufferevent_setwatermark(bev_, EV_WRITE, 0, 0);
    }
}

// The GOAWAY is out: half-close and read (and drop) what the client still sends for a moment before closing,
// so that the close is no reset that could destroy the GOAWAY before the client read it (as nginx lingers).
void Http2Connection::linger() {
    lingering_ = true;
    shutdown_write(bev_);
    evbuffer* in = bufferevent_get_input(bev_);
    evbuffer_drain(in, evbuffer_get_length(in));
    set_read_limit(0);
    set_reading(true);
    timer_.arm(kLingerTime);
}

// ---------------------------------------------------------------------------------------------------------
// Timers: idle connection, request deadlines, closed windows, an unread socket
// ---------------------------------------------------------------------------------------------------------

void Http2Connection::arm_timer() {
    if (closed_) return;
    const Http2Config& h2 = snapshot_->config->http2;
    timer_.arm(open_streams_ == 0 && output_full_since_ == std::chrono::steady_clock::time_point{}
                   ? h2.idle_timeout
                   : std::min<Millis>(kTick, h2.zero_window_timeout));
}

void Http2Connection::on_timer_fired(void* arg) {
    auto* self = static_cast<Http2Connection*>(arg);
    Entry entry(self);
    self->on_timer();
}

void Http2Connection::on_timer() {
    if (closed_) return;
    const auto now = std::chrono::steady_clock::now();
    const Http2Config& h2 = snapshot_->config->http2;
    if (lingering_) {
        close();  // the linger ended
        return;
    }
    if (closing_) {
        // The GOAWAY still waits in the output: the client gets kLingerTime to read it, then the socket closes.
        if (closing_since_ == std::chrono::steady_clock::time_point{}) closing_since_ = now;
        if (now - closing_since_ >= kLingerTime) {
            close();
        } else {
            timer_.arm(kTick);
        }
        return;
    }
    if (output_full_since_ != std::chrono::steady_clock::time_point{} && now - output_full_since_ >= h2.zero_window_timeout) {
        // The client stopped reading its socket: nothing more can reach it.
        if (MetricsShard* m = worker_.metrics_shard()) m->http2_goaway(Http2Goaway::Stalled);
        close();
        return;
    }
    if (open_streams_ == 0) {
        if (now - idle_since_ >= h2.idle_timeout) {
            go_away(NGHTTP2_NO_ERROR, Http2Goaway::Idle);
            flush();
            if (!closed_) timer_.arm(Millis{1'000});  // then close even if the GOAWAY is never read
            return;
        }
    } else {
        bool any_stalled = false;
        for (Http2Stream* s = streams_; s != nullptr;) {
            Http2Stream* next = s->next;  // a stream may finish (and move lists) inside a check
            if (s->open()) {
                if (s->reset_if_stalled(now, h2.zero_window_timeout)) {
                    any_stalled = true;
                } else {
                    s->check_request_deadlines(now);  // last: a tunnel's drain may end (and free) the stream
                }
            }
            s = next;
        }
        if (any_stalled && nghttp2_session_get_remote_window_size(session_) <= 0) {
            // The connection's own window is shut: no stream on it can make progress.
            go_away(NGHTTP2_FLOW_CONTROL_ERROR, Http2Goaway::Stalled);
        }
        flush();
    }
    arm_timer();
}

// ---------------------------------------------------------------------------------------------------------
// Abuse budgets
// ---------------------------------------------------------------------------------------------------------

bool Http2Connection::take_reset_budget() {
    if (resets_.take(std::chrono::steady_clock::now())) return true;
    go_away(NGHTTP2_ENHANCE_YOUR_CALM, Http2Goaway::StreamResets);
    return false;
}

bool Http2Connection::take_control_budget() {
    if (control_frames_.take(std::chrono::steady_clock::now())) return true;
    go_away(NGHTTP2_ENHANCE_YOUR_CALM, Http2Goaway::ControlFrames);
    return false;
}

bool Http2Connection::take_window_update_budget() {
    if (window_update_credit_ > 0) {
        --window_update_credit_;
        return true;
    }
    return take_control_budget();
}

// ---------------------------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------------------------

Http2Stream* Http2Connection::new_stream() {
    Http2Stream* s = free_streams_;
    if (s != nullptr) {
        free_streams_ = s->next;
        --free_count_;
    } else {
        s = new Http2Stream(*this, reinterpret_cast<const sockaddr*>(&peer_), peer_len_);
        if (!s->ready()) {  // out of memory for its buffers: the stream is refused, the connection lives on
            delete s;
            return nullptr;
        }
    }
    s->prev = nullptr;
    s->next = streams_;
    if (streams_ != nullptr) streams_->prev = s;
    streams_ = s;
    if (open_streams_++ == 0) arm_timer();  // from the idle timeout to the tick that checks deadlines
    return s;
}

void Http2Connection::stream_finished(Http2Stream& s) {
    if (s.prev != nullptr) s.prev->next = s.next;
    if (s.next != nullptr) s.next->prev = s.prev;
    if (streams_ == &s) streams_ = s.next;
    if (s.waiting_for_room) {
        for (Http2Stream** p = &waiting_for_room_; *p != nullptr; p = &(*p)->next_waiting) {
            if (*p == &s) {
                *p = s.next_waiting;
                break;
            }
        }
        s.waiting_for_room = false;
        s.next_waiting = nullptr;
    }
    --open_streams_;
    if (open_streams_ == 0) {
        idle_since_ = std::chrono::steady_clock::now();
        if (!closed_) arm_timer();
        // Draining: the last stream in flight is done, the GOAWAY went out before it.
        if (draining_ && !closed_ && !in_flush_) close_when_flushed();
    }
    if (free_count_ >= kFreeStreamsKept) {
        delete &s;
        return;
    }
    s.prev = nullptr;
    s.next = free_streams_;
    free_streams_ = &s;
    ++free_count_;
}

// ---------------------------------------------------------------------------------------------------------
// nghttp2 callbacks
// ---------------------------------------------------------------------------------------------------------

ssize_t Http2Connection::send_callback(nghttp2_session*, const uint8_t* data, size_t length, int, void* user) {
    Http2Connection* self = self_of(user);
    if (self->bev_ == nullptr) return NGHTTP2_ERR_CALLBACK_FAILURE;
    // Frames stop here while the client is not reading: nghttp2 keeps them queued (bounded by our limits).
    if (!self->output_has_room()) return NGHTTP2_ERR_WOULDBLOCK;
    evbuffer_add(self->stage_, data, length);
    return static_cast<ssize_t>(length);
}

int Http2Connection::send_data_callback(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                        size_t length, nghttp2_data_source* source, void* user) {
    Http2Connection* self = self_of(user);
    if (self->bev_ == nullptr) return NGHTTP2_ERR_CALLBACK_FAILURE;
    // Never refused: the bytes already sit in the stream's response buffer (bounded by response_room), and
    // moving them here costs no memory; nghttp2 1.52 spins when a no-copy DATA frame is refused.
    evbuffer_add(self->stage_, framehd, 9);
    static_cast<Http2Stream*>(source->ptr)->send_body(self->stage_, length);
    if (length > 0) {
        self->window_update_credit_ =
            std::min(self->window_update_credit_ + kWindowUpdatesPerDataFrame, kMaxWindowUpdateCredit);
    }
    (void)frame;
    return 0;
}

int Http2Connection::on_begin_headers(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    Http2Connection* self = self_of(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    // Each stream runs under the snapshot current when it starts, like each HTTP/1.1 request.
    self->snapshot_ = self->worker_.current_snapshot();
    const ListenerConfig* listener = self->worker_.listener_config(*self->snapshot_, self->listener_index_);
    if (listener == nullptr) {
        self->go_away(NGHTTP2_NO_ERROR, Http2Goaway::Drain);  // the listener is no longer configured
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    self->listener_ = listener;
    Http2Stream* s = self->new_stream();
    if (s == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;  // nghttp2 resets the stream
    s->begin(frame->hd.stream_id);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, s);
    return 0;
}

int Http2Connection::on_header(nghttp2_session* session, const nghttp2_frame* frame, const uint8_t* name,
                               size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Http2Stream* s = stream_of(session, frame->hd.stream_id);
    if (s == nullptr) return 0;
    s->on_field({reinterpret_cast<const char*>(name), namelen}, {reinterpret_cast<const char*>(value), valuelen});
    return 0;
}

int Http2Connection::on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void*) {
    const bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    switch (frame->hd.type) {
        case NGHTTP2_HEADERS: {
            Http2Stream* s = stream_of(session, frame->hd.stream_id);
            if (s == nullptr) return 0;
            if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
                s->on_head_complete(end_stream);
            } else if (end_stream) {
                s->on_body_end();  // trailers end the body; their fields were dropped
            }
            return 0;
        }
        case NGHTTP2_DATA: {
            if (!end_stream) return 0;
            if (Http2Stream* s = stream_of(session, frame->hd.stream_id)) s->on_body_end();
            return 0;
        }
        default:
            return 0;
    }
}

// Every frame header, before nghttp2 acts on (or silently drops) the frame: what carries no request costs a
// token of its budget.
int Http2Connection::on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    Http2Connection* self = self_of(user);
    switch (hd->type) {
        case NGHTTP2_RST_STREAM:
            self->take_reset_budget();
            return 0;
        case NGHTTP2_SETTINGS:
        case NGHTTP2_PING:
            if ((hd->flags & NGHTTP2_FLAG_ACK) == 0) self->take_control_budget();
            return 0;
        case NGHTTP2_PRIORITY:
            self->take_control_budget();
            return 0;
        case NGHTTP2_WINDOW_UPDATE:
            self->take_window_update_budget();
            return 0;
        case NGHTTP2_DATA:
            if (hd->length == 0 && (hd->flags & NGHTTP2_FLAG_END_STREAM) == 0) self->take_control_budget();
            return 0;
        default:
            return 0;
    }
}

// A frame nghttp2 refused (a stream over the concurrency limit, a malformed request): its stream is reset,
// which costs the client nothing and us a stream's work, so it counts against the reset budget.
int Http2Connection::on_invalid_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, int error,
                                           void* user) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    // Its access-log line says why (a CONNECT without :path or :scheme, :protocol where not offered...).
    if (Http2Stream* s = stream_of(session, frame->hd.stream_id)) s->on_malformed(nghttp2_strerror(error));
    self_of(user)->take_reset_budget();
    return 0;
}

int Http2Connection::on_data_chunk_recv(nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
                                        size_t len, void*) {
    Http2Stream* s = stream_of(session, stream_id);
    if (s == nullptr) {
        nghttp2_session_consume_connection(session, len);
        return 0;
    }
    s->on_body(data, len);
    return 0;
}

int Http2Connection::on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user) {
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
        if (Http2Stream* s = stream_of(session, frame->hd.stream_id)) s->response_complete_sent();
        return 0;
    }
    // A GOAWAY nghttp2 sent on its own (a protocol error, its CONTINUATION or reset limits) ends the
    // connection as ours do.
    Http2Connection* self = self_of(user);
    if (frame->hd.type == NGHTTP2_GOAWAY && !self->closing_ && !self->draining_ &&
        frame->goaway.error_code != NGHTTP2_NO_ERROR) {
        if (MetricsShard* m = self->worker_.metrics_shard()) m->http2_goaway(Http2Goaway::Protocol);
        self->closing_ = true;
    }
    return 0;
}

int Http2Connection::on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code, void*) {
    Http2Stream* s = stream_of(session, stream_id);
    if (s == nullptr) return 0;
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    s->on_closed(error_code);
    return 0;
}

const nghttp2_session_callbacks* Http2Connection::session_callbacks() {
    static nghttp2_session_callbacks* callbacks = [] {
        nghttp2_session_callbacks* cb = nullptr;
        nghttp2_session_callbacks_new(&cb);
        nghttp2_session_callbacks_set_send_callback(cb, &Http2Connection::send_callback);
        nghttp2_session_callbacks_set_send_data_callback(cb, &Http2Connection::send_data_callback);
        nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &Http2Connection::on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cb, &Http2Connection::on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &Http2Connection::on_frame_recv);
        nghttp2_session_callbacks_set_on_begin_frame_callback(cb, &Http2Connection::on_begin_frame);
        nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(cb, &Http2Connection::on_invalid_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &Http2Connection::on_data_chunk_recv);
        nghttp2_session_callbacks_set_on_frame_send_callback(cb, &Http2Connection::on_frame_send);
        nghttp2_session_callbacks_set_on_stream_close_callback(cb, &Http2Connection::on_stream_close);
        return cb;
    }();
    return callbacks;
}

}  // namespace edgeguard
