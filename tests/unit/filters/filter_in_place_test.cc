// A gzip body is inflated straight into the thread's padded buffer and walked where it lies
// (filters/decode/padded_text.h); a plain body is copied into the walker's own buffer first. The two paths
// must give the same verdict, rewritten body, query and audit for the same JSON, also when the buffer held a
// longer body before (nothing of it may be read past the new text), and a buffer grown past what a worker
// keeps is freed after the request.
#include <gtest/gtest.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "filters/decode/gzip.h"
#include "filters/decode/payload_decoder.h"
#include "filters/event_walker.h"
#include "filters/walker/walker.h"
#include "tests/unit/filters/batch_generator.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy::testing {
namespace {

struct Result {
    FilterOutput::Verdict verdict;
    int status;
    std::string body;
    std::string query;
    std::vector<std::string> audit;
    bool operator==(const Result&) const = default;
};

Result result_of(const FilterOutput& out) {
    Result r{out.verdict, out.status, out.body, out.query, {}};
    for (const auto& a : out.audit)
        r.audit.push_back(a.rule_id + " " + a.path + " " + a.action + " " + std::to_string(a.count));
    return r;
}

// Plain and gzip bodies of the same generated batches, alternated so the padded buffer is reused with
// shorter and longer texts.
void expect_same_as_plain(const RuleSet& rules, std::string_view profile, uint64_t seed) {
    BatchGenerator gen(seed);
    size_t rewritten = 0, unchanged = 0, rejected = 0;
    for (int i = 0; i < 300; ++i) {
        const std::string body = gen.next();
        const std::string gz = gzip_deflate(body, 6);
        const Result plain =
            result_of(run(rules, profile, body, "text/plain", "", "", "/batch/", IpPolicy::Truncate));
        const Result in_place =
            result_of(run(rules, profile, gz, "text/plain", "", "", "/batch/", IpPolicy::Truncate));
        ASSERT_EQ(plain, in_place) << "profile " << profile << ", body " << i << ": " << body;
        rewritten += plain.verdict == FilterOutput::Verdict::Rewritten;
        unchanged += plain.verdict == FilterOutput::Verdict::Unchanged;
        rejected += plain.verdict == FilterOutput::Verdict::Rejected;
    }
    // Every verdict was reached, or the comparison proves little.
    EXPECT_GT(rewritten, 0u) << profile;
    EXPECT_GT(unchanged, 0u) << profile;
    EXPECT_GT(rejected, 0u) << profile;
}

TEST(FilterInPlace, GzipWalkedInPlaceGivesWhatThePlainBodyGives) {
    auto shipped = default_rules();
    ASSERT_TRUE(shipped);
    expect_same_as_plain(*shipped, "events", 21);
    expect_same_as_plain(*shipped, "flags", 22);
    auto test = test_rules();
    ASSERT_TRUE(test);
    expect_same_as_plain(*test, "events", 23);
    expect_same_as_plain(*test, "report", 24);
}

TEST(FilterInPlace, GzipBodyIsDecodedIntoThePaddedBuffer) {
    const std::string json = R"({"event":"e","properties":{"a":"b"}})";
    const std::string gz = gzip_deflate(json, 6);
    FilterInput in;
    in.path = "/batch/";
    in.body = gz;
    PaddedText buffer;
    const auto outcome = decode_payload(in, DecodeLimits::for_wire_limit(1 << 20), &buffer);
    const auto* payload = std::get_if<DecodedPayload>(&outcome);
    ASSERT_NE(payload, nullptr);
    EXPECT_TRUE(payload->padded);
    EXPECT_EQ(payload->json(), json);
    EXPECT_EQ(payload->json().data(), buffer.text().data());
    for (size_t i = 0; i < PaddedText::kPadding; ++i)
        ASSERT_EQ(payload->json().data()[json.size() + i], '\0') << i;
}

// A text that the fast path does not take (a header CRC makes gzip_inflate use zlib) is decoded as before,
// into storage of its own.
TEST(FilterInPlace, GzipWithHeaderCrcIsDecodedIntoStorage) {
    const std::string json = R"({"event":"e"})";
    std::string gz = gzip_deflate(json, 6);
    // FHCRC: a CRC16 of the 10 header bytes follows them (the low 16 bits of their CRC-32).
    gz[3] = static_cast<char>(gz[3] | 0x02);
    const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(gz.data()), 10);
    gz.insert(10, std::string{static_cast<char>(crc & 0xff), static_cast<char>((crc >> 8) & 0xff)});
    FilterInput in;
    in.path = "/batch/";
    in.body = gz;
    PaddedText buffer;
    const auto outcome = decode_payload(in, DecodeLimits::for_wire_limit(1 << 20), &buffer);
    const auto* payload = std::get_if<DecodedPayload>(&outcome);
    ASSERT_NE(payload, nullptr);
    EXPECT_FALSE(payload->padded);
    EXPECT_EQ(payload->json(), json);
}

TEST(FilterInPlace, BufferGrownPastTheWalkersLimitIsFreed) {
    PaddedText& buffer = thread_decode_buffer();
    buffer.prepare(walk::kScratchParserLimit + 1);
    buffer.finish(walk::kScratchParserLimit + 1);
    release_decode_buffer_if_large();
    EXPECT_EQ(buffer.capacity(), 0u);
    buffer.prepare(1024);
    buffer.finish(1024);
    release_decode_buffer_if_large();
    EXPECT_GE(buffer.capacity(), 1024u);
}

}  // namespace
}  // namespace edgeguard::privacy::testing
