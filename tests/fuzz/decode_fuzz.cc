// libFuzzer target for the payload decoders. The first input byte picks the request shape
// (path, Content-Type, Content-Encoding, query hint); the rest is the body, or the query `data`. Every
// decoder must return a value or an error with a valid status, never crash, and every success must be
// UTF-8 within the cap. The individual decoders are driven with the same bytes.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include <simdjson.h>

#include "filters/decode/base64.h"
#include "filters/decode/gzip.h"
#include "filters/decode/latin1.h"
#include "filters/decode/lz_string.h"
#include "filters/decode/payload_decoder.h"
#include "filters/decode/replay_compression.h"
#include "filters/decode/url_form.h"

// A named namespace, not an anonymous one: tests/unit/fuzz_regressions_test.cc includes every target into
// one translation unit (with EDGEGUARD_FUZZ_NO_MAIN) to replay the inputs that once failed.
namespace edgeguard::fuzz::decode {

using namespace edgeguard::privacy;

constexpr uint64_t kCap = 1 << 20;

void require(bool condition) {
    if (!condition) std::abort();
}

template <class T>
void check_result(const DecodeResult<T>& r) {
    if (const auto* e = std::get_if<DecodeError>(&r)) require(e->status == 400 || e->status == 413);
}

constexpr std::string_view kPaths[] = {"/e/", "/batch/", "/i/v0/e/", "/s/", "/flags/", "/decide/", "/engage"};
constexpr std::string_view kTypes[] = {"",
                                       "application/json",
                                       "text/plain",
                                       "application/x-www-form-urlencoded",
                                       "application/json; charset=utf-8",
                                       "application/xml"};
constexpr std::string_view kEncodings[] = {"", "gzip", "br"};
constexpr std::string_view kQueries[] = {"", "compression=gzip-js", "compression=lz64", "compression=base64",
                                         "ip=1&_=1700000000000&ver=1.0"};

}  // namespace edgeguard::fuzz::decode

namespace edgeguard::fuzz::decode {

int one_input(const uint8_t* data, size_t size) {
    if (size == 0) return 0;
    const uint8_t shape = data[0];
    const std::string_view bytes(reinterpret_cast<const char*>(data + 1), size - 1);

    DecodeLimits limits = DecodeLimits::for_wire_limit(1 << 20);
    limits.max_decoded_bytes = kCap;
    limits.ratio_floor_bytes = 64 << 10;

    FilterInput in;
    in.method = "POST";
    in.path = kPaths[shape % std::size(kPaths)];
    in.content_type = kTypes[(shape / 7) % std::size(kTypes)];
    in.content_encoding = kEncodings[(shape / 42) % std::size(kEncodings)];
    std::string query(kQueries[(shape / 126) % std::size(kQueries)]);
    if ((shape & 0x80) != 0 && (shape & 0x40) != 0) {
        // GET ?data=<bytes>
        in.method = "GET";
        query = "data=" + std::string(bytes);
    } else {
        in.body = bytes;
    }
    in.query = query;

    const DecodeOutcome outcome = decode_payload(in, limits);
    if (const auto* p = std::get_if<DecodedPayload>(&outcome)) {
        const std::string_view json = p->json();
        require(json.size() <= kCap);
        require(simdjson::validate_utf8(json.data(), json.size()));
        if (!p->decoded) require(json.data() == in.body.data() && json.size() == in.body.size());
    } else {
        const int status = std::get<DecodeError>(outcome).status;
        require(status == 400 || status == 413 || status == 415);
    }

    check_result(gzip_inflate(bytes, kCap));
    check_result(lz_string_decompress_from_base64(bytes, kCap));
    check_result(decode_latin1_gzip(bytes, kCap));
    check_result(base64_decode(bytes, Base64Alphabet::UrlSafe));
    const auto b64 = base64_decode(bytes);
    if (const auto* decoded = std::get_if<std::string>(&b64)) require(base64_encode(*decoded) == bytes);
    const auto latin = latin1_to_bytes(bytes);
    if (const auto* raw = std::get_if<std::string>(&latin)) require(bytes_to_latin1(*raw) == bytes);
    (void)query_without_keys(bytes, {"data", "compression"});
    return 0;
}

}  // namespace edgeguard::fuzz::decode

#ifndef EDGEGUARD_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return edgeguard::fuzz::decode::one_input(data, size);
}
#endif
