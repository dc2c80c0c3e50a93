// Inputs that once broke a fuzz target (tests/fuzz), replayed through the same entry points in the ordinary
// g++ build, so a regression shows up in every CI run and not only in the clang fuzz build. The targets are
// included with EDGEGUARD_FUZZ_NO_MAIN (no libFuzzer entry points); each sits in its own namespace.
// An invariant a target checks aborts the process, which fails the test.
#define EDGEGUARD_FUZZ_NO_MAIN
#include "tests/fuzz/config_fuzz.cc"
#include "tests/fuzz/decode_fuzz.cc"
#include "tests/fuzz/filter_fuzz.cc"
#include "tests/fuzz/multipart_fuzz.cc"
#include "tests/fuzz/otlp_fuzz.cc"
#include "tests/fuzz/request_fuzz.cc"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

namespace {

namespace fs = std::filesystem;
using namespace std::string_view_literals;

std::string bytes_of(std::string_view s) {
    return std::string(s);
}

int replay(int (*one_input)(const uint8_t*, size_t), std::string_view input) {
    return one_input(reinterpret_cast<const uint8_t*>(input.data()), input.size());
}

// Every committed seed of a target passes its invariants (tests/fuzz/make_seeds.py writes them).
size_t replay_seeds(const std::string& target, int (*one_input)(const uint8_t*, size_t)) {
    const fs::path dir = fs::path(EDGEGUARD_SOURCE_DIR) / "tests" / "fuzz" / "seeds" / target;
    size_t n = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        std::ifstream in(entry.path(), std::ios::binary);
        const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        EXPECT_EQ(replay(one_input, data), 0) << entry.path();
        ++n;
    }
    return n;
}

// --- request_fuzz -----------------------------------------------------------------------------------------

// Found by request_fuzz: after an interim "100 Continue" the next response head was parsed without the strict
// head scanner, so a bare CR (and whitespace before a colon, obs-fold) in the final head was relayed to the
// client. The mirror in request_fuzz.cc scans every head; proxy/http1/client_connection.cc still scans only the
// first one (reported). Mode 0x09: response side, upstream closes after it.
constexpr std::string_view kHeadAfterInterimResponse =
    "\x09\x80HTTP/1.1 100 ContinueA\r\n\r\nHTTP/1.1 204 No Co0 ContinueA\rr: t\r\n\r\n";

TEST(FuzzRegressions, ResponseHeadAfterInterimIsScanned) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kHeadAfterInterimResponse), 0);

    using namespace edgeguard::fuzz::request;
    const edgeguard::Limits limits;
    const RequestContext req;
    for (std::string_view bad :
         {std::string_view("HTTP/1.1 200 OK\rX-B: c\r\nContent-Length: 2\r\n\r\nok"),
          std::string_view("HTTP/1.1 200 OK\r\nX-A : b\r\nContent-Length: 2\r\n\r\nok"),
          std::string_view("HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok")}) {
        ResponseSide side(limits, req);
        side.read(bytes_of("HTTP/1.1 100 Continue\r\n\r\n") + std::string(bad));
        EXPECT_TRUE(side.run().failed) << bad;
        EXPECT_FALSE(side.run().complete) << bad;
    }
    ResponseSide good(limits, req);
    good.read("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nX-A: b\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_TRUE(good.run().complete);
    EXPECT_EQ(good.run().body, "ok");
}

// Found by request_fuzz: llhttp 8 reads a body after a 1xx response that carries Content-Length or
// Transfer-Encoding, so the start of the final response is swallowed as the interim one's "body". A 1xx ends
// at its blank line (RFC 9112 §6.3); the mirror tells llhttp to skip the body, proxy/http1/client_connection.cc
// does not yet (reported; the real binary answers 502 where the final response is fine).
constexpr std::string_view kInterimResponseWithFraming =
    "\x01\x80HTTP/1.1 100 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nheo\r\n0\r\nTrai\n";

