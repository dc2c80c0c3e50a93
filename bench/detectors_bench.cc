// Throughput of DetectorSet::scan over PostHog-like property values: all clean (the common case, which
// must stay far above the whole filter's 300 MB/s budget), and with a share of values carrying personal
// data. Run: build-*/bench/detectors_bench --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "filters/detectors/registry.h"

namespace {

using edgeguard::privacy::DetectorContext;
using edgeguard::privacy::DetectorMatch;
using edgeguard::privacy::DetectorSet;

// What a mobile analytics batch carries in string values: ids, event and screen names, versions, device
// and OS fields, locales, URLs, timestamps, prices, experiment variants, order references.
const std::vector<std::string>& clean_values() {
    static const std::vector<std::string> values = {
        "01906f6e-7c5b-7a3e-9b2f-3d4c5e6f7a8b",
        "3f2b8c1e-9a4d-4f6b-8c2e-1d5a7b9e0f12",
        "$screen",
        "ProductDetailScreen",
        "CheckoutViewController",
        "checkout_started",
        "posthog-ios",
        "3.19.1",
        "2.31.0-beta.1",
        "1.0.0 (4521)",
        "iOS",
        "17.5.1",
        "Android",
        "14",
        "iPhone15,2",
        "SM-S918B",
        "Apple",
        "Wi-Fi",
        "ru-RU",
        "Europe/Moscow",
        "2024-06-10T14:23:45.123Z",
        "1718031234566",
        "https://app.example.com/products/12345?variant=blue&utm_source=newsletter",
        "/catalog/shoes/running",
        "premium_annual",
        "variant_b",
        "ORD-2024-000123",
        "4590.00",
        "RUB",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "Нажата кнопка «Оформить заказ»",
        "Каталог",
        "button.primary.cta",
        "light",
        "com.example.shop",
        "phc_Zx1yQ7kV3mN8pR2tL5wC9bF4hJ6sD0gA1eU3iO7yT2",
    };
    return values;
}

const std::vector<std::string>& personal_values() {
    static const std::vector<std::string> values = {
        "ivan.petrov@example.ru",      "+7 (916) 123-45-67",
        "4111 1111 1111 1111",         "81.23.45.67",
        "Иванов Иван Иванович",        "https://shop.example.com/checkout?email=anna%40mail.ru&step=2",
        "DE89 3704 0044 0532 0130 00", "771234567859",
    };
    return values;
}

// `personal_every` > 0 puts one personal value after every that many clean ones.
std::vector<std::string> make_batch(size_t count, size_t personal_every) {
    std::vector<std::string> batch;
    const auto& clean = clean_values();
    const auto& personal = personal_values();
    size_t c = 0, p = 0;
    for (size_t i = 0; i < count; ++i) {
        if (personal_every > 0 && i % personal_every == personal_every - 1)
            batch.push_back(personal[p++ % personal.size()]);
        else
            batch.push_back(clean[c++ % clean.size()]);
    }
    return batch;
}

void run_scan(benchmark::State& state, const std::vector<std::string>& batch) {
    const DetectorSet set = DetectorSet::builtin();
    std::vector<DetectorMatch> out;
    out.reserve(64);
    size_t bytes = 0;
    for (const auto& v : batch) bytes += v.size();
    size_t hits = 0;
    for (auto _ : state) {
        for (const auto& v : batch) {
            out.clear();
            set.scan(v, DetectorContext{}, out);
            hits += out.size();
        }
        benchmark::DoNotOptimize(hits);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * batch.size()));
    state.counters["hits_per_batch"] = static_cast<double>(hits) / static_cast<double>(state.iterations());
}

void BM_ScanCleanValues(benchmark::State& state) {
    run_scan(state, make_batch(1000, 0));
}
void BM_ScanTwoPercentPersonal(benchmark::State& state) {
    run_scan(state, make_batch(1000, 50));
}
void BM_ScanAllPersonal(benchmark::State& state) {
    run_scan(state, personal_values());
}

// Long free-text values (exception messages, $elements_chain) exercise the per-byte gates.
void BM_ScanLongCleanText(benchmark::State& state) {
    std::string chain;
    while (chain.size() < 4096)
        chain += "a.nav-link:nth-child=\"2\"nth-of-type=\"1\"href=\"/catalog/shoes\"text=\"Обувь\";div.menu;";
    run_scan(state, {chain});
}

// Calibration on the same batch: one table-free pass summing bytes. On a shared or throttled machine the
// ratio scan/baseline is the number to compare, not absolute MB/s.
void BM_BaselineByteSum(benchmark::State& state) {
    const auto batch = make_batch(1000, 0);
    size_t bytes = 0;
    for (const auto& v : batch) bytes += v.size();
    for (auto _ : state) {
        uint64_t sum = 0;
        for (const auto& v : batch) {
            benchmark::DoNotOptimize(v.data());
            for (unsigned char c : v) sum += c;
        }
        benchmark::DoNotOptimize(sum);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
}

BENCHMARK(BM_BaselineByteSum);
BENCHMARK(BM_ScanCleanValues);
BENCHMARK(BM_ScanTwoPercentPersonal);
BENCHMARK(BM_ScanAllPersonal);
BENCHMARK(BM_ScanLongCleanText);

}  // namespace

BENCHMARK_MAIN();
