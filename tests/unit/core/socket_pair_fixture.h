// A socket bufferevent on one end of a non-blocking Unix socket pair, with its own event_base: the test
// reads and writes the other end (fds_[1]) to play the client.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

namespace edgeguard {

class SocketPairFixture : public ::testing::Test {
  protected:
    void SetUp() override {
        base_ = event_base_new();
        ASSERT_NE(base_, nullptr);
        ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_), 0);
        bev_ = bufferevent_socket_new(base_, fds_[0], BEV_OPT_CLOSE_ON_FREE);
        ASSERT_NE(bev_, nullptr);
    }
    void TearDown() override {
        if (bev_ != nullptr) bufferevent_free(bev_);
        if (fds_[1] >= 0) ::close(fds_[1]);
        if (base_ != nullptr) event_base_free(base_);
    }

    event_base* base_ = nullptr;
    int fds_[2] = {-1, -1};  // [0] owned by bev_, [1] the peer
    bufferevent* bev_ = nullptr;
};

}  // namespace edgeguard
