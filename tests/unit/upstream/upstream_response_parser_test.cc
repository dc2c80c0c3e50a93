// The upstream response parse every downstream codec relays: framing, interim and upgrade responses, limits,
// and the byte-at-a-time feed an upstream socket may deliver.
#include "proxy/upstream/upstream_response_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace edgeguard {
namespace {

struct Recorder final : UpstreamResponseParser::Sink {
    void upstream_response_head(const ResponseHead& h) override {
        ++heads;
        head = h;
        fields.clear();
        for (size_t i = 0; i < h.fields->size(); ++i)
            fields.push_back(std::string(h.fields->name(i)) + "=" + std::string(h.fields->value(i)));
    }
    void upstream_response_body(const char* data, size_t len) override { body.append(data, len); }
    int heads = 0;
    ResponseHead head;
    std::vector<std::string> fields;
    std::string body;
};

// Feeds `bytes` in pieces of `step` the way the exchange does: what is not consumed is offered again.
bool feed_all(UpstreamResponseParser& p, const std::string& bytes, size_t step, size_t* left = nullptr) {
    size_t at = 0;
    std::string pending;
    while (at < bytes.size() || !pending.empty()) {
        if (at < bytes.size()) {
            pending.append(bytes, at, step);
            at += std::min(step, bytes.size() - at);
        }
        size_t consumed = 0;
        if (!p.feed(pending.data(), pending.size(), consumed)) return false;
        pending.erase(0, consumed);
        using S = UpstreamResponseParser::State;
        if (p.state() == S::Complete || p.state() == S::Upgraded) {
            if (left != nullptr) *left = pending.size() + (bytes.size() - at);
            return true;
        }
        if (consumed == 0 && at >= bytes.size()) break;
    }
    if (left != nullptr) *left = pending.size();
    return true;
}

constexpr uint32_t kMaxHead = 16 * 1024;

TEST(UpstreamResponseParser, ContentLengthBodyWholeAndBytewise) {
    const std::string msg = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}";
    for (size_t step : {msg.size(), size_t{1}, size_t{5}}) {
        Recorder r;
        UpstreamResponseParser p(r);
        p.begin(false, {}, kMaxHead);
        ASSERT_TRUE(feed_all(p, msg, step)) << step;
        EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete);
        EXPECT_EQ(r.heads, 1);
        EXPECT_EQ(r.head.status, 200);
        EXPECT_TRUE(r.head.has_body);
        EXPECT_TRUE(r.head.length_known);
        EXPECT_EQ(r.head.content_length, 7u);
        EXPECT_EQ(r.body, "{\"a\":1}");
        EXPECT_TRUE(p.keep_alive());
        EXPECT_FALSE(p.until_close());
    }
}

TEST(UpstreamResponseParser, StopsAtTheHeadEndSoTheCallerCanBatchHeadAndBody) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n";
    const std::string msg = head + "abc";
    size_t consumed = 0;
    ASSERT_TRUE(p.feed(msg.data(), msg.size(), consumed));
    EXPECT_EQ(consumed, head.size());
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Body);
    ASSERT_TRUE(p.feed(msg.data() + consumed, msg.size() - consumed, consumed));
    EXPECT_EQ(consumed, 3u);
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete);
    EXPECT_EQ(r.body, "abc");
}

TEST(UpstreamResponseParser, ChunkedBodyIsDechunkedWithUnknownLength) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n", 4));
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete);
    EXPECT_FALSE(r.head.length_known);
    EXPECT_TRUE(r.head.has_body);
    EXPECT_EQ(r.body, "abcde");
}

TEST(UpstreamResponseParser, CloseDelimitedBodyEndsAtFinish) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\n", 64));
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Body);
    EXPECT_TRUE(p.until_close());
    EXPECT_FALSE(r.head.length_known);
    EXPECT_TRUE(p.finish());
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete);
    EXPECT_EQ(r.body, "data: 1\n\n");
}

TEST(UpstreamResponseParser, TruncatedLengthBodyDoesNotEndAtFinish) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 64));
    EXPECT_FALSE(p.finish());
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Body);
}

