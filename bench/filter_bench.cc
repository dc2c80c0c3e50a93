// Privacy filter throughput on one core: a realistic /batch of 50 mobile events through the shipped
// conf/privacy.yaml, next to a parse-only baseline (simdjson On-Demand touching every value, no rules) on
// the same bytes. Run: build/bench/filter_bench --benchmark_min_time=2 (see bench/README.md).
#include <benchmark/benchmark.h>
#include <simdjson.h>
#include <stdlib.h>

#include <string>
#include <vector>

#include "filters/filter_api.h"

namespace {

using edgeguard::privacy::FilterInput;
using edgeguard::privacy::FilterOutput;
using edgeguard::privacy::RuleError;
using edgeguard::privacy::RuleSet;

constexpr int kEvents = 50;

// One mobile event as posthog-android / posthog-ios send them; `personal` plants an email in $set and a
// phone number in a free-text property.
std::string mobile_event(int i, bool personal) {
    static const char* kScreens[] = {"Home", "Catalog", "ProductDetails", "Cart", "Checkout", "Settings"};
    static const char* kEvents[] = {"$screen", "product_viewed", "add_to_cart", "$app_opened", "purchase"};
    const std::string n = std::to_string(i);
    std::string e = "{\"event\":\"";
    e += kEvents[i % 5];
    e += "\",\"distinct_id\":\"01906f6e-7c5b-7a3e-9b2f-3d4c5e6f7a";
    e += (i < 10 ? "0" : "") + n;
    e += "\",\"timestamp\":\"2026-11-27T10:00:";
    e += (i < 10 ? "0" : "") + n;
    e += ".123Z\",\"uuid\":\"01983d9b-8639-78fa-ac26-b9e7bf7165";
    e += (i < 10 ? "0" : "") + n;
    e += "\",\"properties\":{\"$screen_name\":\"";
    e += kScreens[i % 6];
    e += "\",\"$lib\":\"posthog-android\",\"$lib_version\":\"3.8.2\",\"$os\":\"Android\",\"$os_version\":\"14\","
         "\"$os_name\":\"Android\",\"$device_manufacturer\":\"Google\",\"$device_model\":\"Pixel 8\","
         "\"$device_name\":\"husky\",\"$device_type\":\"Mobile\",\"$app_name\":\"Shop\",\"$app_version\":\"4.12.0\","
         "\"$app_build\":\"4120031\",\"$app_namespace\":\"com.example.shop\",\"$locale\":\"ru-RU\","
         "\"$timezone\":\"Europe/Moscow\",\"$screen_width\":1080,\"$screen_height\":2400,\"$screen_density\":2.625,"
         "\"$network_wifi\":true,\"$network_cellular\":false,\"$network_carrier\":\"MTS RUS\","
         "\"$is_emulator\":false,\"$session_id\":\"01983d9b-8639-78fa-ac26-b9e7bf716521\","
         "\"$window_id\":\"01983d90-31f6-78cf-86c8-b26d0bdaaff0\",\"$device_id\":\"01906f6e-7c5b-7a3e-9b2f-3d4c5e6f7a8b\","
         "\"$is_identified\":true,\"$process_person_profile\":true,\"$feature/new-checkout\":\"test\","
         "\"$active_feature_flags\":[\"new-checkout\",\"fast-search\"],\"plan\":\"pro\",\"price\":1299.0,"
         "\"currency\":\"RUB\",\"quantity\":";
    e += std::to_string(1 + i % 3);
    e += ",\"order_ref\":\"ORD-2026-";
    e += std::to_string(100000 + i);
    e += "\",\"variant\":\"b\",\"category\":\"Shoes / Running\",\"search_query\":\"running shoes size 42\"";
    if (personal) {
        e += ",\"$set\":{\"email\":\"olga.smirnova@example.ru\",\"plan\":\"pro\"},\"note\":\"call +7 916 123-45-67\"";
    }
    e += "}}";
    return e;
}

std::string batch(bool with_personal) {
    std::string b = "{\"api_key\":\"phc_qgUFp5wz2BjC4RsFjMGpQ3PGDrsi6Q0CG0CP4NAac0I\",\"batch\":[";
    for (int i = 0; i < kEvents; ++i) {
        if (i) b += ",";
        b += mobile_event(i, with_personal && i == 25);  // 1 of 50 = 2%
    }
    b += "],\"sent_at\":\"2026-11-27T10:00:59.999Z\"}";
    return b;
}

std::shared_ptr<const RuleSet> rules() {
    static std::shared_ptr<const RuleSet> loaded = [] {
        ::setenv("EDGEGUARD_HASH_KEY", "bench-key-0123456789abcdef-not-secret", 0);
        std::vector<RuleError> errors;
        auto r = RuleSet::load(std::string(EDGEGUARD_SOURCE_DIR) + "/conf/privacy.yaml", errors);
        if (!r) {
            for (const auto& e : errors) fprintf(stderr, "%s:%d:%d: %s\n", e.file.c_str(), e.line, e.col, e.message.c_str());
            abort();
        }
        return r;
    }();
    return loaded;
}

// The walker alone: decode, parse, walk and splice with a profile that has no rules.
std::shared_ptr<const RuleSet> no_rules() {
    static std::shared_ptr<const RuleSet> loaded = [] {
        std::vector<RuleError> errors;
        auto r = RuleSet::load_text("profiles:\n  events:\n    rules: []\n", "inline", errors);
        if (!r) abort();
        return r;
    }();
    return loaded;
}

void filter_batch_impl(benchmark::State& state, bool with_personal, bool walker_only) {
    const std::string body = batch(with_personal);
    auto r = walker_only ? no_rules() : rules();
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "application/json";
    in.body = body;
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    const auto expected =
        with_personal && !walker_only ? FilterOutput::Verdict::Rewritten : FilterOutput::Verdict::Unchanged;
    for (auto _ : state) {
        FilterOutput out = r->apply("events", in);
        if (out.verdict != expected) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEvents));
    state.counters["body_bytes"] = static_cast<double>(body.size());
}

