// WriteStage over a real socket pair: what is staged leaves in order, straight to the socket when nothing is
// queued, and through the bufferevent's output otherwise or for whatever the kernel does not take.
#include "proxy/core/direct_write.h"
#include "tests/unit/core/socket_pair_fixture.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace edgeguard {
namespace {

class WriteStageTest : public SocketPairFixture {
  protected:
    void SetUp() override {
        SocketPairFixture::SetUp();
        ASSERT_TRUE(stage_.ready());
    }

    // Everything the peer can read right now.
    std::string received() {
        std::string got;
        char buf[65536];
        ssize_t n;
        while ((n = ::read(fds_[1], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
        return got;
    }
    // The bufferevent's output (peeked: a socket bufferevent freezes its start, so copyout refuses).
    std::string queued() {
        evbuffer* out = bufferevent_get_output(bev_);
        const int n = evbuffer_peek(out, -1, nullptr, nullptr, 0);
        std::vector<evbuffer_iovec> chains(static_cast<size_t>(n));
        evbuffer_peek(out, -1, nullptr, chains.data(), n);
        std::string q;
        for (const evbuffer_iovec& c : chains) q.append(static_cast<const char*>(c.iov_base), c.iov_len);
        return q;
    }
    static std::string pattern(size_t n, char first) {
        std::string s(n, '\0');
        for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(first + i % 23);
        return s;
    }

    WriteStage stage_;
};

TEST_F(WriteStageTest, SmallAndLargePiecesLeaveInOrderStraightToTheSocket) {
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 20000\r\n\r\n";
    const std::string body = pattern(20000, 'a');
    stage_.append(head);
    stage_.append(body.data(), 100);  // still small
    stage_.append(body.data() + 100, body.size() - 100 - 7);
    stage_.append("", 0);
    stage_.append(body.data() + body.size() - 7, 7);  // after a large piece: kept behind it
    EXPECT_FALSE(stage_.empty());
    stage_.flush(bev_, true);
    EXPECT_TRUE(stage_.empty());
    EXPECT_EQ(queued(), "");
    EXPECT_TRUE(received() == head + body);
}

TEST_F(WriteStageTest, BytesQueuedInTheBuffereventGoFirst) {
    evbuffer_add(bufferevent_get_output(bev_), "first;", 6);  // queued, not yet sent
    stage_.append("second;");
    stage_.append(pattern(WriteStage::kSmall + 1, 'A'));
    stage_.flush(bev_, true);
    EXPECT_TRUE(stage_.empty());
    EXPECT_EQ(received(), "");  // nothing may overtake the queued bytes
    EXPECT_TRUE(queued() == "first;second;" + pattern(WriteStage::kSmall + 1, 'A'));
}

TEST_F(WriteStageTest, WhatTheKernelDoesNotTakeIsQueuedInOrder) {
    const std::string head = "head;";
    const std::string body = pattern(4 << 20, '0');  // more than a socket pair buffers
    stage_.append(head);
    stage_.append(body);
    stage_.flush(bev_, true);
    EXPECT_TRUE(stage_.empty());
    const std::string sent = received();
    const std::string rest = queued();
    EXPECT_GT(sent.size(), 0u);
    EXPECT_GT(rest.size(), 0u);
    EXPECT_TRUE(sent + rest == head + body) << sent.size() << " sent, " << rest.size() << " queued";
}

TEST_F(WriteStageTest, NotDirectQueuesEverything) {
    stage_.append("head;");
    stage_.append(pattern(WriteStage::kSmall * 3, 'k'));
    stage_.flush(bev_, false);
    EXPECT_TRUE(stage_.empty());
    EXPECT_EQ(received(), "");
    EXPECT_TRUE(queued() == "head;" + pattern(WriteStage::kSmall * 3, 'k'));
}

TEST_F(WriteStageTest, LentBytesLeaveInOrderWithTheCopiedOnes) {
    const std::string body = pattern(10'000, 'b');
    stage_.append("head;");
    stage_.append("4e20\r\n");
    stage_.lend(body.data(), body.size());
    stage_.append("\r\n");
    EXPECT_TRUE(stage_.has_lent());
    stage_.flush(bev_, true);
    EXPECT_FALSE(stage_.has_lent());
    EXPECT_TRUE(stage_.empty());
    EXPECT_EQ(queued(), "");
    EXPECT_TRUE(received() == "head;4e20\r\n" + body + "\r\n");
}

TEST_F(WriteStageTest, KeptLentBytesAreCopiedBeforeTheirOwnerChangesThem) {
    std::string body = pattern(3'000, 'c');
    const std::string original = body;
    stage_.append("head;");
    stage_.lend(body.data(), body.size());
    stage_.keep_lent();
    EXPECT_FALSE(stage_.has_lent());
    body.assign(body.size(), 'X');  // the lender drains and reuses its buffer
    stage_.append(";tail");          // after copied bytes: stays behind them
    stage_.lend("!", 1);
    stage_.flush(bev_, true);
    EXPECT_TRUE(received() == "head;" + original + ";tail!");
}

TEST_F(WriteStageTest, LentBytesTheKernelDoesNotTakeAreCopiedIntoTheOutput) {
    std::string body = pattern(4 << 20, 'd');  // more than a socket pair buffers
    const std::string original = body;
    stage_.append("head;");
    stage_.lend(body.data(), body.size());
    stage_.flush(bev_, false);  // not direct: everything is queued, lent bytes copied
    body.assign(body.size(), 'X');
    EXPECT_TRUE(queued() == "head;" + original);
}

TEST_F(WriteStageTest, ManyPiecesStayInOrder) {
    std::string expected;
    std::vector<std::string> lent;
    lent.reserve(20);
    for (int i = 0; i < 20; ++i) {
        const std::string own = "<" + std::to_string(i) + ">";
        stage_.append(own);
        lent.push_back(pattern(100 + static_cast<size_t>(i), 'e'));
        stage_.lend(lent.back().data(), lent.back().size());
        expected += own + lent.back();
    }
    stage_.flush(bev_, true);
    EXPECT_TRUE(received() == expected);
}

TEST_F(WriteStageTest, ClearDropsSmallAndLargePieces) {
    stage_.append("x");
    stage_.append(pattern(WriteStage::kSmall * 2, 'q'));
    stage_.clear();
    EXPECT_TRUE(stage_.empty());
    stage_.append("only");
    stage_.flush(bev_, true);
    EXPECT_EQ(received(), "only");
}

}  // namespace
}  // namespace edgeguard