TEST(UpstreamResponseParser, BodylessResponsesKeepTheirContentLength) {
    struct Case {
        bool head_request;
        const char* msg;
    } cases[] = {
        {true, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"},
        {false, "HTTP/1.1 204 No Content\r\n\r\n"},
        {false, "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\n\r\n"},
    };
    for (const Case& c : cases) {
        Recorder r;
        UpstreamResponseParser p(r);
        p.begin(c.head_request, {}, kMaxHead);
        ASSERT_TRUE(feed_all(p, c.msg, 3)) << c.msg;
        EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete) << c.msg;
        EXPECT_FALSE(r.head.has_body) << c.msg;
        EXPECT_EQ(r.body, "") << c.msg;
    }
}

TEST(UpstreamResponseParser, InterimResponsesAreSkippedAndTheFinalHeadIsScannedToo) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
                            "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok", 7));
    EXPECT_EQ(r.heads, 1);
    EXPECT_EQ(r.head.status, 201);
    EXPECT_EQ(r.body, "ok");

    Recorder bad;
    UpstreamResponseParser q(bad);
    q.begin(false, {}, kMaxHead);
    EXPECT_FALSE(feed_all(q, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX : y\r\nContent-Length: 0\r\n\r\n", 64));
}

TEST(UpstreamResponseParser, SwitchingProtocolsOnlyForTheRequestedUpgrade) {
    const std::string msg = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\nFRAME";
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, "websocket", kMaxHead);
    size_t left = 0;
    ASSERT_TRUE(feed_all(p, msg, msg.size(), &left));
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Upgraded);
    EXPECT_EQ(p.head().status, 101);
    EXPECT_EQ(left, 5u);  // the new protocol's bytes are left for the tunnel
    EXPECT_EQ(r.heads, 0);

    for (const char* asked : {"", "h2c"}) {
        Recorder s;
        UpstreamResponseParser q(s);
        q.begin(false, asked, kMaxHead);
        EXPECT_FALSE(feed_all(q, msg, msg.size())) << asked;
    }
}

TEST(UpstreamResponseParser, RefusesWhatMustNotBeRelayed) {
    const char* bad[] = {
        "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",  // duplicate length
        "HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n",                      // no HTTP status
        "HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",          // obs-fold
        "HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",                          // bare LF
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",         // bad chunk size
    };
    for (const char* msg : bad) {
        Recorder r;
        UpstreamResponseParser p(r);
        p.begin(false, {}, kMaxHead);
        EXPECT_FALSE(feed_all(p, msg, 64)) << msg;
    }
}

TEST(UpstreamResponseParser, HeadFieldsCountAgainstTheLimit) {
    const std::string msg = "HTTP/1.1 200 OK\r\nX-Big: " + std::string(200, 'a') + "\r\nContent-Length: 0\r\n\r\n";
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, 100);
    EXPECT_FALSE(feed_all(p, msg, msg.size()));
    Recorder ok;
    UpstreamResponseParser q(ok);
    q.begin(false, {}, 1000);
    EXPECT_TRUE(feed_all(q, msg, msg.size()));
    EXPECT_EQ(q.state(), UpstreamResponseParser::State::Complete);
}

TEST(UpstreamResponseParser, ReusedForTheNextResponse) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 1\r\n\r\nx", 64));
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 404 Not Found\r\nB: 2\r\nContent-Length: 1\r\n\r\ny", 64));
    EXPECT_EQ(r.heads, 2);
    EXPECT_EQ(r.head.status, 404);
    ASSERT_EQ(r.fields.size(), 2u);
    EXPECT_EQ(r.fields[0], "B=2");
    EXPECT_EQ(r.body, "xy");
    EXPECT_EQ(p.bytes_received(), std::string("HTTP/1.1 404 Not Found\r\nB: 2\r\nContent-Length: 1\r\n\r\ny").size());
}

TEST(UpstreamResponseParser, ConnectionCloseIsNotKeptAlive) {
    Recorder r;
    UpstreamResponseParser p(r);
    p.begin(false, {}, kMaxHead);
    ASSERT_TRUE(feed_all(p, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 64));
    EXPECT_EQ(p.state(), UpstreamResponseParser::State::Complete);
    EXPECT_FALSE(p.keep_alive());
}

}  // namespace
}  // namespace edgeguard
