// Request-head strictness on top of llhttp: each vector here is accepted by llhttp 8 and must be a 400.
#include "proxy/http1/head_scanner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <string>

namespace edgeguard {
namespace {

RequestHeadScanner::Result scan_all(const std::string& bytes, size_t& consumed) {
    RequestHeadScanner s;
    return s.scan(bytes.data(), bytes.size(), consumed);
}

RequestHeadScanner::Result scan_bytewise(const std::string& bytes) {
    RequestHeadScanner s;
    for (char c : bytes) {
        size_t n = 0;
        auto r = s.scan(&c, 1, n);
        if (r != RequestHeadScanner::Result::NeedMore) return r;
    }
    return RequestHeadScanner::Result::NeedMore;
}

TEST(RequestHeadScanner, AcceptsAWellFormedHeadAndStopsAtItsEnd) {
    const std::string head = "\r\nPOST /e/?ip=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nX-E:\r\n\r\n";
    size_t consumed = 0;
    EXPECT_EQ(scan_all(head + "{}", consumed), RequestHeadScanner::Result::HeadEnd);
    EXPECT_EQ(consumed, head.size());
    EXPECT_EQ(scan_bytewise(head), RequestHeadScanner::Result::HeadEnd);
}

TEST(RequestHeadScanner, RejectsDesyncVectors) {
    const char* bad[] = {
        "GET / HTTP/1.1\nHost: x\r\n\r\n",             // bare LF after the request line
        "GET / HTTP/1.1\r\nHost: x\n\r\n",             // bare LF after a header
        "GET / HTTP/1.1\r\nHost: x\rY: z\r\n\r\n",      // bare CR
        "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",           // double space
        "GET\t/ HTTP/1.1\r\nHost: x\r\n\r\n",           // tab as separator
        "GET /#frag HTTP/1.1\r\nHost: x\r\n\r\n",       // fragment in target
        "GET / HTTP/1.1\r\nHost : x\r\n\r\n",           // whitespace before colon
        "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", // obs-fold
        "GET / HTTP/1.1\r\n\tHost: x\r\n\r\n",          // leading whitespace
        "GET / HTTP/1.1\r\n: empty\r\n\r\n",            // empty field name
        "GET / HTTP/1.1\r\nNoColon\r\n\r\n",            // no colon
        "GET /\r\nHost: x\r\n\r\n",                     // HTTP/0.9-style request line
    };
    for (const char* b : bad) {
        size_t consumed = 0;
        EXPECT_EQ(scan_all(b, consumed), RequestHeadScanner::Result::Invalid) << b;
        EXPECT_EQ(scan_bytewise(b), RequestHeadScanner::Result::Invalid) << b;
    }
}

TEST(RequestHeadScanner, HashInsideAHeaderValueIsFine) {
    size_t consumed = 0;
    EXPECT_EQ(scan_all("GET / HTTP/1.1\r\nX-A: a#b c\r\n\r\n", consumed), RequestHeadScanner::Result::HeadEnd);
}

}  // namespace
}  // namespace edgeguard

namespace edgeguard {
namespace {

TEST(ResponseHeadScanner, StatusLineIsFreeFormButHeaderRulesHold) {
    RequestHeadScanner s;
    s.reset(true);
    size_t consumed = 0;
    const std::string ok = "HTTP/1.1 200 All  Good\r\nX-A: one two\r\n\r\n";
    EXPECT_EQ(s.scan(ok.data(), ok.size(), consumed), RequestHeadScanner::Result::HeadEnd);
    for (const char* bad : {"HTTP/1.1 200 OK\r\nX-A: one\r\n two\r\n\r\n", "HTTP/1.1 200 OK\r\nX-A : v\r\n\r\n",
                            "HTTP/1.1 200 OK\nX-A: v\r\n\r\n"}) {
        s.reset(true);
        EXPECT_EQ(s.scan(bad, std::string(bad).size(), consumed), RequestHeadScanner::Result::Invalid) << bad;
    }
}

}  // namespace
}  // namespace edgeguard

// The scanner skips plain header bytes in bulk; this is the byte-at-a-time state machine it replaced, kept
// as the reference: both must agree on every input, however it is split into chunks.
namespace edgeguard {
namespace {

class ReferenceHeadScanner {
public:
    using Result = RequestHeadScanner::Result;
    explicit ReferenceHeadScanner(bool response) : response_(response) {}

