// Payload decoders: every corpus body decodes to the JSON capture would see; bombs, truncation and
// garbage fail with the right status and bounded memory.
#include <gtest/gtest.h>
#include <simdjson.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "filters/decode/base64.h"
#include "filters/decode/gzip.h"
#include "filters/decode/latin1.h"
#include "filters/decode/lz_string.h"
#include "tests/unit/filters/lz_string_compressor.h"
#include "filters/decode/payload_decoder.h"
#include "filters/decode/replay_compression.h"
#include "filters/decode/url_form.h"

namespace edgeguard::privacy {
namespace {

namespace fs = std::filesystem;

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

fs::path corpus_dir() {
    return fs::path(EDGEGUARD_SHARED_DIR) / "corpus";
}

#define SKIP_WITHOUT_CORPUS() \
    if (!fs::exists(corpus_dir() / "manifest.json")) GTEST_SKIP() << "no ../shared/corpus"

bool is_valid_json(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    return parser.parse(padded).error() == simdjson::SUCCESS;
}

// Whitespace outside strings removed: how JSON.stringify output compares with a pretty-printed fixture.
std::string minified(std::string_view text) {
    std::string out(text.size(), '\0');
    size_t len = 0;
    EXPECT_EQ(simdjson::minify(text.data(), text.size(), out.data(), len), simdjson::SUCCESS);
    out.resize(len);
    return out;
}

const DecodedPayload& ok(const DecodeOutcome& outcome) {
    if (const auto* e = std::get_if<DecodeError>(&outcome)) {
        ADD_FAILURE() << "decode failed: " << e->status << " " << e->code << " " << e->message;
        static const DecodedPayload empty;
        return empty;
    }
    return std::get<DecodedPayload>(outcome);
}

int status_of(const DecodeOutcome& outcome) {
    if (const auto* e = std::get_if<DecodeError>(&outcome)) return e->status;
    return 200;
}

template <class T>
const T& value_of(const DecodeResult<T>& r) {
    if (const auto* e = std::get_if<DecodeError>(&r)) {
        ADD_FAILURE() << "error: " << e->status << " " << e->message;
        static const T empty{};
        return empty;
    }
    return std::get<T>(r);
}

template <class T>
int status_of(const DecodeResult<T>& r) {
    if (const auto* e = std::get_if<DecodeError>(&r)) return e->status;
    return 200;
}

struct Request {
    std::string method = "POST";
    std::string path = "/batch/";
    std::string query;
    std::string content_type;
    std::string content_encoding;
    std::string body;

