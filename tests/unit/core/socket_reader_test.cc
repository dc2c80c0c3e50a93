// SocketReader over real sockets and a real libevent loop: what a read callback sees (how much per
// wakeup), the read high watermark as backpressure, and EOF / errors reported as a socket bufferevent
// reports them.
#include "proxy/core/socket_reader.h"
#include "tests/unit/core/socket_pair_fixture.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

namespace edgeguard {
namespace {

// The owner side: counts callbacks, remembers what the input held at each read and the last event.
struct Owner {
    int reads = 0;
    size_t input_at_last_read = 0;
    short events = 0;
    bufferevent* seen_bev = nullptr;
    bool drain_on_read = false;

    static void on_read(bufferevent* bev, void* arg) {
        auto* self = static_cast<Owner*>(arg);
        ++self->reads;
        self->seen_bev = bev;
        evbuffer* in = bufferevent_get_input(bev);
        self->input_at_last_read = evbuffer_get_length(in);
        if (self->drain_on_read) evbuffer_drain(in, evbuffer_get_length(in));
    }
    static void on_event(bufferevent* bev, short what, void* arg) {
        auto* self = static_cast<Owner*>(arg);
        self->events = what;
        self->seen_bev = bev;
    }
};

class SocketReaderTest : public SocketPairFixture {
protected:
    void TearDown() override {
        reader_.detach();
        SocketPairFixture::TearDown();
    }
    void attach(bool plain) {
        ASSERT_TRUE(reader_.attach(bev_, plain, &Owner::on_read, nullptr, &Owner::on_event, &owner_));
    }
    void send(size_t n) {
        const std::string bytes(n, 'x');
        ASSERT_EQ(::write(fds_[1], bytes.data(), bytes.size()), static_cast<ssize_t>(n));
    }
    void run_ready_events() { event_base_loop(base_, EVLOOP_NONBLOCK); }
    size_t input_length() const { return evbuffer_get_length(bufferevent_get_input(bev_)); }

    SocketReader reader_;
    Owner owner_;
};

TEST_F(SocketReaderTest, TakesAllWaitingBytesInOneReadPastLibeventsCap) {
    attach(true);
    reader_.enable();
    send(20'000);  // libevent's own socket read would take 4096 per wakeup
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(owner_.input_at_last_read, 20'000u);
    EXPECT_EQ(owner_.seen_bev, bev_);
}

TEST_F(SocketReaderTest, ReadsAtMostMaxReadPerWakeup) {
    attach(true);
    reader_.enable();
    send(SocketReader::kMaxRead + 1000);
    event_base_loop(base_, EVLOOP_ONCE);
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(owner_.input_at_last_read, SocketReader::kMaxRead);
    run_ready_events();
    EXPECT_EQ(input_length(), SocketReader::kMaxRead + 1000);
}

// A body-sized read after an earlier one of that size is read in place: one chain holds it whole (a read
// past the direct chunk would land on the stack and be appended as a second chain).
TEST_F(SocketReaderTest, RepeatOfALargeReadLandsInOneChain) {
    attach(true);
    owner_.drain_on_read = true;
    reader_.enable();
    send(10'300);
    run_ready_events();
    owner_.drain_on_read = false;
    send(10'300);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 2);
    EXPECT_EQ(input_length(), 10'300u);
    EXPECT_EQ(evbuffer_peek(bufferevent_get_input(bev_), -1, nullptr, nullptr, 0), 1);
}

// After small reads the direct chunk is small again: what does not fit still arrives whole and in order.
TEST_F(SocketReaderTest, SmallReadAfterALargeOneShrinksTheChunkAndKeepsOrder) {
    attach(true);
    owner_.drain_on_read = true;
    reader_.enable();
    send(30'000);
    run_ready_events();
    send(10);
    run_ready_events();
    owner_.drain_on_read = false;
    std::string bytes(5'000, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i % 26);
    ASSERT_EQ(::write(fds_[1], bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
    run_ready_events();
    ASSERT_EQ(input_length(), bytes.size());
    std::string got(bytes.size(), '\0');
    ASSERT_EQ(evbuffer_copyout(bufferevent_get_input(bev_), got.data(), got.size()),
              static_cast<ev_ssize_t>(got.size()));
    EXPECT_TRUE(got == bytes);
}

TEST_F(SocketReaderTest, HighWatermarkStopsReadingUntilTheInputIsDrained) {
    attach(true);
    reader_.set_high_watermark(1000);
    reader_.enable();
    send(5000);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(input_length(), 1000u);
    run_ready_events();  // the socket is still readable, but the input is full: nothing is read
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(input_length(), 1000u);
    EXPECT_TRUE(reader_.enabled());
    evbuffer_drain(bufferevent_get_input(bev_), 600);  // below the mark: reading resumes, up to the mark
    run_ready_events();
    EXPECT_EQ(owner_.reads, 2);
    EXPECT_EQ(input_length(), 1000u);
}

TEST_F(SocketReaderTest, DisabledReaderLeavesBytesInTheSocket) {
    attach(true);
    reader_.enable();
    reader_.disable();
    send(100);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 0);
    EXPECT_EQ(input_length(), 0u);
    reader_.enable();
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(owner_.input_at_last_read, 100u);
}

TEST_F(SocketReaderTest, EofReachesTheEventCallbackWithReadingStopped) {
    attach(true);
    owner_.drain_on_read = true;
    reader_.enable();
    send(10);
    ::close(fds_[1]);
    fds_[1] = -1;
    run_ready_events();
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(owner_.events, BEV_EVENT_READING | BEV_EVENT_EOF);
    EXPECT_FALSE(reader_.enabled());
}

TEST_F(SocketReaderTest, ResetReachesTheEventCallbackAsError) {
    // A TCP reset needs TCP: a loopback connection whose peer closes with SO_LINGER 0.
    int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    int client = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(::connect(client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    int served = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    ASSERT_GE(served, 0);
    ::close(listener);
    bufferevent* tcp = bufferevent_socket_new(base_, served, BEV_OPT_CLOSE_ON_FREE);
    ASSERT_NE(tcp, nullptr);
    SocketReader reader;
    ASSERT_TRUE(reader.attach(tcp, true, &Owner::on_read, nullptr, &Owner::on_event, &owner_));
    reader.enable();
    linger hard{1, 0};
    ::setsockopt(client, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    ::close(client);
    event_base_loop(base_, EVLOOP_ONCE);
    EXPECT_EQ(owner_.reads, 0);
    EXPECT_EQ(owner_.events, BEV_EVENT_READING | BEV_EVENT_ERROR);
    EXPECT_FALSE(reader.enabled());
    reader.detach();
    bufferevent_free(tcp);
}

TEST_F(SocketReaderTest, DetachedReaderNoLongerReads) {
    attach(true);
    reader_.enable();
    reader_.detach();
    send(100);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 0);
}

TEST_F(SocketReaderTest, NonPlainDelegatesToTheBufferevent) {
    // TLS connections keep libevent's read path; the same calls drive it (here on a socket bufferevent).
    attach(false);
    reader_.disable();
    send(100);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 0);
    reader_.enable();
    EXPECT_TRUE(bufferevent_get_enabled(bev_) & EV_READ);
    run_ready_events();
    EXPECT_EQ(owner_.reads, 1);
    EXPECT_EQ(owner_.input_at_last_read, 100u);
    ::close(fds_[1]);
    fds_[1] = -1;
    run_ready_events();
    EXPECT_EQ(owner_.events, BEV_EVENT_READING | BEV_EVENT_EOF);
}

}  // namespace
}  // namespace edgeguard