    Result scan(const char* data, size_t len, size_t& consumed) {
        for (size_t i = 0; i < len; ++i) {
            if (done_) {
                consumed = i;
                return Result::HeadEnd;
            }
            const char c = data[i];
            if (prev_cr_ && c != '\n') return fail("bare CR in request head");
            if (c == '\r') {
                prev_cr_ = true;
                continue;
            }
            if (c == '\n') {
                if (!prev_cr_) return fail("bare LF in request head");
                prev_cr_ = false;
                if (!seen_request_line_) {
                    if (line_len_ == 0) continue;
                    if (!response_ && spaces_ != 2) return fail("malformed request line");
                    if (response_ && (spaces_ == 0 || (spaces_ == 1 && status_digits_ != 3)))
                        return fail("status code is not three digits");
                    seen_request_line_ = true;
                } else if (line_len_ == 0) {
                    done_ = true;
                    consumed = i + 1;
                    return Result::HeadEnd;
                } else if (!seen_colon_) {
                    return fail("header line without a colon");
                }
                line_len_ = name_len_ = spaces_ = 0;
                seen_colon_ = prev_space_ = false;
                continue;
            }
            const bool space = c == ' ' || c == '\t';
            if (!seen_request_line_ && response_) {
                if (c == ' ') {
                    if (spaces_ == 1 && status_digits_ != 3) return fail("status code is not three digits");
                    ++spaces_;
                } else if (spaces_ == 1) {
                    if (c < '0' || c > '9') return fail("status code is not three digits");
                    ++status_digits_;
                }
            } else if (!seen_request_line_) {
                if (c == ' ') {
                    if (prev_space_ || line_len_ == 0) return fail("malformed request line");
                    ++spaces_;
                } else if (c == '\t') {
                    return fail("malformed request line");
                } else if (c == '#' && spaces_ == 1) {
                    return fail("fragment in request target");
                }
                prev_space_ = c == ' ';
            } else if (!seen_colon_) {
                if (space) return fail(line_len_ == 0 ? "obs-fold or leading whitespace in a header line"
                                                      : "whitespace before a header colon");
                if (c == ':') {
                    if (name_len_ == 0) return fail("empty header name");
                    seen_colon_ = true;
                } else {
                    ++name_len_;
                }
            }
            ++line_len_;
        }
        consumed = len;
        return done_ ? Result::HeadEnd : Result::NeedMore;
    }
    const char* reason() const { return reason_; }

private:
    Result fail(const char* why) {
        reason_ = why;
        return Result::Invalid;
    }
    bool response_;
    bool done_ = false, prev_cr_ = false, prev_space_ = false, seen_request_line_ = false, seen_colon_ = false;
    uint32_t line_len_ = 0, name_len_ = 0, spaces_ = 0, status_digits_ = 0;
    const char* reason_ = "";
};

TEST(RequestHeadScanner, AgreesWithTheByteAtATimeReferenceOnRandomHeadsAndSplits) {
    // Mostly well-formed heads with random damage, so both accepting and every rejecting path are reached.
    const std::string pieces[] = {"GET", "POST", "HTTP/1.1", "200", "20", "2000", "OK", "/e/?a=1", "/#f", " ",
                                  "  ", "\t", "\r\n", "\n", "\r", ":", ": ", "Host", "X-A", "value", "a b#c",
                                  "Content-Length", "12", "\r\n\r\n", "{}", "x",
                                  // longer than the scanner's 16-byte strides
                                  "X-Long-Header-Name-Of-Some-Length", "abcdefghijklmnopqrstuvwxyz0123456789",
                                  "/capture/?ip=1&_=1700000000000&ver=1.2.3", "200 A Reason Phrase Of Words"};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    auto next = [&seed](uint64_t bound) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        return seed % bound;
    };
    size_t heads_ended = 0, rejected = 0;
    for (int round = 0; round < 20000; ++round) {
        const bool response = next(2) == 0;
        std::string head = response ? "HTTP/1.1 200 OK\r\n" : "GET / HTTP/1.1\r\n";
        if (next(4) == 0) head.clear();
        const size_t parts = 1 + next(14);
        for (size_t k = 0; k < parts; ++k) head += pieces[next(std::size(pieces))];
        if (next(3) == 0) head += "Host: x\r\n\r\nrest";
        RequestHeadScanner fast;
        fast.reset(response);
        ReferenceHeadScanner ref(response);
        size_t pos = 0;
        while (true) {
            const size_t chunk = std::min(head.size() - pos, static_cast<size_t>(1 + next(next(2) == 0 ? 8 : 80)));
            size_t got_fast = 0, got_ref = 0;
            const auto a = fast.scan(head.data() + pos, chunk, got_fast);
            const auto b = ref.scan(head.data() + pos, chunk, got_ref);
            ASSERT_EQ(static_cast<int>(a), static_cast<int>(b)) << head;
            if (a == RequestHeadScanner::Result::Invalid) {
                ASSERT_STREQ(fast.reason(), ref.reason()) << head;
                ++rejected;
                break;
            }
            ASSERT_EQ(got_fast, got_ref) << head;
            if (a == RequestHeadScanner::Result::HeadEnd) {
                ++heads_ended;
                break;
            }
            pos += chunk;
            if (pos == head.size()) break;
        }
    }
    EXPECT_GT(heads_ended, 100u);
    EXPECT_GT(rejected, 100u);
}

}  // namespace
}  // namespace edgeguard
