// Access log: every line is valid JSON with the documented fields, no secrets, query stripped by default; the
// writer thread delivers every line of every producer in order, and a full ring drops and counts, never
// blocks.
#include "proxy/ops/access_log.h"

#include <gtest/gtest.h>
#include <simdjson.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace edgeguard {
namespace {

IpAddress ip(const char* text) {
    auto a = IpAddress::parse(text);
    EXPECT_TRUE(a.has_value()) << text;
    return a.value_or(IpAddress{});
}

AccessLogEntry sample_entry() {
    AccessLogEntry e;
    e.start_unix_micros = 1'764'276'837'123'456;
    e.client = ip("10.1.1.77");
    e.client_ip_policy = ClientIpPolicy::Forward;
    e.method = "POST";
    e.host = "posthog.internal";
    e.target = "/e/?ip=1&_=1700000000000&ver=1.2.3";
    e.status = 200;
    e.bytes_in = 1234;
    e.bytes_out = 56;
    e.duration_micros = 12'345;
    e.upstream = "capture";
    e.upstream_micros = 9'001;
    e.route = "capture";
    e.verdict = "rewritten";
    return e;
}

std::string line_of(const AccessLogEntry& e) {
    std::string out;
    append_access_log_line(out, e);
    return out;
}

// Parses one line strictly (simdjson validates UTF-8 too) and returns the DOM element's owner.
struct ParsedLine {
    simdjson::dom::parser parser;
    simdjson::dom::object obj;
    bool ok = false;
};

::testing::AssertionResult parse_line(const std::string& line, ParsedLine& p) {
    if (line.empty() || line.back() != '\n') return ::testing::AssertionFailure() << "no trailing newline";
    if (line.find('\n') != line.size() - 1) return ::testing::AssertionFailure() << "embedded newline";
    auto r = p.parser.parse(line.data(), line.size() - 1, true);
    if (r.error()) return ::testing::AssertionFailure() << simdjson::error_message(r.error()) << ": " << line;
    auto o = r.get_object();
    if (o.error()) return ::testing::AssertionFailure() << "not an object: " << line;
    p.obj = o.value();
    p.ok = true;
    return ::testing::AssertionSuccess();
}

std::string str_field(ParsedLine& p, const char* key) {
    std::string_view v;
    if (p.obj[key].get_string().get(v)) return "<missing or not a string>";
    return std::string(v);
}

std::vector<std::string> read_lines(const std::string& path) {
    std::ifstream f(path);
    std::vector<std::string> lines;
    for (std::string l; std::getline(f, l);) lines.push_back(l + "\n");
    return lines;
}

struct TempFile {
    std::string path;
    TempFile() {
        char tmpl[] = "/tmp/edgeguard-access-log-XXXXXX";
        int fd = mkstemp(tmpl);
        if (fd >= 0) close(fd);
        path = tmpl;
    }
    ~TempFile() { std::remove(path.c_str()); }
};

TEST(AccessLogLine, HasEveryDocumentedFieldWithItsType) {
    auto e = sample_entry();
    std::vector<std::string> rules{"email", "phone"};
    e.rule_ids = rules;
    ParsedLine p;
    ASSERT_TRUE(parse_line(line_of(e), p));
    double ts;
    ASSERT_FALSE(p.obj["ts"].get_double().get(ts));
    EXPECT_NEAR(ts, 1764276837.123456, 1e-5);
    EXPECT_EQ(str_field(p, "client_ip"), "10.1.1.77");
    EXPECT_EQ(str_field(p, "method"), "POST");
    EXPECT_EQ(str_field(p, "host"), "posthog.internal");
    EXPECT_EQ(str_field(p, "path"), "/e/");
    EXPECT_EQ(uint64_t(p.obj["status"]), 200u);
    EXPECT_EQ(uint64_t(p.obj["bytes_in"]), 1234u);
    EXPECT_EQ(uint64_t(p.obj["bytes_out"]), 56u);
    EXPECT_DOUBLE_EQ(double(p.obj["duration_ms"]), 12.345);
    EXPECT_EQ(str_field(p, "upstream"), "capture");
    EXPECT_DOUBLE_EQ(double(p.obj["upstream_ms"]), 9.001);
    EXPECT_EQ(str_field(p, "route"), "capture");
    EXPECT_EQ(str_field(p, "verdict"), "rewritten");
    simdjson::dom::array ids;
    ASSERT_FALSE(p.obj["rule_ids"].get_array().get(ids));
    std::vector<std::string> got;
    for (auto v : ids) got.emplace_back(std::string_view(v));
    EXPECT_EQ(got, rules);
    EXPECT_TRUE(p.obj["query"].error() == simdjson::NO_SUCH_FIELD);  // stripped by default
}

TEST(AccessLogLine, AbsentValuesAreNull) {
    AccessLogEntry e = sample_entry();
    e.upstream = {};
    e.upstream_micros = -1;
    e.route = {};
    e.verdict = {};
    e.client_ip_policy = ClientIpPolicy::Drop;
    e.error = "rate_limited";
    ParsedLine p;
    ASSERT_TRUE(parse_line(line_of(e), p));
    for (const char* k : {"upstream", "upstream_ms", "route", "verdict", "client_ip"})
        EXPECT_TRUE(p.obj[k].is_null()) << k;
    EXPECT_EQ(str_field(p, "error"), "rate_limited");
}

TEST(AccessLogLine, QueryAndFragmentNeverLoggedByDefault) {
    AccessLogEntry e = sample_entry();
    e.target = "/flags/?v=2&token=phc_secret_token&data=eyJlbWFpbCI6ImFAYi5jIn0#frag";
    const std::string line = line_of(e);
    ParsedLine p;
    ASSERT_TRUE(parse_line(line, p));
    EXPECT_EQ(str_field(p, "path"), "/flags/");
    EXPECT_EQ(line.find("phc_secret_token"), std::string::npos);
    EXPECT_EQ(line.find("eyJlbWFpbC"), std::string::npos);
    EXPECT_EQ(line.find("frag"), std::string::npos);
}

TEST(AccessLogLine, OptInQueryStillRedactsPayloadsAndTokens) {
    AccessLogEntry e = sample_entry();
    e.include_query = true;
    e.target = "/e/?compression=gzip-js&Token=phc_secret&data=eyJlbWFpbCI6ImFAYi5jIn0&ver=1.2";
    const std::string line = line_of(e);
    ParsedLine p;
    ASSERT_TRUE(parse_line(line, p));
    EXPECT_EQ(str_field(p, "query"), "compression=gzip-js&Token=REDACTED&data=REDACTED&ver=1.2");
    EXPECT_EQ(line.find("phc_secret"), std::string::npos);
    EXPECT_EQ(line.find("eyJlbWFpbC"), std::string::npos);
}

TEST(AccessLogLine, ClientIpFollowsTheRoutePolicy) {
    AccessLogEntry e = sample_entry();
    auto client_ip = [&](const char* addr, ClientIpPolicy policy) {
        e.client = ip(addr);
        e.client_ip_policy = policy;
        ParsedLine p;
        EXPECT_TRUE(parse_line(line_of(e), p));
        return p.obj["client_ip"].is_null() ? std::string("null") : str_field(p, "client_ip");
    };
    EXPECT_EQ(client_ip("10.1.1.77", ClientIpPolicy::Forward), "10.1.1.77");
    EXPECT_EQ(client_ip("10.1.1.77", ClientIpPolicy::Truncate), "10.1.1.0");
    EXPECT_EQ(client_ip("10.1.1.77", ClientIpPolicy::Drop), "null");
    EXPECT_EQ(client_ip("2001:db8:aa:bb:cc:dd:ee:ff", ClientIpPolicy::Forward), "2001:db8:aa:bb:cc:dd:ee:ff");
    EXPECT_EQ(client_ip("2001:db8:aa:bb:cc:dd:ee:ff", ClientIpPolicy::Truncate), "2001:db8:aa::");
    EXPECT_EQ(client_ip("::1", ClientIpPolicy::Forward), "::1");
}

TEST(AccessLogLine, EveryStringIsEscapedAndInvalidUtf8Replaced) {
    struct Case {
        std::string raw, decoded;
    };
    const std::vector<Case> cases = {
        {"plain", "plain"},
        {"quote\" back\\slash", "quote\" back\\slash"},
        {std::string("nl\ncr\rtab\tnul\0bell\x07"
                     "del\x7f",
                     23),
         std::string("nl\ncr\rtab\tnul\0bell\x07"
                     "del\x7f",
                     23)},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80", "caf\xc3\xa9 \xf0\x9f\x98\x80"},                // valid UTF-8 kept
        {"bad\xff", "bad\xef\xbf\xbd"},                                                  // stray byte
        {"over\xc0\xaf", "over\xef\xbf\xbd\xef\xbf\xbd"},                                // overlong '/'
        {"sur\xed\xa0\x80", "sur\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},                  // UTF-16 surrogate
        {"cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd"},                                  // truncated sequence
        {"big\xf4\x90\x80\x80", "big\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},  // above U+10FFFF
    };
    for (const auto& c : cases) {
        AccessLogEntry e = sample_entry();
        e.host = c.raw;
        e.method = c.raw;
        std::vector<std::string> rules{c.raw};
        e.rule_ids = rules;
        e.route = c.raw;
        std::string target = "/p/" + c.raw;  // no '?' or '#' in any case
        e.target = target;
        const std::string line = line_of(e);
        ParsedLine p;
        ASSERT_TRUE(parse_line(line, p)) << c.raw;
        EXPECT_EQ(str_field(p, "host"), c.decoded);
        EXPECT_EQ(str_field(p, "method"), c.decoded);
        EXPECT_EQ(str_field(p, "route"), c.decoded);
        EXPECT_EQ(str_field(p, "path"), "/p/" + c.decoded);
        for (char ch : line.substr(0, line.size() - 1))
            EXPECT_TRUE(static_cast<unsigned char>(ch) >= 0x20 && ch != 0x7f)
                << "raw control byte in " << line;
    }
}

TEST(AccessLog, WriterDeliversEveryLineOfEveryProducerInOrder) {
    TempFile file;
    std::string error;
    AccessLog::Options opts;
    opts.producers = 3;
    opts.flush_interval = std::chrono::milliseconds(5);
    auto log = AccessLog::open(file.path, opts, error);
    ASSERT_TRUE(log) << error;
    constexpr int kLines = 2000;
    std::vector<std::thread> threads;
    for (size_t w = 0; w < 3; ++w)
        threads.emplace_back([&, w] {
            std::string route = "worker" + std::to_string(w);
            for (int i = 0; i < kLines; ++i) {
                AccessLogEntry e = sample_entry();
                e.route = route;
                e.bytes_in = static_cast<uint64_t>(i);
                while (true) {  // the ring is big enough, but be explicit: this test wants no drops
                    uint64_t before = log->dropped();
                    log->log(w, e);
                    if (log->dropped() == before) break;
                    std::this_thread::sleep_for(std::chrono::milliseconds(1));
                }
            }
        });
    for (auto& t : threads) t.join();
    log->flush();
    EXPECT_EQ(log->write_errors(), 0u);
    auto lines = read_lines(file.path);
    ASSERT_EQ(lines.size(), 3u * kLines);
    std::vector<uint64_t> next(3, 0);
    for (const auto& l : lines) {
        ParsedLine p;
        ASSERT_TRUE(parse_line(l, p));
        std::string route = str_field(p, "route");
        ASSERT_EQ(route.rfind("worker", 0), 0u);
        size_t w = std::stoul(route.substr(6));
        EXPECT_EQ(uint64_t(p.obj["bytes_in"]), next[w]++);
    }
}

TEST(AccessLog, FullRingDropsAndCountsWithoutBlocking) {
    TempFile file;
    std::string error;
    AccessLog::Options opts;
    opts.producers = 1;
    opts.ring_bytes = 2048;                          // a handful of lines
    opts.flush_interval = std::chrono::seconds(30);  // the writer will not drain during the burst
    auto log = AccessLog::open(file.path, opts, error);
    ASSERT_TRUE(log) << error;
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) log->log(0, sample_entry());
    // Generous functional bound: 200 non-blocking calls take far less than the writer's 30 s interval.
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    const uint64_t dropped = log->dropped();
    EXPECT_GT(dropped, 0u);
    log->flush();
    EXPECT_EQ(read_lines(file.path).size() + dropped, 200u);
    log->log(0, sample_entry());  // room again after the drain
    log->flush();
    EXPECT_EQ(log->dropped(), dropped);
}

TEST(AccessLog, ReopenMovesOutputAndOffWritesNothing) {
    TempFile a, b;
    std::string error;
    auto log = AccessLog::open(a.path, {}, error);
    ASSERT_TRUE(log) << error;
    log->log(0, sample_entry());
    ASSERT_TRUE(log->reopen(b.path, error)) << error;
    log->log(0, sample_entry());
    log->log(0, sample_entry());
    ASSERT_TRUE(log->reopen("off", error));
    log->log(0, sample_entry());
    log->flush();
    EXPECT_EQ(read_lines(a.path).size(), 1u);
    EXPECT_EQ(read_lines(b.path).size(), 2u);
    EXPECT_EQ(log->dropped(), 0u);
}

TEST(AccessLog, AWriterAsleepWhileOffWritesOnItsOwnOnceReopened) {
    // Off, the writer thread sleeps without an interval; a reopen to a file must wake it, so lines reach the
    // file without anyone calling flush().
    TempFile file;
    std::string error;
    AccessLog::Options opts;
    opts.flush_interval = std::chrono::milliseconds(10);
    auto log = AccessLog::open(std::string("off"), opts, error);
    ASSERT_TRUE(log) << error;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the writer is asleep by now
    ASSERT_TRUE(log->reopen(file.path, error)) << error;
    log->log(0, sample_entry());
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (read_lines(file.path).empty() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    EXPECT_EQ(read_lines(file.path).size(), 1u);
}

TEST(AccessLog, UnwritablePathIsAnErrorValue) {
    std::string error;
    auto log = AccessLog::open(std::string("/nonexistent-dir/edgeguard/access.log"), {}, error);
    EXPECT_FALSE(log);
    EXPECT_NE(error.find("/nonexistent-dir/edgeguard/access.log"), std::string::npos);
}

TEST(SpscByteRing, WrapsAroundAndRefusesWhatDoesNotFit) {
    SpscByteRing ring(16);
    EXPECT_EQ(ring.capacity(), 16u);
    EXPECT_TRUE(ring.try_push("0123456789"));
    EXPECT_FALSE(ring.try_push("abcdefghij"));  // 10 + 10 > 16
    iovec r[2];
    ASSERT_EQ(ring.peek(r), 10u);
    ring.consume(10);
    EXPECT_TRUE(ring.try_push("abcdefghij"));  // wraps: 6 at the end, 4 at the start
    ASSERT_EQ(ring.peek(r), 10u);
    std::string got(static_cast<char*>(r[0].iov_base), r[0].iov_len);
    got.append(static_cast<char*>(r[1].iov_base), r[1].iov_len);
    EXPECT_EQ(got, "abcdefghij");
    EXPECT_EQ(r[1].iov_len, 4u);
}

}  // namespace
}  // namespace edgeguard