    FilterInput input() const {
        FilterInput in;
        in.method = method;
        in.path = path;
        in.query = query;
        in.content_type = content_type;
        in.content_encoding = content_encoding;
        in.body = body;
        return in;
    }
    // "/e/?a=b" -> path + query
    void set_target(std::string_view target) {
        const size_t q = target.find('?');
        path = std::string(target.substr(0, q));
        query = q == std::string_view::npos ? "" : std::string(target.substr(q + 1));
    }
};

const DecodeLimits kLimits = DecodeLimits::for_wire_limit(20 * 1024 * 1024);

DecodeOutcome decode(const Request& r, const DecodeLimits& limits = kLimits) {
    return decode_payload(r.input(), limits);
}

// ---------------------------------------------------------------------------------------------- base64

TEST(DecodeBase64, RoundTripsEveryLength) {
    std::string bytes;
    for (int n = 0; n < 64; ++n) {
        EXPECT_EQ(value_of(base64_decode(base64_encode(bytes))), bytes);
        EXPECT_EQ(
            value_of(base64_decode(base64_encode(bytes, Base64Alphabet::UrlSafe), Base64Alphabet::UrlSafe)),
            bytes);
        bytes.push_back(static_cast<char>(n * 37 + 250));
    }
}

TEST(DecodeBase64, KnownVectors) {
    EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
    EXPECT_EQ(base64_encode("fo"), "Zm8=");
    EXPECT_EQ(base64_encode("\xfb\xff", Base64Alphabet::UrlSafe), "-_8");
    EXPECT_EQ(value_of(base64_decode("Zm9vYg==")), "foob");
}

TEST(DecodeBase64, StrictRejects) {
    EXPECT_EQ(status_of(base64_decode("Zm9vYg=")), 400);    // padding incomplete
    EXPECT_EQ(status_of(base64_decode("Zm9vYg")), 400);     // standard needs padding
    EXPECT_EQ(status_of(base64_decode("Zm9=vYg=")), 400);   // padding in the middle
    EXPECT_EQ(status_of(base64_decode("Zm9vYh==")), 400);   // non-zero leftover bits
    EXPECT_EQ(status_of(base64_decode("Zm9v Yg==")), 400);  // space
    EXPECT_EQ(status_of(base64_decode("Zm9-Yg==")), 400);   // url-safe char in standard
    EXPECT_EQ(status_of(base64_decode("Zm9vY===")), 400);   // three padding chars
    EXPECT_EQ(status_of(base64_decode("Z", Base64Alphabet::UrlSafe)), 400);
}

TEST(DecodeBase64, CaptureHeuristic) {
    EXPECT_TRUE(looks_like_strict_base64("eyJhIjoxfQ=="));
    EXPECT_FALSE(looks_like_strict_base64("eyJhIjoxfQ="));
    EXPECT_FALSE(looks_like_strict_base64("{\"a\":1}"));
    EXPECT_FALSE(looks_like_strict_base64(""));
}

// -------------------------------------------------------------------------------------------- url form

TEST(DecodeUrlForm, PercentDecodingAndPlus) {
    EXPECT_EQ(percent_decode("a+b%2Bc%3d%zz%4"), "a b+c=%zz%4");
    EXPECT_EQ(percent_decode("a+b", /*plus_is_space=*/false), "a+b");
}

TEST(DecodeUrlForm, FindsValuesAndRefusesDuplicates) {
    auto v = find_form_value("ver=1&data=abc&compression=lz64", "data");
    ASSERT_TRUE(std::holds_alternative<std::optional<std::string_view>>(v));
    EXPECT_EQ(std::get<std::optional<std::string_view>>(v).value(), "abc");
    EXPECT_FALSE(std::get<std::optional<std::string_view>>(find_form_value("ver=1", "data")).has_value());
    EXPECT_EQ(status_of(find_form_value("data=a&data=b", "data")), 400);
    // A key spelled with escapes is the same key to the service: still a duplicate.
    EXPECT_EQ(status_of(find_form_value("data=a&d%61ta=b", "data")), 400);
}

TEST(DecodeUrlForm, CaptureFormHeuristic) {
    EXPECT_TRUE(looks_like_form("data=abc"));
    EXPECT_TRUE(looks_like_form("ver=1&compression=lz64"));
    EXPECT_FALSE(looks_like_form("xdata=abc"));
    EXPECT_FALSE(looks_like_form("{\"data=\":1}"));
    EXPECT_FALSE(looks_like_form(std::string(200, 'a') + "&data=1"));  // beyond the first 128 bytes
}

TEST(DecodeUrlForm, RepairsBase64Spaces) {
    std::string b64 = "ab c+/=";
    EXPECT_TRUE(repair_base64_spaces(b64));
    EXPECT_EQ(b64, "ab+c+/=");
    std::string json = "{\"a\": 1}";
    EXPECT_FALSE(repair_base64_spaces(json));
    EXPECT_EQ(json, "{\"a\": 1}");
}

TEST(DecodeUrlForm, QueryWithoutKeys) {
    EXPECT_EQ(query_without_keys("ip=1&data=x&_=5&compression=lz64&ver=1", {"data", "compression"}),
              "ip=1&_=5&ver=1");
    EXPECT_EQ(query_without_keys("data=x", {"data"}), "");
    EXPECT_EQ(query_without_keys("", {"data"}), "");
}

// ------------------------------------------------------------------------------------------------ gzip

// A gzip member of `megabytes` MiB of zeros, built without deflating them all: one raw-deflate block of
// 1 MiB zeros ended by a full flush (so it references nothing before it) repeated, then an empty final
// block and the trailer (CRC-32 combined arithmetically, length mod 2^32).
std::string gzip_of_zero_megabytes(uint32_t megabytes) {
    const std::string zeros(1 << 20, '\0');
    z_stream zs{};
    EXPECT_EQ(deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY), Z_OK);
    std::string block(64 << 10, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
    zs.avail_in = static_cast<uInt>(zeros.size());
    zs.next_out = reinterpret_cast<Bytef*>(block.data());
    zs.avail_out = static_cast<uInt>(block.size());
    EXPECT_EQ(deflate(&zs, Z_FULL_FLUSH), Z_OK);
    EXPECT_EQ(zs.avail_in, 0u);
    block.resize(block.size() - zs.avail_out);
    deflateEnd(&zs);

    const uLong crc_1mib =
        crc32(0, reinterpret_cast<const Bytef*>(zeros.data()), static_cast<uInt>(zeros.size()));
    uLong crc = crc32(0, nullptr, 0);
    std::string out("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10);
    for (uint32_t i = 0; i < megabytes; ++i) {
        out += block;
        crc = crc32_combine(crc, crc_1mib, static_cast<z_off_t>(zeros.size()));
    }
    out += std::string("\x03\x00", 2);  // final fixed-Huffman block holding only end-of-block
    const uint64_t total = uint64_t{megabytes} << 20;
    for (const uint32_t v : {static_cast<uint32_t>(crc), static_cast<uint32_t>(total & 0xFFFFFFFF)}) {
        for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((v >> (8 * b)) & 0xFF));
    }
    return out;
}

TEST(DecodeGzip, HandBuiltZeroStreamIsValidGzip) {
    EXPECT_EQ(value_of(gzip_inflate(gzip_of_zero_megabytes(3), 3 << 20)), std::string(3 << 20, '\0'));
}

TEST(DecodeGzip, RoundTrip) {
    const std::string text = R"({"event":"$pageview","properties":{"$current_url":"https://example.com/é"}})";
    const std::string gz = gzip_deflate(text);
    EXPECT_TRUE(has_gzip_magic(gz));
    EXPECT_EQ(value_of(gzip_inflate(gz, 1 << 20)), text);
    EXPECT_EQ(value_of(gzip_inflate(gzip_deflate(""), 16)), "");
}

TEST(DecodeGzip, ExactCapIsAllowedOneMoreByteIsNot) {
    const std::string text(1000, 'x');
    EXPECT_EQ(value_of(gzip_inflate(gzip_deflate(text), 1000)).size(), 1000u);
    EXPECT_EQ(status_of(gzip_inflate(gzip_deflate(text), 999)), 413);
}

TEST(DecodeGzip, TruncatedCorruptAndTrailingAre400) {
    std::string text;
    for (int i = 0; i < 2000; ++i) text += "{\"i\":" + std::to_string(i * 7919 % 1000) + "},";
    const std::string gz = gzip_deflate(text);
    for (const size_t cut : {size_t{1}, size_t{5}, size_t{10}, gz.size() / 2, gz.size() - 4, gz.size() - 1}) {
        EXPECT_EQ(status_of(gzip_inflate(gz.substr(0, cut), 1 << 20)), 400) << "cut at " << cut;
    }
    std::string corrupt = gz;
    corrupt[corrupt.size() - 6] ^= 0x55;  // CRC32 mismatch
    EXPECT_EQ(status_of(gzip_inflate(corrupt, 1 << 20)), 400);
    EXPECT_EQ(status_of(gzip_inflate(gz + "x", 1 << 20)), 400);
    EXPECT_EQ(status_of(gzip_inflate("", 1 << 20)), 400);
}

// AddressSanitizer's shadow memory and quarantine inflate RSS; the memory bound is only asserted without it.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kUnderAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kUnderAsan = true;
#else
constexpr bool kUnderAsan = false;
#endif
#else
constexpr bool kUnderAsan = false;
#endif

// Runs fn in a child and returns the child's peak RSS growth in KiB (ru_maxrss is monotonic, so only a
// fresh process measures one decode).
template <class Fn>
long child_peak_rss_growth_kib(Fn&& fn) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    const pid_t pid = fork();
    if (pid == 0) {
        close(fds[0]);
        rusage before{}, after{};
        getrusage(RUSAGE_SELF, &before);
        const bool ok_result = fn();
        getrusage(RUSAGE_SELF, &after);
        const long growth = ok_result ? after.ru_maxrss - before.ru_maxrss : -2;
        (void)!write(fds[1], &growth, sizeof growth);
        _exit(0);
    }
    close(fds[1]);
    long growth = -1;
    if (read(fds[0], &growth, sizeof growth) != sizeof growth) growth = -1;
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    return growth;
}

TEST(DecodeGzip, OneGigabyteBombIs413WithMemoryBoundedByTheCap) {
    const std::string bomb = gzip_of_zero_megabytes(1024);  // 1 GiB of zeros
    ASSERT_LT(bomb.size(), 2u << 20);
    Request r;
    r.content_type = "text/plain";
    r.body = bomb;

    DecodeLimits tight = kLimits;
    tight.max_decoded_bytes = 16 << 20;
    const long growth = child_peak_rss_growth_kib([&] {
        const auto outcome = decode(r, tight);
        const auto* e = std::get_if<DecodeError>(&outcome);
        return e != nullptr && e->status == 413 && e->code == "payload_too_large";
    });
    ASSERT_GE(growth, 0) << "bomb was not refused with 413";
    std::cout << "[ info ] 1 GiB bomb (" << bomb.size() << " B wire), 16 MiB cap: peak RSS +" << growth
              << " KiB\n";
    if (!kUnderAsan) {
        EXPECT_LT(growth, (16 + 8) * 1024) << "peak RSS grew by " << growth << " KiB for a 16 MiB cap";
    }

    // Default route limits (20 MB wire): refused by the ratio/size cap, never near 1 GB.
    const long default_growth = child_peak_rss_growth_kib([&] { return status_of(decode(r)) == 413; });
    ASSERT_GE(default_growth, 0);
    std::cout << "[ info ] same bomb, default 100 MiB cap: peak RSS +" << default_growth << " KiB\n";
    if (!kUnderAsan) {
        EXPECT_LT(default_growth, (100 + 16) * 1024);
    }
}

TEST(DecodeGzip, RatioCapRefusesSmallBombsUnderTheSizeCap) {
    Request r;
    r.content_type = "text/plain";
    r.body = gzip_of_zero_megabytes(8);  // ~8 KB that inflates 1000x, far under the 100 MB size cap
    const auto outcome = decode(r);
    EXPECT_EQ(status_of(outcome), 413);
    // A small payload with a high ratio but under the floor is fine.
    r.body = gzip_deflate("[" + std::string(100000, ' ') + "]");
    EXPECT_EQ(ok(decode(r)).json().size(), 100002u);
}

// ------------------------------------------------------------------------------------------- lz-string

TEST(DecodeLzString, RoundTripsUnicodeIncludingSurrogatePairs) {
    const std::string texts[] = {
        "",
        "a",
        R"({"event":"$pageview","properties":{"name":"Иван Иванович","emoji":"😀👍🏽","cjk":"漢字","x":"ababababab"}})",
        std::string(5000, 'a'),
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaabababababababababababab😀😀😀😀😀😀",
    };
    for (const auto& text : texts) {
        const std::string lz = lz_string_compress_to_base64(text);
        if (text.empty()) {
            EXPECT_EQ(value_of(lz_string_decompress_from_base64(lz, 1 << 20)), "");
            continue;
        }
        EXPECT_EQ(value_of(lz_string_decompress_from_base64(lz, 1 << 20)), text) << text.substr(0, 40);
    }
}

TEST(DecodeLzString, LoneSurrogatesAre400) {
    const std::u16string lone_high =
        u"ab\xD83D"
        u"cd";
    const std::u16string lone_low =
        u"ab\xDE00"
        u"cd";
    const std::u16string high_at_end = u"abc\xD83D";
    for (const auto& s : {lone_high, lone_low, high_at_end}) {
        const auto r =
            lz_string_decompress_from_base64(lz_string_compress_to_base64(std::u16string_view(s)), 1 << 20);
        EXPECT_EQ(status_of(r), 400);
    }
    const std::u16string pair =
        u"ab\xD83D\xDE00"
        u"cd";
    EXPECT_EQ(value_of(lz_string_decompress_from_base64(
                  lz_string_compress_to_base64(std::u16string_view(pair)), 100)),
              "ab😀cd");
}

TEST(DecodeLzString, GarbageTruncationAndCaps) {
    EXPECT_EQ(status_of(lz_string_decompress_from_base64("", 100)), 400);
    EXPECT_EQ(status_of(lz_string_decompress_from_base64("{\"a\":1}", 100)), 400);
    const std::string lz =
        lz_string_compress_to_base64(std::string_view(R"({"a":"some text that is long enough"})"));
    EXPECT_EQ(status_of(lz_string_decompress_from_base64(lz.substr(0, lz.size() / 2), 1 << 20)), 400);
    // 256 KB of 'a' compresses to about 1 KB (lz-string's runs grow by one each step); a 16 KB cap stops it.
    const std::string bomb = lz_string_compress_to_base64(std::string(256 << 10, 'a'));
    EXPECT_LT(bomb.size(), 4u << 10);
    EXPECT_EQ(status_of(lz_string_decompress_from_base64(bomb, 16 << 10)), 413);
    EXPECT_EQ(value_of(lz_string_decompress_from_base64(bomb, 256 << 10)).size(), 256u << 10);
}

TEST(DecodeLzString, RandomTextNeverCrashes) {
    std::mt19937 rng(42);
    const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    for (int i = 0; i < 2000; ++i) {
        std::string s(rng() % 200 + 1, 'A');
        for (auto& c : s) c = alphabet[rng() % alphabet.size()];
        const auto r = lz_string_decompress_from_base64(s, 1 << 16);
        EXPECT_TRUE(status_of(r) == 200 || status_of(r) == 400 || status_of(r) == 413);
    }
}

// --------------------------------------------------------------------------------- latin-1 and replay

TEST(DecodeLatin1, RoundTripsAllBytes) {
    std::string bytes;
    for (int b = 0; b < 256; ++b) bytes.push_back(static_cast<char>(b));
    const std::string text = bytes_to_latin1(bytes);
    EXPECT_EQ(text.size(), 128u + 256u);
    EXPECT_EQ(value_of(latin1_to_bytes(text)), bytes);
    EXPECT_EQ(status_of(latin1_to_bytes("\xC4\x80")), 400);  // U+0100
    EXPECT_EQ(status_of(latin1_to_bytes("\xC3")), 400);      // truncated sequence
}

TEST(DecodeReplay, Latin1GzipRoundTripAndJsonLiteral) {
    const std::string json = R"([{"id":1,"value":"jane.doe@example.com"}])";
    const std::string carried = encode_latin1_gzip(json);
    EXPECT_EQ(value_of(decode_latin1_gzip(carried)), json);

    // The literal is what JSON.stringify would write: a JSON string whose value is `carried`.
    const std::string literal = encode_latin1_gzip_json_literal(json);
    simdjson::dom::parser parser;
    std::string_view unescaped;
    ASSERT_EQ(parser.parse(simdjson::padded_string(literal)).get(unescaped), simdjson::SUCCESS);
    EXPECT_EQ(unescaped, carried);
    EXPECT_EQ(value_of(decode_latin1_gzip(unescaped)), json);

    EXPECT_EQ(status_of(decode_latin1_gzip("not gzip")), 400);
    EXPECT_EQ(status_of(decode_latin1_gzip("Ā")), 400);
    EXPECT_EQ(status_of(decode_latin1_gzip(bytes_to_latin1(gzip_deflate("\xff\xfe")))), 400);  // not UTF-8
    EXPECT_EQ(status_of(decode_latin1_gzip(bytes_to_latin1(gzip_of_zero_megabytes(4)), 1 << 20)), 413);
}

// Every compressed field of every cv:"2024-10" item in the corpus replay fixture decodes to JSON, and
// the planted email is inside one of them.
TEST(DecodeReplay, CorpusCv202410FieldsDecode) {
    SKIP_WITHOUT_CORPUS();
    const std::string text =
        read_file(corpus_dir() / "derived/synthetic/replay-cv2024-10__single_replay_event_payload.json");
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    ASSERT_EQ(parser.parse(simdjson::padded_string(text)).get(root), simdjson::SUCCESS);
    int decoded_fields = 0;
    bool found_email = false;
    auto decode_field = [&](simdjson::dom::element field) {
        std::string_view s;
        if (field.get(s) != simdjson::SUCCESS) return;  // uncompressed arrays stay as they are
        const auto inner = decode_latin1_gzip(s);
        ASSERT_EQ(status_of(inner), 200);
        EXPECT_TRUE(is_valid_json(value_of(inner)));
        found_email |= value_of(inner).find("jane.doe@example.com") != std::string::npos;
        ++decoded_fields;
    };
    for (simdjson::dom::element event : root.get_array()) {
        for (simdjson::dom::element item : event["properties"]["$snapshot_data"].get_array()) {
            std::string_view cv;
            if (item["cv"].get(cv) != simdjson::SUCCESS || cv != "2024-10") continue;
            int64_t type = 0;
            ASSERT_EQ(item["type"].get(type), simdjson::SUCCESS);
            if (type == 2) {
                decode_field(item["data"]);
            } else if (type == 3) {
                for (const char* key : {"texts", "attributes", "adds", "removes"}) {
                    simdjson::dom::element field;
                    if (item["data"][key].get(field) == simdjson::SUCCESS) decode_field(field);
                }
            }
        }
    }
    EXPECT_GT(decoded_fields, 0);
    EXPECT_TRUE(found_email);
}

// ----------------------------------------------------------------------------------- decode_payload

TEST(DecodePayload, PlainJsonIsNotCopied) {
    Request r;
    r.content_type = "application/json";
    r.body = R"({"api_key":"phc_x","batch":[]})";
    const auto outcome = decode(r);
    const auto& p = ok(outcome);
    EXPECT_FALSE(p.decoded);
    EXPECT_EQ(p.json().data(), r.body.data());
    EXPECT_EQ(p.chain, "");
}

TEST(DecodePayload, QueryDataIsThePayload) {
    const std::string json = R"({"event":"e","distinct_id":"d+1"})";
    Request r;
    r.method = "GET";
    r.path = "/e/";
    r.query = "ip=1&data=" + base64_encode(json) + "&_=1";  // raw '+' in a query means space: repaired
    const auto outcome = decode(r);
    const auto& p = ok(outcome);
    EXPECT_EQ(p.source, DecodedPayload::Source::QueryData);
    EXPECT_EQ(p.json(), json);
    EXPECT_EQ(p.chain, "query+base64");
    r.query = "data=&ip=1";  // empty data: the body is the payload
    r.body = json;
    EXPECT_EQ(ok(decode(r)).source, DecodedPayload::Source::Body);
    // Both a query payload and a body: refused, whichever one the service would pick.
    r.query = "data=" + base64_encode(json);
    EXPECT_EQ(status_of(decode(r)), 400);
}

TEST(DecodePayload, FormWithLz64AndBase64AndPlusRepair) {
    const std::string json = R"({"event":"$pageview","properties":{"a":"ü?~~~>>>"}})";
    Request r;
    r.path = "/e/";
    r.content_type = "application/x-www-form-urlencoded";
    r.body = "data=" + base64_encode(json) + "&ver=1";  // unescaped '+' and '/' as a sloppy client sends
    EXPECT_EQ(ok(decode(r)).json(), json);
    EXPECT_EQ(ok(decode(r)).chain, "form+base64");

    r.body = "data=" + lz_string_compress_to_base64(json) + "&compression=lz64";
    EXPECT_EQ(ok(decode(r)).json(), json);
    EXPECT_EQ(ok(decode(r)).compression, DecodedPayload::Compression::LzString);

    r.body = "data=" + base64_encode(json) + "&data=" + base64_encode("{}");
    EXPECT_EQ(status_of(decode(r)), 400);
    r.body = "ver=1";
    EXPECT_EQ(status_of(decode(r)), 400);
    r.body = "{\"not\":\"a form\"}";
    EXPECT_EQ(status_of(decode(r)), 400);  // form Content-Type but no form
}

TEST(DecodePayload, GzipByMagicHintsNotTrusted) {
    const std::string json = R"([{"event":"e"}])";
    Request r;
    r.path = "/e/";
    r.content_type = "text/plain";
    r.body = gzip_deflate(json);
    EXPECT_EQ(ok(decode(r)).json(), json);  // no hint at all (current posthog-js)
    r.query = "compression=gzip-js";
    r.body = json;  // a hint on a non-gzip body: read as text
    EXPECT_EQ(ok(decode(r)).json(), json);
}

TEST(DecodePayload, ContentEncodingPolicy) {
    const std::string json = R"({"batch":[]})";
    Request r;
    r.content_type = "application/json";
    r.content_encoding = "gzip";
    r.body = gzip_deflate(json);
    EXPECT_EQ(ok(decode(r)).json(), json);
    for (const char* unsupported : {"br", "deflate", "zstd", "gzip, br", "compress"}) {
        r.content_encoding = unsupported;
        const auto outcome = decode(r);
        ASSERT_EQ(status_of(outcome), 415) << unsupported;
        EXPECT_EQ(std::get<DecodeError>(outcome).code, "unsupported_content_encoding");
    }
    r.content_encoding = "identity";
    r.body = json;
    EXPECT_EQ(ok(decode(r)).json(), json);
}

TEST(DecodePayload, LegacyPathsUnwrapBase64Once) {
    const std::string json = R"({"event":"e"})";
    Request r;
    r.content_type = "text/plain";
    r.body = gzip_deflate(base64_encode(json));
    r.path = "/e/";
    EXPECT_EQ(ok(decode(r)).json(), json);
    r.path = "/batch/";  // not legacy: capture leaves the base64 text, so do we
    EXPECT_EQ(ok(decode(r)).json(), base64_encode(json));
}

TEST(DecodePayload, UndecodableInputs) {
    Request r;
    r.content_type = "text/plain";
    r.body = "";
    EXPECT_EQ(status_of(decode(r)), 400);
    r.body = "\xff\xfe\xfd garbage";
    EXPECT_EQ(status_of(decode(r)), 400);  // not UTF-8
    r.body = gzip_deflate(R"({"a":1})").substr(0, 12);
    EXPECT_EQ(status_of(decode(r)), 400);  // truncated gzip
    r.query = "compression=lz64";
    r.body = "!!!!";
    EXPECT_EQ(status_of(decode(r)), 400);  // bad lz64 alphabet
    r.query = "data=a&data=b";
    EXPECT_EQ(status_of(decode(r)), 400);  // duplicate query data
}

TEST(DecodePayload, RandomBytesNeverCrashAndFailClosed) {
    std::mt19937 rng(7);
    Request r;
    r.content_type = "text/plain";
    for (int i = 0; i < 3000; ++i) {
        r.body.assign(rng() % 512 + 1, '\0');
        for (auto& c : r.body) c = static_cast<char>(rng());
        if (i % 3 == 0) r.body[0] = '\x1f', r.body[1 % r.body.size()] = '\x8b';
        const auto outcome = decode(r);
        const int s = status_of(outcome);
        EXPECT_TRUE(s == 200 || s == 400 || s == 413) << s;
        if (s == 200) {
            EXPECT_TRUE(simdjson::validate_utf8(ok(outcome).json()));
        }
    }
}

TEST(DecodePayload, FlagsRules) {
    const std::string json = R"({"token":"phc_x","distinct_id":"u","person_properties":{"email":"a@b.c"}})";
    Request r;
    r.path = "/flags/";
    r.query = "v=2";
    r.content_type = "application/x-www-form-urlencoded";
    r.body = "data=" + percent_decode(base64_encode(json), false);
    EXPECT_EQ(ok(decode(r)).json(), json);
    r.body = "data=" + base64_encode(json).substr(0, base64_encode(json).find('='));  // padding added back
    EXPECT_EQ(ok(decode(r)).json(), json);
    r.content_type = "application/json";
    r.body = json;
    EXPECT_FALSE(ok(decode(r)).decoded);
    r.body = base64_encode(json);  // JSON fails -> base64 fallback
    EXPECT_EQ(ok(decode(r)).json(), json);
    r.content_encoding = "gzip";
    r.body = gzip_deflate(json);
    EXPECT_EQ(ok(decode(r)).json(), json);
    r.content_type = "application/xml";
    EXPECT_EQ(status_of(decode(r)), 400);
    EXPECT_EQ(wire_format_for_path("/decide/"), WireFormat::Flags);
    EXPECT_EQ(wire_format_for_path("/flagsmith"), WireFormat::Capture);
}

TEST(DecodePayload, LimitsFromWireLimit) {
    const DecodeLimits l = DecodeLimits::for_wire_limit(20 << 20);
    EXPECT_EQ(l.max_decoded_bytes, 100u << 20);
    EXPECT_EQ(l.output_cap(10), l.ratio_floor_bytes);
    EXPECT_EQ(l.output_cap(100 << 10), 10000u << 10);
    EXPECT_EQ(l.output_cap(20 << 20), 100u << 20);
    Request r;
    r.body = std::string(1000, ' ') + "{}";
    DecodeLimits tiny = l;
    tiny.max_decoded_bytes = 100;
    EXPECT_EQ(status_of(decode(r, tiny)), 413);  // even undecoded text obeys the size cap
}

// ------------------------------------------------------------------------------------------- corpus

// Every JSON file in the corpus (top level and derived) is plain JSON and passes untouched.
TEST(DecodeCorpus, EveryJsonFileDecodesUntouched) {
    SKIP_WITHOUT_CORPUS();
    int count = 0;
    for (const auto& entry : fs::recursive_directory_iterator(corpus_dir())) {
        const std::string name = entry.path().filename().string();
        if (!entry.is_regular_file() || entry.path().extension() != ".json") continue;
        if (name == "manifest.json" || name == "requests_dump.index.json") continue;
        Request r;
        r.content_type = "application/json";
        r.path = name.find("flags") != std::string::npos ? "/flags/" : "/batch/";
        r.body = read_file(entry.path());
        const auto outcome = decode(r);
        const auto& p = ok(outcome);
        EXPECT_TRUE(is_valid_json(p.json())) << name;
        EXPECT_EQ(p.json(), r.body) << name;
        ++count;
    }
    EXPECT_GT(count, 40);
}

TEST(DecodeCorpus, TopLevelGzipBody) {
    SKIP_WITHOUT_CORPUS();
    Request r;
    r.path = "/e/";
    r.content_type = "text/plain";
    r.body = read_file(corpus_dir() /
                       "PostHog+hog-rs__capture__src__v0_request.rs.decode_gzipped_raw_event.json.gz");
    const auto outcome = decode(r);
    EXPECT_TRUE(is_valid_json(ok(outcome).json()));
    EXPECT_EQ(ok(outcome).compression, DecodedPayload::Compression::Gzip);
}

// Every request of the capture compatibility dump, with its own path, query and headers, decodes to
// the JSON the corpus extracted for it.
TEST(DecodeCorpus, RequestsDumpLines) {
    SKIP_WITHOUT_CORPUS();
    std::ifstream dump(corpus_dir() / "PostHog+hog-rs__capture__tests__requests_dump.jsonl");
    std::string line;
    int line_no = 0, decoded = 0;
    simdjson::dom::parser parser;
    while (std::getline(dump, line)) {
        ++line_no;
        if (line.empty() || line[0] != '{') continue;
        simdjson::dom::element req;
        ASSERT_EQ(parser.parse(simdjson::padded_string(line)).get(req), simdjson::SUCCESS);
        Request r;
        r.method = std::string(req["method"].get_string().value());
        r.set_target(req["path"].get_string().value());
        r.content_type = std::string(req["content_type"].get_string().value());
        r.content_encoding = std::string(req["content_encoding"].get_string().value());
        r.body = value_of(base64_decode(req["body"].get_string().value()));
        const auto outcome = decode(r);
        const auto& p = ok(outcome);
        EXPECT_TRUE(is_valid_json(p.json())) << "line " << line_no;

        char prefix[96];
        std::snprintf(prefix, sizeof prefix,
                      "PostHog+hog-rs__capture__tests__requests_dump.jsonl.line%02d.body.", line_no);
        for (const char* ext : {"form", "gz", "json"}) {
            const fs::path expected =
                corpus_dir() / "derived" / (std::string(prefix) + ext + ".decoded.json");
            if (fs::exists(expected)) {
                EXPECT_EQ(p.json(), read_file(expected)) << "line " << line_no;
                // The extracted wire body is the same bytes as the dump's.
                EXPECT_EQ(read_file(corpus_dir() / "derived" / (std::string(prefix) + ext)), r.body);
            }
        }
        ++decoded;
    }
    EXPECT_GE(decoded, 16);
}

struct SyntheticCase {
    const char* file;
    const char* target;
    const char* content_type;
    const char* content_encoding;
    const char* same_json_as;  // corpus file whose minified text the decoded payload equals, or ""
    DecodedPayload::Source source;
};

TEST(DecodeCorpus, SyntheticEncodings) {
    SKIP_WITHOUT_CORPUS();
    using S = DecodedPayload::Source;
    const std::string single = "PostHog+posthog__rust__capture__tests__fixtures__single_event_payload.json";
    const std::string batch = "PostHog+posthog__rust__capture__tests__fixtures__batch_events_payload.json";
    const std::string replay = "derived/synthetic/replay-cv2024-10__single_replay_event_payload.json";
    const SyntheticCase cases[] = {
        {"base64-form__flags_android_body.body", "/flags/?v=2", "application/x-www-form-urlencoded", "", "",
         S::FormData},
        {"base64-form__single_event_payload.body", "/e/?compression=base64",
         "application/x-www-form-urlencoded", "", single.c_str(), S::FormData},
        {"base64-raw__single_event_payload.body", "/e/", "text/plain", "", single.c_str(), S::Body},
        {"gzip-content-encoding__android_batch.body.gz", "/batch", "application/json; charset=utf-8", "gzip",
         "", S::Body},
        {"gzip-content-encoding__android_flags.body.gz", "/flags/?v=2", "application/json; charset=utf-8",
         "gzip", "", S::Body},
        {"gzip-js-text-plain__batch_events_payload.body.gz", "/e/", "text/plain", "", batch.c_str(), S::Body},
        {"lz64-form__batch_events_payload.body", "/e/?ip=1&_=1751353200000&v=1.0",
         "application/x-www-form-urlencoded", "", batch.c_str(), S::FormData},
        {"lz64-raw__batch_events_payload.body", "/e/?compression=lz64", "text/plain", "", batch.c_str(),
         S::Body},
        {"replay-cv2024-10__single_replay_event_payload.json.gz", "/s/", "text/plain", "", replay.c_str(),
         S::Body},
    };
    for (const auto& c : cases) {
        Request r;
        r.set_target(c.target);
        r.content_type = c.content_type;
        r.content_encoding = c.content_encoding;
        r.body = read_file(corpus_dir() / "derived/synthetic" / c.file);
        const auto outcome = decode(r);
        const auto& p = ok(outcome);
        EXPECT_TRUE(is_valid_json(p.json())) << c.file;
        EXPECT_TRUE(p.decoded) << c.file;
        EXPECT_EQ(p.source, c.source) << c.file;
        if (*c.same_json_as != '\0') {
            EXPECT_EQ(minified(p.json()), minified(read_file(corpus_dir() / c.same_json_as))) << c.file;
        }
    }

    // GET /e/?data=... request target.
    Request get;
    get.method = "GET";
    std::string target =
        read_file(corpus_dir() / "derived/synthetic/get-data-query__single_event_payload.url");
    while (!target.empty() && (target.back() == '\n' || target.back() == '\r')) target.pop_back();
    get.set_target(target);
    const auto outcome = decode(get);
    EXPECT_EQ(ok(outcome).source, S::QueryData);
    EXPECT_EQ(minified(ok(outcome).json()), minified(read_file(corpus_dir() / single)));
}

// Our compressor is bit-identical to lz-string 1.5.0: it reproduces the corpus's npm-made lz64 body.
TEST(DecodeCorpus, LzStringCompressorMatchesNpmLzString) {
    SKIP_WITHOUT_CORPUS();
    const std::string raw = read_file(corpus_dir() / "derived/synthetic/lz64-raw__batch_events_payload.body");
    const std::string json = value_of(lz_string_decompress_from_base64(raw, 1 << 20));
    EXPECT_EQ(lz_string_compress_to_base64(json), raw);
}

}  // namespace
}  // namespace edgeguard::privacy