void filter_batch(benchmark::State& state, bool with_personal) { filter_batch_impl(state, with_personal, false); }
void walker_no_rules(benchmark::State& state, bool with_personal) { filter_batch_impl(state, with_personal, true); }

// Touches every value the way the filter must: strings unescaped, numbers and literals parsed.
bool touch(simdjson::ondemand::value v, size_t& acc) {
    using namespace simdjson::ondemand;
    json_type t;
    if (v.type().get(t)) return false;
    switch (t) {
        case json_type::object: {
            object o;
            if (v.get_object().get(o)) return false;
            for (auto f : o) {
                std::string_view k;
                if (f.error() || f.unescaped_key().get(k)) return false;
                acc += k.size();
                if (!touch(f.value(), acc)) return false;
            }
            return true;
        }
        case json_type::array: {
            array a;
            if (v.get_array().get(a)) return false;
            for (auto e : a) {
                value x;
                if (e.get(x) || !touch(x, acc)) return false;
            }
            return true;
        }
        case json_type::string: {
            std::string_view s;
            if (v.get_string().get(s)) return false;
            acc += s.size();
            return true;
        }
        case json_type::number: {
            double d;
            if (v.get_double().get(d)) return false;
            acc += static_cast<size_t>(d) & 1;
            return true;
        }
        case json_type::boolean: {
            bool b;
            if (v.get_bool().get(b)) return false;
            acc += b;
            return true;
        }
        case json_type::null: return !v.is_null().error();
    }
    return false;
}

void parse_only(benchmark::State& state, bool with_personal) {
    const std::string body = batch(with_personal);
    simdjson::ondemand::parser parser;
    std::string padded = body;  // a copy per request, as the filter makes one
    for (auto _ : state) {
        padded.assign(body);
        padded.append(simdjson::SIMDJSON_PADDING, '\0');
        simdjson::ondemand::document doc;
        size_t acc = 0;
        if (parser.iterate(padded.data(), body.size(), padded.size()).get(doc)) state.SkipWithError("parse");
        simdjson::ondemand::value root;
        if (doc.get_value().get(root) || !touch(root, acc)) state.SkipWithError("walk");
        benchmark::DoNotOptimize(acc);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEvents));
}

BENCHMARK_CAPTURE(parse_only, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(walker_no_rules, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(filter_batch, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(parse_only, personal_2pct_50_mobile_events, true);
BENCHMARK_CAPTURE(filter_batch, personal_2pct_50_mobile_events, true);

}  // namespace

BENCHMARK_MAIN();
