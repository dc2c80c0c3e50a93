// gzip_inflate has two paths: libdeflate for a well-formed member whose trailer size fits under the cap,
// zlib streaming for everything else. These tests pin that both give the same answers: the client-supplied
// trailer (ISIZE) is only a size hint, and every malformed member still gets zlib's status.
#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <string>
#include <variant>

#include "filters/decode/gzip.h"

namespace edgeguard::privacy {
namespace {

std::string inflated(const DecodeResult<std::string>& r) {
    const auto* s = std::get_if<std::string>(&r);
    return s ? *s : std::string("<error: ") + std::get<DecodeError>(r).message + ">";
}

int status_of(const DecodeResult<std::string>& r) {
    const auto* e = std::get_if<DecodeError>(&r);
    return e ? e->status : 200;
}

// Text that compresses like a real batch (repeated keys, varying values).
std::string batch_like(size_t bytes) {
    std::mt19937 rnd(11);
    std::string s = "[";
    while (s.size() < bytes) {
        s += R"({"event":"$screen","properties":{"$screen_name":"Home","n":)" + std::to_string(rnd() % 100000) +
             R"(,"$os":"Android"}},)";
    }
    s.resize(bytes);
    return s;
}

void put_le32(std::string& gz, size_t at, uint32_t v) {
    for (int i = 0; i < 4; ++i) gz[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

TEST(GzipInflate, RoundTripsEverySizeUnderTheCap) {
    for (size_t n : {size_t{0}, size_t{1}, size_t{100}, size_t{65536}, size_t{300000}}) {
        const std::string text = batch_like(n);
        EXPECT_EQ(inflated(gzip_inflate(gzip_deflate(text), 1 << 20)), text) << n;
        EXPECT_EQ(inflated(gzip_inflate(gzip_deflate(text), n)), text) << "cap exactly the size " << n;
        if (n > 0) {
            EXPECT_EQ(status_of(gzip_inflate(gzip_deflate(text), n - 1)), 413) << n;
        }
    }
}

TEST(GzipInflate, ATrailerThatUnderstatesTheSizeIsRejectedNotTruncated) {
    const std::string text = batch_like(50000);
    std::string gz = gzip_deflate(text);
    put_le32(gz, gz.size() - 4, 1000);  // claims 1000 bytes: a buffer of 1000 must not be overrun
    EXPECT_EQ(status_of(gzip_inflate(gz, 1 << 20)), 400);
}

TEST(GzipInflate, ATrailerThatOverstatesTheSizeIsRejected) {
    const std::string text = batch_like(50000);
    std::string gz = gzip_deflate(text);
    put_le32(gz, gz.size() - 4, 60000);  // under the cap, but wrong
    EXPECT_EQ(status_of(gzip_inflate(gz, 1 << 20)), 400);
    put_le32(gz, gz.size() - 4, 0xFFFFFFF0u);  // over the cap: the zlib path answers, still a bad length
    EXPECT_EQ(status_of(gzip_inflate(gz, 1 << 20)), 400);
}

TEST(GzipInflate, ABadCrcIsRejected) {
    std::string gz = gzip_deflate(batch_like(20000));
    gz[gz.size() - 8] = static_cast<char>(gz[gz.size() - 8] ^ 0x01);
    EXPECT_EQ(status_of(gzip_inflate(gz, 1 << 20)), 400);
}

TEST(GzipInflate, BytesAfterTheMemberAreRejected) {
    const std::string gz = gzip_deflate(batch_like(20000));
    EXPECT_EQ(status_of(gzip_inflate(gz + gz, 1 << 20)), 400);  // a second member
    EXPECT_EQ(status_of(gzip_inflate(gz + std::string(8, '\0'), 1 << 20)), 400);
}

// A header with FHCRC: zlib checks the CRC-16, so a wrong one is a 400 whichever path would be fastest.
TEST(GzipInflate, AHeaderCrcIsChecked) {
    const std::string text = batch_like(20000);
    const std::string plain = gzip_deflate(text);
    std::string header = plain.substr(0, 10);
    header[3] = static_cast<char>(header[3] | 0x02);
    const uLong crc = crc32(0, reinterpret_cast<const Bytef*>(header.data()), static_cast<uInt>(header.size()));
    std::string good = header;
    good.push_back(static_cast<char>(crc & 0xff));
    good.push_back(static_cast<char>((crc >> 8) & 0xff));
    good += plain.substr(10);
    EXPECT_EQ(inflated(gzip_inflate(good, 1 << 20)), text);
    std::string bad = good;
    bad[10] = static_cast<char>(bad[10] ^ 0x55);
    EXPECT_EQ(status_of(gzip_inflate(bad, 1 << 20)), 400);
}

TEST(GzipInflate, TruncationAnywhereIsRejected) {
    const std::string gz = gzip_deflate(batch_like(5000));
    for (size_t cut = 0; cut < gz.size(); cut += 7) {
        EXPECT_EQ(status_of(gzip_inflate(gz.substr(0, cut), 1 << 20)), 400) << "cut at " << cut;
    }
}

}  // namespace
}  // namespace edgeguard::privacy
