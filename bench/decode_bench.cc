// Payload decoding throughput (MB/s of decoded JSON) for a realistic ~10 KB mobile batch in each wire
// encoding SDKs use, through decode_payload (the full capture-order path) and through the bare decoders.
#include <benchmark/benchmark.h>

#include <string>

#include "filters/decode/base64.h"
#include "filters/decode/gzip.h"
#include "filters/decode/lz_string.h"
#include "tests/unit/filters/lz_string_compressor.h"
#include "filters/decode/payload_decoder.h"

namespace {

using namespace edgeguard::privacy;

// ~10 KB: {"api_key", "batch": [...], "sent_at"} with Android-style events, distinct values per event so
// the compressors see realistic (not degenerate) redundancy.
std::string realistic_batch() {
    std::string json = R"({"api_key":"phc_VXRzc3poSG9GZm1JenRianJ6TTJFZGh4OWY2QXzx9f3","batch":[)";
    const char* events[] = {"$screen", "Application Opened", "purchase_completed", "$autocapture",
                            "add_to_cart"};
    for (int i = 0; json.size() < 10 * 1024 - 700; ++i) {
        if (i != 0) json += ',';
        json +=
            R"({"event":")" + std::string(events[i % 5]) + R"(","distinct_id":"0198)" +
            std::to_string(3300000 + i * 7919) +
            R"(-4913-7179-b6bc-019570abb1c9","timestamp":"2025-07-01T00:00:)" + std::to_string(10 + i % 50) +
            R"(.123Z","uuid":"01983d9b-8639-78fa-ac26-b9e7bf7)" + std::to_string(10000 + i * 31) +
            R"(","properties":{"$os":"Android","$os_version":"14","$app_version":"3.12.)" +
            std::to_string(i % 9) + R"(","$app_build":")" + std::to_string(31200 + i) +
            R"(","$device_manufacturer":"Google","$device_model":"Pixel 8","$locale":"ru-RU","$screen_name":"Checkout)" +
            std::to_string(i % 4) + R"(","$session_id":"01983d9b-8639-78fa-ac26-)" +
            std::to_string(100000 + i * 13) +
            R"(","$lib":"posthog-android","$lib_version":"3.4.2","plan":"pro","price":)" +
            std::to_string(99 + i % 7) + R"(.9,"items":)" + std::to_string(i % 5 + 1) +
            R"(,"$network_wifi":true,"$screen_width":1080,"$screen_height":2400}})";
    }
    json += R"(],"sent_at":"2025-07-01T00:01:00.000Z"})";
    return json;
}

const std::string& batch() {
    static const std::string json = realistic_batch();
    return json;
}

void run_decode(benchmark::State& state, const FilterInput& in) {
    const DecodeLimits limits = DecodeLimits::for_wire_limit(20 << 20);
    size_t json_size = 0;
    for (auto _ : state) {
        auto outcome = decode_payload(in, limits);
        auto* p = std::get_if<DecodedPayload>(&outcome);
        if (p == nullptr) {
            state.SkipWithError("decode failed");
            return;
        }
        json_size = p->json().size();
        benchmark::DoNotOptimize(p->json().data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * json_size));
    state.counters["wire_bytes"] = static_cast<double>(in.body.size());
    state.counters["json_bytes"] = static_cast<double>(json_size);
}

void BM_DecodePayload_PlainJson(benchmark::State& state) {
    FilterInput in;
    in.path = "/batch/";
    in.content_type = "application/json";
    in.body = batch();
    run_decode(state, in);
}

void BM_DecodePayload_GzipTextPlain(benchmark::State& state) {
    static const std::string body = gzip_deflate(batch());
    FilterInput in;
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.body = body;
    run_decode(state, in);
}

void BM_DecodePayload_Base64Form(benchmark::State& state) {
    static const std::string body = "data=" + base64_encode(batch());
    FilterInput in;
    in.path = "/e/";
    in.query = "compression=base64";
    in.content_type = "application/x-www-form-urlencoded";
    in.body = body;
    run_decode(state, in);
}

void BM_DecodePayload_Lz64Form(benchmark::State& state) {
    static const std::string body = "data=" + lz_string_compress_to_base64(batch()) + "&compression=lz64";
    FilterInput in;
    in.path = "/e/";
    in.content_type = "application/x-www-form-urlencoded";
    in.body = body;
    run_decode(state, in);
}

void BM_GzipInflate(benchmark::State& state) {
    static const std::string gz = gzip_deflate(batch());
    for (auto _ : state) benchmark::DoNotOptimize(gzip_inflate(gz, 1 << 20));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch().size()));
}

void BM_Base64Decode(benchmark::State& state) {
    static const std::string b64 = base64_encode(batch());
    std::string out;
    for (auto _ : state) {
        out.clear();
        benchmark::DoNotOptimize(base64_decode_into(b64, Base64Alphabet::Standard, out));
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch().size()));
}

void BM_LzStringDecompress(benchmark::State& state) {
    static const std::string lz = lz_string_compress_to_base64(batch());
    for (auto _ : state) benchmark::DoNotOptimize(lz_string_decompress_from_base64(lz, 1 << 20));
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * batch().size()));
}

BENCHMARK(BM_DecodePayload_PlainJson);
BENCHMARK(BM_DecodePayload_GzipTextPlain);
BENCHMARK(BM_DecodePayload_Base64Form);
BENCHMARK(BM_DecodePayload_Lz64Form);
BENCHMARK(BM_GzipInflate);
BENCHMARK(BM_Base64Decode);
BENCHMARK(BM_LzStringDecompress);

}  // namespace

BENCHMARK_MAIN();