TEST(FuzzRegressions, InterimResponseHasNoBody) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kInterimResponseWithFraming), 0);

    using namespace edgeguard::fuzz::request;
    const edgeguard::Limits limits;
    const RequestContext req;
    for (std::string_view interim :
         {std::string_view("HTTP/1.1 100 Continue\r\nContent-Length: 5\r\n\r\n"),
          std::string_view("HTTP/1.1 103 Early Hints\r\nTransfer-Encoding: chunked\r\n\r\n")}) {
        ResponseSide side(limits, req);
        side.read(std::string(interim) + "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        EXPECT_TRUE(side.run().complete) << interim;
        EXPECT_EQ(side.run().status, 200) << interim;
        EXPECT_EQ(side.run().body, "ok") << interim;
    }
}

// Found by request_fuzz: llhttp 8 accepts a status line without a three-digit code ("HTTP/1.1  \"$\"" is
// status 0), which edgeguard then relays as "HTTP/1.1 0 Unknown". The mirror answers 502 for codes outside
// 100..599; proxy/http1/client_connection.cc does not yet (reported). Mode 0x2f: response side, small limits,
// upstream closes, HTTP/1.0 client.
constexpr std::string_view kStatusWithoutCode =
    "\x2f\x2f"
    "HTTP/1.1  \"$\"\r\n\r\n";

TEST(FuzzRegressions, StatusCodeIsThreeDigits) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kStatusWithoutCode), 0);

    using namespace edgeguard::fuzz::request;
    const edgeguard::Limits limits;
    const RequestContext req;
    for (std::string_view line :
         {"HTTP/1.1 \r\n", "HTTP/1.1 2 OK\r\n", "HTTP/1.1 42 OK\r\n", "HTTP/1.1 600 X\r\n"}) {
        ResponseSide side(limits, req);
        side.read(std::string(line) + "Content-Length: 2\r\n\r\nok");
        EXPECT_TRUE(side.run().failed) << line;
    }
    ResponseSide ok(limits, req);
    ok.read("HTTP/1.1 599 X\r\nContent-Length: 2\r\n\r\nok");
    EXPECT_TRUE(ok.run().complete);
}

// Found by request_fuzz (a harness bug): after a 1xx that does not keep the connection (HTTP/1.0 here) llhttp
// ignores every further byte, so no later head ends; the mirror now counts that as a failed response, as the
// proxy's 502 at EOF.
constexpr std::string_view kInterimThatCloses = "\x09\x80HTTP/1.0 100 O\r\n\r\no#\r\n\r\nd\n\n";

// The same with Connection: close on HTTP/1.1; llhttp clears that flag when the message completes.
constexpr std::string_view kInterimWithConnectionClose =
    "\x09\x80HTTP/1.1 100\r\nConnection:close\r\n\r\nB\r\n\r\n";

TEST(FuzzRegressions, NothingIsRelayedAfterAnInterimThatCloses) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kInterimThatCloses), 0);
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kInterimWithConnectionClose), 0);
}

// Found by request_fuzz (a harness bug): an empty close-delimited body relayed to an HTTP/1.0 client ends at
// EOF, and the client-side re-parse must accept llhttp_finish reporting the pause of on_message_complete.
constexpr std::string_view kEmptyBodyUntilClose =
    "/+HTTP/1.1 307 "
    "Nag\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x00\x00\x00"
    "\x00\x00\x00\x00\x00.\x00\x00"
    "30\x0d\x0a\x0d\x0a"sv;  // sv: the bytes include NULs

TEST(FuzzRegressions, EmptyBodyUntilCloseReparses) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kEmptyBodyUntilClose), 0);
}

// Found by request_fuzz (a harness bug, kept so the harness stays right): a close-delimited body re-chunked
// toward an HTTP/1.1 client has chunk boundaries that follow the upstream's reads; only the de-framed body
// must not depend on them.
constexpr std::string_view kRechunkedUntilClose =
    "\x09\x80HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\nT / HTTP/1.1\r\n"
    "Host: a.test\r\nHost: b.tes\n";

