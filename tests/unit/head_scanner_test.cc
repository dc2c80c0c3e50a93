// Request-head strictness on top of llhttp: each vector here is accepted by llhttp 8 and must be a 400.
#include "proxy/head_scanner.h"

#include <gtest/gtest.h>

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