TEST(FuzzRegressions, RechunkedBodyDependsOnlyOnItsBytes) {
    EXPECT_EQ(replay(edgeguard::fuzz::request::one_input, kRechunkedUntilClose), 0);
}

TEST(FuzzRegressions, RequestSeedsPass) {
    EXPECT_GT(replay_seeds("request_fuzz", edgeguard::fuzz::request::one_input), 100u);
}

// --- filter_fuzz, config_fuzz, decode_fuzz
// ------------------------------------------------------------------

// Found by filter_fuzz (a harness bug): a replay body with an integer beyond 64 bits is valid JSON that the
// filter forwards (rewriting an e-mail elsewhere in it), but simdjson's DOM parser, first used to check the
// rewritten body, refuses such integers. The check is now a plain RFC 8259 grammar.
constexpr std::string_view kBigIntegerInRewrittenBody =
    "\x02\x03[{\"event\":\"$snapshot\",\"propertip=ies\":{\"$spshot_data\":[{\"typbe\":1,\"data\":{\"node\":"
    "{\"type\":3,\"textContent\":\"call +79123456789\"}}},{\"type\":3,\"data\":{\"source\":"
    "1111111111111111111111111110,\"texts\":[{\"id\":1,\"value\":\"a@b.example\"}]}}]}}]";

TEST(FuzzRegressions, BigIntegerInRewrittenBodyIsValidJson) {
    edgeguard::fuzz::filter::initialize();
    EXPECT_EQ(replay(edgeguard::fuzz::filter::one_input, kBigIntegerInRewrittenBody), 0);
}

TEST(FuzzRegressions, JsonCheckerFollowsTheGrammar) {
    using edgeguard::fuzz::filter::is_valid_json;
    for (std::string_view ok :
         {"0", "-1.5e+3", "123456789012345678901234567890", "\"a\\u00e9\\n\"", "[]", "{}",
          " [1, {\"a\": [true, false, null]}, \"x\"] ", "{\"a\":{\"b\":{}},\"c\":[[]]}"}) {
        EXPECT_TRUE(is_valid_json(ok)) << ok;
    }
    for (std::string_view bad :
         {"", "01", "1.", "-", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "[1 2]", "{1:2}", "\"a", "\"\\x\"",
          "\"\\u12\"", "tru", "[", "]", "{}{}", "[1]]", "\"\x01\""}) {
        EXPECT_FALSE(is_valid_json(bad)) << bad;
    }
}

TEST(FuzzRegressions, FilterSeedsPass) {
    edgeguard::fuzz::filter::initialize();
    EXPECT_GT(replay_seeds("filter_fuzz", edgeguard::fuzz::filter::one_input), 0u);
}

TEST(FuzzRegressions, MultipartSeedsPass) {
    edgeguard::fuzz::multipart::initialize();
    EXPECT_GT(replay_seeds("multipart_fuzz", edgeguard::fuzz::multipart::one_input), 0u);
}

TEST(FuzzRegressions, OtlpSeedsPass) {
    edgeguard::fuzz::otlp::initialize();
    EXPECT_GT(replay_seeds("otlp_fuzz", edgeguard::fuzz::otlp::one_input), 0u);
}

TEST(FuzzRegressions, ConfigSeedsPass) {
    edgeguard::fuzz::config::initialize();
    EXPECT_GT(replay_seeds("config_fuzz", edgeguard::fuzz::config::one_input), 0u);
}

// Found by filter_fuzz: on the flags profile "k@a.co" glued to "8@e.om" was kept while "8@e.om"
// was redacted, which unglued it, so a second pass redacted it. Byte 0 picks flags, byte 1 /flags/ + JSON.
constexpr std::string_view kGluedEmails = "\x01\x0c{\"k@a.co8@e.om\":{}}";

TEST(FuzzRegressions, GluedEmailsFilterTwiceEqualsOnce) {
    edgeguard::fuzz::filter::initialize();
    EXPECT_EQ(replay(edgeguard::fuzz::filter::one_input, kGluedEmails), 0);
}

}  // namespace
