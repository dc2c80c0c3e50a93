// Privacy filter throughput on one core: a realistic /batch of 50 mobile events through the shipped
// conf/privacy.yaml, next to a parse-only baseline (simdjson On-Demand touching every value, no rules) on
// the same bytes, and the /batch body of bench/compare.py end to end (gzip included). Run:
// build/bench/filter_bench --benchmark_min_time=2, or --profile=<case> <requests> under callgrind (see
// bench/README.md).
#include <benchmark/benchmark.h>
#include <simdjson.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "filters/decode/gzip.h"
#include "filters/decode/payload_decoder.h"
#include "filters/filter_api.h"
#include "filters/learn/observation_store.h"
#include "filters/walker/walker.h"

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
    e += "\",\"$lib\":\"posthog-android\",\"$lib_version\":\"3.8.2\",\"$os\":\"Android\",\"$os_version\":"
         "\"14\","
         "\"$os_name\":\"Android\",\"$device_manufacturer\":\"Google\",\"$device_model\":\"Pixel 8\","
         "\"$device_name\":\"husky\",\"$device_type\":\"Mobile\",\"$app_name\":\"Shop\",\"$app_version\":\"4."
         "12.0\","
         "\"$app_build\":\"4120031\",\"$app_namespace\":\"com.example.shop\",\"$locale\":\"ru-RU\","
         "\"$timezone\":\"Europe/"
         "Moscow\",\"$screen_width\":1080,\"$screen_height\":2400,\"$screen_density\":2.625,"
         "\"$network_wifi\":true,\"$network_cellular\":false,\"$network_carrier\":\"MTS RUS\","
         "\"$is_emulator\":false,\"$session_id\":\"01983d9b-8639-78fa-ac26-b9e7bf716521\","
         "\"$window_id\":\"01983d90-31f6-78cf-86c8-b26d0bdaaff0\",\"$device_id\":\"01906f6e-7c5b-7a3e-9b2f-"
         "3d4c5e6f7a8b\","
         "\"$is_identified\":true,\"$process_person_profile\":true,\"$feature/new-checkout\":\"test\","
         "\"$active_feature_flags\":[\"new-checkout\",\"fast-search\"],\"plan\":\"pro\",\"price\":1299.0,"
         "\"currency\":\"RUB\",\"quantity\":";
    e += std::to_string(1 + i % 3);
    e += ",\"order_ref\":\"ORD-2026-";
    e += std::to_string(100000 + i);
    e += "\",\"variant\":\"b\",\"category\":\"Shoes / Running\",\"search_query\":\"running shoes size 42\"";
    if (personal) {
        e += ",\"$set\":{\"email\":\"olga.smirnova@example.ru\",\"plan\":\"pro\"},\"note\":\"call +7 916 "
             "123-45-67\"";
    }
    e += "}}";
    return e;
}

// The event with its properties' members in an order drawn with `seed` (split at top-level commas).
std::string shuffled_event(const std::string& e, uint64_t seed) {
    const size_t open = e.find("\"properties\":{") + 14;
    const size_t close = e.size() - 2;  // the properties' closing brace, then the event's
    std::vector<std::string> members;
    int depth = 0;
    bool in_string = false;
    size_t start = open;
    for (size_t i = open; i < close; ++i) {
        const char c = e[i];
        if (in_string) {
            if (c == '\\')
                ++i;
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            ++depth;
        } else if (c == ']' || c == '}') {
            --depth;
        } else if (c == ',' && depth == 0) {
            members.push_back(e.substr(start, i - start));
            start = i + 1;
        }
    }
    members.push_back(e.substr(start, close - start));
    std::mt19937_64 rnd(seed);
    std::shuffle(members.begin(), members.end(), rnd);
    std::string out = e.substr(0, open);
    for (size_t i = 0; i < members.size(); ++i) out += (i ? "," : "") + members[i];
    return out + e.substr(close);
}

// `shuffle`: each event's properties come in an order of their own, so members rarely line up with the
// event before (object traces seldom answer; what keeping them costs shows).
std::string batch(bool with_personal, bool shuffle = false) {
    std::string b = "{\"api_key\":\"phc_qgUFp5wz2BjC4RsFjMGpQ3PGDrsi6Q0CG0CP4NAac0I\",\"batch\":[";
    for (int i = 0; i < kEvents; ++i) {
        if (i) b += ",";
        const std::string e = mobile_event(i, with_personal && i == 25);  // 1 of 50 = 2%
        b += shuffle ? shuffled_event(e, static_cast<uint64_t>(i)) : e;
    }
    b += "],\"sent_at\":\"2026-11-27T10:00:59.999Z\"}";
    return b;
}

// The /batch body of bench/compare.py's batch_gzip workload (make_batch_gzip), rebuilt here so the
// in-process cost can be set next to the proxy's: mobile events with a fresh random distinct_id, uuid,
// session id, timestamp, app build and order reference each (so per-thread memos cannot answer them),
// Python json.dumps spacing, gzip level 6, events added until the gzip body reaches 10 KB.
std::string proxy_batch_event(std::mt19937_64& rnd) {
    auto uuid = [&] {
        char buf[40];
        const uint64_t hi = rnd(), lo = rnd();
        std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                      static_cast<unsigned>((hi >> 16) & 0xffff), static_cast<unsigned>(hi & 0xffff),
                      static_cast<unsigned>(lo >> 48),
                      static_cast<unsigned long long>(lo & 0xffffffffffffull));
        return std::string(buf);
    };
    auto pick = [&](std::initializer_list<const char*> options) {
        return std::string(options.begin()[rnd() % options.size()]);
    };
    const std::string sid = uuid();
    char ts[40], version[16], price[16], order[16];
    std::snprintf(ts, sizeof ts, "2026-11-27T10:%02d:%02d.%03dZ", static_cast<int>(rnd() % 60),
                  static_cast<int>(rnd() % 60), static_cast<int>(rnd() % 1000));
    std::snprintf(version, sizeof version, "3.%d.%d", static_cast<int>(rnd() % 9),
                  static_cast<int>(rnd() % 20));
    std::snprintf(price, sizeof price, "%d.%02d", static_cast<int>(1 + rnd() % 99),
                  static_cast<int>(rnd() % 100));
    std::snprintf(order, sizeof order, "ORD-%06d", static_cast<int>(rnd() % 1000000));
    std::string e =
        "{\"event\": \"" + pick({"$screen", "add_to_cart", "button_tapped", "$pageview"}) +
        "\", \"distinct_id\": \"" + uuid() + "\", \"timestamp\": \"" + ts + "\", \"uuid\": \"" + uuid() +
        "\", \"properties\": {\"$screen_name\": \"" +
        pick({"Home", "Cart", "Checkout", "Settings", "Product", "Search"}) + "\", \"$session_id\": \"" +
        sid + "\", \"$device_id\": \"" + sid +
        "\", \"$os\": \"Android\", \"$os_version\": \"14\", \"$app_version\": \"" + version +
        "\", \"$app_build\": \"" + std::to_string(1000 + rnd() % 9000) +
        "\", \"$lib\": \"posthog-android\", \"$lib_version\": \"3.8.1\", \"$device_manufacturer\": "
        "\"Google\", \"$device_model\": \"Pixel 8\", \"$locale\": \"en-US\", \"$screen_width\": 1080, "
        "\"$screen_height\": 2400, \"$network_wifi\": true, \"plan\": \"" +
        pick({"free", "pro", "team"}) + "\", \"price\": " + price +
        ", \"items\": " + std::to_string(1 + rnd() % 8) + ", \"variant\": \"" + pick({"control", "test"}) +
        "\", \"order_ref\": \"" + order + "\"}}";
    return e;
}

struct ProxyBatch {
    std::string json;
    std::string gzip;
    int events = 0;
};

const ProxyBatch& proxy_batch() {
    static const ProxyBatch batch = [] {
        ProxyBatch b;
        std::mt19937_64 rnd(7);
        std::string events;
        for (;;) {
            if (!events.empty()) events += ", ";
            events += proxy_batch_event(rnd);
            ++b.events;
            b.json = "{\"api_key\": \"phc_benchmarkkey\", \"batch\": [" + events + "]}";
            // Level 6 as Python's gzip.compress(…, 6); checked every 8 events to keep start-up short.
            if (b.events % 8 == 0 &&
                (b.gzip = edgeguard::privacy::gzip_deflate(b.json, 6)).size() >= 10 * 1024)
                break;
        }
        return b;
    }();
    return batch;
}

std::shared_ptr<const RuleSet> rules() {
    static std::shared_ptr<const RuleSet> loaded = [] {
        ::setenv("EDGEGUARD_HASH_KEY", "bench-key-0123456789abcdef-not-secret", 0);
        std::vector<RuleError> errors;
        auto r = RuleSet::load(std::string(EDGEGUARD_SOURCE_DIR) + "/conf/privacy.yaml", errors);
        if (!r) {
            for (const auto& e : errors)
                fprintf(stderr, "%s:%d:%d: %s\n", e.file.c_str(), e.line, e.col, e.message.c_str());
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

// The shipped rules with `learn: true` on the events profile (at its default learn_events_per_second, or
// observing every event), and the observation store it records into (one shard: the benchmark is one
// worker).
std::shared_ptr<const RuleSet> load_learning_rules(std::string_view extra) {
    rules();  // sets the hash key
    const std::string path = std::string(EDGEGUARD_SOURCE_DIR) + "/conf/privacy.yaml";
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) abort();
    std::string text;
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
    std::fclose(f);
    const std::string marker = "  events:\n    mode: enforce\n";
    const size_t at = text.find(marker);
    if (at == std::string::npos) abort();
    text.insert(at + marker.size(), "    learn: true\n" + std::string(extra));
    std::vector<RuleError> errors;
    auto r = RuleSet::load_text(text, path, errors);
    if (!r) abort();
    return r;
}

std::shared_ptr<const RuleSet> learning_rules() {
    static std::shared_ptr<const RuleSet> loaded = load_learning_rules("");
    return loaded;
}

std::shared_ptr<const RuleSet> learning_every_event_rules() {
    static std::shared_ptr<const RuleSet> loaded = load_learning_rules("    learn_events_per_second: 0\n");
    return loaded;
}

edgeguard::privacy::learn::ObservationShard& observation_shard() {
    static edgeguard::privacy::learn::ObservationStore store(1);
    return store.shard(0);
}

// For instruction counts, which must not depend on how fast callgrind runs: a clock that advances a
// millisecond every kRequestsPerMs requests, as when one worker serves 4,000 /batch requests per second
// (about its rate at saturation on one core). profile_requests advances it.
constexpr uint64_t kRequestsPerMs = 4;
uint64_t synthetic_requests = 0;
uint64_t synthetic_ms() {
    return synthetic_requests / kRequestsPerMs;
}

edgeguard::privacy::learn::ObservationShard& synthetic_observation_shard() {
    static edgeguard::privacy::learn::ObservationStore store(1, {}, synthetic_ms);
    return store.shard(0);
}

// Object traces on or off for the benchmark's thread (filters/walker/object_trace.h), restored after.
class TracesSetting {
  public:
    explicit TracesSetting(bool on) : saved_(edgeguard::privacy::walk::thread_scratch().traces.enabled) {
        edgeguard::privacy::walk::thread_scratch().traces.enabled = on;
    }
    ~TracesSetting() { edgeguard::privacy::walk::thread_scratch().traces.enabled = saved_; }

  private:
    bool saved_;
};

void filter_batch_impl(benchmark::State& state, bool with_personal, bool walker_only, bool traces = true,
                       bool shuffle = false) {
    const TracesSetting setting(traces);
    const std::string body = batch(with_personal, shuffle);
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

void filter_batch(benchmark::State& state, bool with_personal) {
    filter_batch_impl(state, with_personal, false);
}
void walker_no_rules(benchmark::State& state, bool with_personal) {
    filter_batch_impl(state, with_personal, true);
}
// The same without object traces (every member walked), and on the batch whose events never line up.
void filter_batch_untraced(benchmark::State& state, bool with_personal) {
    filter_batch_impl(state, with_personal, false, false);
}
void filter_batch_shuffled(benchmark::State& state, bool traces) {
    filter_batch_impl(state, false, false, traces, true);
}

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
        case json_type::null:
            return !v.is_null().error();
    }
    return false;
}

void parse_only_on(benchmark::State& state, const std::string& body) {
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
}

void parse_only(benchmark::State& state, bool with_personal) {
    parse_only_on(state, batch(with_personal));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEvents));
}
void parse_only_shuffled(benchmark::State& state) {
    parse_only_on(state, batch(false, true));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kEvents));
}

// The whole in-process cost of one proxied POST /batch (bench/compare.py batch_gzip): gzip body as
// text/plain, decode (inflate, UTF-8 check), parse, walk, rules, verdict.
void batch_gzip_request(benchmark::State& state, bool walker_only) {
    const ProxyBatch& b = proxy_batch();
    auto r = walker_only ? no_rules() : rules();
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.body = b.gzip;
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    for (auto _ : state) {
        FilterOutput out = r->apply("events", in);
        if (out.verdict != FilterOutput::Verdict::Unchanged) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.json.size()));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.events));
    state.counters["gzip_bytes"] = static_cast<double>(b.gzip.size());
    state.counters["json_bytes"] = static_cast<double>(b.json.size());
}

// The same request with observation for `edgeguard learn` off (the shipped rules) and on (`learn: true`,
// recording into a store): registered next to each other so one run measures both.
void batch_gzip_learning(benchmark::State& state, int learn) {
    const ProxyBatch& b = proxy_batch();
    auto r = learn == 0 ? rules() : learn == 1 ? learning_rules() : learning_every_event_rules();
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.body = b.gzip;
    in.client_ip = "10.1.1.7";
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    in.observations = &observation_shard();
    for (auto _ : state) {
        FilterOutput out = r->apply("events", in);
        if (out.verdict != FilterOutput::Verdict::Unchanged) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.events));
}

// kFreshBatches /batch bodies like compare.py's batch_fresh workloads: the proxy_batch's event count, every
// value drawn anew per body (so the per-thread memos cannot answer what an earlier request held), gzip level
// 6; `personal`: every 50th event from the 25th (2%) carries an email in $set and a phone number in a
// free-text property, which the filter rewrites.
constexpr int kFreshBatches = 256;

std::string personal_proxy_event(std::mt19937_64& rnd) {
    std::string e = proxy_batch_event(rnd);
    char extra[160];
    std::snprintf(extra, sizeof extra,
                  ", \"$set\": {\"email\": \"olga.smirnova%d@example.ru\", \"plan\": \"pro\"}, "
                  "\"note\": \"call +7 916 %03d-%02d-%02d\"}}",
                  static_cast<int>(rnd() % 100), static_cast<int>(rnd() % 1000),
                  static_cast<int>(rnd() % 100), static_cast<int>(rnd() % 100));
    e.resize(e.size() - 2);  // the closing braces of properties and of the event
    return e + extra;
}

std::string fresh_batch_json(uint64_t seed, bool personal) {
    std::mt19937_64 rnd(seed);
    std::string events;
    for (int e = 0; e < proxy_batch().events; ++e) {
        if (e) events += ", ";
        events += personal && e % 50 == 25 ? personal_proxy_event(rnd) : proxy_batch_event(rnd);
    }
    return "{\"api_key\": \"phc_benchmarkkey\", \"batch\": [" + events + "]}";
}

const std::vector<std::string>& fresh_gzip_batches(bool personal) {
    static const auto make = [](bool with_personal) {
        std::vector<std::string> bodies;
        for (int k = 0; k < kFreshBatches; ++k)
            bodies.push_back(edgeguard::privacy::gzip_deflate(
                fresh_batch_json(1000 + static_cast<uint64_t>(k) + (with_personal ? 500000 : 0),
                                 with_personal),
                6));
        return bodies;
    };
    static const std::vector<std::string> clean = make(false);
    static const std::vector<std::string> with_personal = make(true);
    return personal ? with_personal : clean;
}

// The whole in-process cost of one proxied POST /batch of compare.py's batch_fresh workloads: a different
// body every request.
void batch_gzip_fresh(benchmark::State& state, bool personal) {
    const auto& bodies = fresh_gzip_batches(personal);
    auto r = rules();
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    const auto expected = personal ? FilterOutput::Verdict::Rewritten : FilterOutput::Verdict::Unchanged;
    size_t at = 0;
    for (auto _ : state) {
        in.body = bodies[at];
        at = (at + 1) % bodies.size();
        FilterOutput out = r->apply("events", in);
        if (out.verdict != expected) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * proxy_batch().events));
}

// Its decode step alone (what decode_payload costs before any JSON is looked at).
void batch_gzip_decode(benchmark::State& state) {
    const ProxyBatch& b = proxy_batch();
    FilterInput in;
    in.path = "/batch/";
    in.content_type = "text/plain";
    in.body = b.gzip;
    const auto limits = edgeguard::privacy::DecodeLimits::for_wire_limit(20 << 20);
    for (auto _ : state) {
        auto outcome = edgeguard::privacy::decode_payload(in, limits);
        if (!std::holds_alternative<edgeguard::privacy::DecodedPayload>(outcome))
            state.SkipWithError("decode");
        benchmark::DoNotOptimize(outcome);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.json.size()));
}

// The same batch as plain JSON through the rules (no inflate) and through the parse-only baseline.
void batch_plain_request(benchmark::State& state, bool traces) {
    const TracesSetting setting(traces);
    const ProxyBatch& b = proxy_batch();
    auto r = rules();
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "application/json";
    in.body = b.json;
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    for (auto _ : state) {
        FilterOutput out = r->apply("events", in);
        if (out.verdict != FilterOutput::Verdict::Unchanged) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * b.json.size()));
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.events));
}

void batch_plain_parse_only(benchmark::State& state) {
    const ProxyBatch& b = proxy_batch();
    parse_only_on(state, b.json);
    state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * b.events));
}

// The clean 50-event batch and the shuffled one, built once (outside the counted function).
const std::string& clean_batch() {
    static const std::string body = batch(false);
    return body;
}
const std::string& shuffled_batch() {
    static const std::string body = batch(false, true);
    return body;
}

// ---- fixed-count runs for instruction profiles (callgrind), outside Google Benchmark's timing loop ----

// Runs `iterations` requests of one case (callgrind counts those run through profile_requests below).
// Cases: parse (the baseline on the /batch JSON), parse-clean (the baseline on the clean 50-event batch),
// gzip (the whole /batch request), plain (the same JSON unencoded), walker (plain, no rules), clean
// (filter_bench's 50-event batch), shuffled (the same with each event's properties in an order of its own),
// fresh (a new /batch JSON per request, so the per-thread memos cannot answer per-event values), fresh-gzip
// and fresh-personal (batch_gzip_fresh's gzip bodies in turn, clean and with 2% personal data),
// parse-shuffled (the baseline on the shuffled batch), floor-fresh-gzip (fresh-gzip's bodies inflated and
// parsed, no filter: the floor under fresh-gzip), learn (gzip with `learn: true` on the profile at its
// default rate, recording into an observation store, at the synthetic clock's 4,000 requests per second),
// learn-all (the same observing every event), learn-off (the same request and warm-up with the shipped rules,
// observation off).
[[gnu::noinline]] bool run_requests(std::string_view which, int iterations,
                                    const std::vector<std::string>& fresh_bodies) {
    const ProxyBatch& b = proxy_batch();
    const std::string& clean = clean_batch();
    if (which == "parse" || which == "parse-clean" || which == "parse-shuffled") {
        const std::string& json = which == "parse"         ? b.json
                                  : which == "parse-clean" ? clean
                                                           : shuffled_batch();
        simdjson::ondemand::parser parser;
        std::string padded;
        for (int i = 0; i < iterations; ++i) {
            padded.assign(json);
            padded.append(simdjson::SIMDJSON_PADDING, '\0');
            simdjson::ondemand::document doc;
            simdjson::ondemand::value root;
            size_t acc = 0;
            if (parser.iterate(padded.data(), json.size(), padded.size()).get(doc) ||
                doc.get_value().get(root) || !touch(root, acc)) {
                return false;
            }
            benchmark::DoNotOptimize(acc);
        }
        return true;
    }
    if (which == "floor-fresh-gzip") {
        // What a fresh gzip /batch costs before any filtering: inflating into padded text as the filter
        // does, then the parse-only baseline over it.
        const auto& bodies = fresh_gzip_batches(false);
        edgeguard::privacy::PaddedText text;
        simdjson::ondemand::parser parser;
        for (int i = 0; i < iterations; ++i) {
            const std::string& gz = bodies[static_cast<size_t>(i) % bodies.size()];
            if (!edgeguard::privacy::gzip_inflate_padded(gz, 20 << 20, text)) return false;
            simdjson::ondemand::document doc;
            simdjson::ondemand::value root;
            size_t acc = 0;
            const std::string_view json = text.text();
            if (parser.iterate(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc) ||
                doc.get_value().get(root) || !touch(root, acc)) {
                return false;
            }
            benchmark::DoNotOptimize(acc);
        }
        return true;
    }
    FilterInput in;
    in.method = "POST";
    in.path = "/batch/";
    in.content_type = "application/json";
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    if (which == "gzip") {
        in.content_type = "text/plain";
        in.body = b.gzip;
    } else if (which == "plain" || which == "walker") {
        in.body = b.json;
    } else if (which == "clean") {
        in.body = clean;
    } else if (which == "shuffled") {
        in.body = shuffled_batch();
    } else if (which == "learn" || which == "learn-all" || which == "learn-off") {
        in.content_type = "text/plain";
        in.body = b.gzip;
        in.client_ip = "10.1.1.7";
        in.observations = &synthetic_observation_shard();
    } else if (which == "fresh-gzip" || which == "fresh-personal") {
        in.content_type = "text/plain";
    } else if (which != "fresh") {
        return false;
    }
    auto r = which == "walker"      ? no_rules()
             : which == "learn"     ? learning_rules()
             : which == "learn-all" ? learning_every_event_rules()
                                    : rules();
    const auto expected =
        which == "fresh-personal" ? FilterOutput::Verdict::Rewritten : FilterOutput::Verdict::Unchanged;
    for (int i = 0; i < iterations; ++i) {
        ++synthetic_requests;
        if (which == "fresh") in.body = fresh_bodies[static_cast<size_t>(i)];
        if (which == "fresh-gzip" || which == "fresh-personal") {
            const auto& bodies = fresh_gzip_batches(which == "fresh-personal");
            in.body = bodies[static_cast<size_t>(i) % bodies.size()];
        }
        if (r->apply("events", in).verdict != expected) return false;
    }
    return true;
}

// What callgrind counts (run_requests outside it is not counted).
[[gnu::noinline]] bool profile_requests(std::string_view which, int iterations,
                                        const std::vector<std::string>& fresh_bodies) {
    return run_requests(which, iterations, fresh_bodies);
}

int profile_main(std::string_view which, int iterations) {
    std::vector<std::string> fresh;
    if (which == "fresh") {
        for (int k = 0; k < iterations; ++k)
            fresh.push_back(fresh_batch_json(1000 + static_cast<uint64_t>(k), false));
    }
    if (which == "fresh-gzip" || which == "fresh-personal") {
        // Warm-up on the last two bodies, which profiled runs of up to kFreshBatches - 2 requests never send.
        const auto& bodies = fresh_gzip_batches(which == "fresh-personal");
        FilterInput in;
        in.method = "POST";
        in.path = "/batch/";
        in.content_type = "text/plain";
        in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
        for (size_t k = bodies.size() - 2; k < bodies.size(); ++k) {
            in.body = bodies[k];
            (void)rules()->apply("events", in);
        }
    }
    (void)proxy_batch();  // built (and gzipped) outside the counted function
    if (which == "floor-fresh-gzip") (void)fresh_gzip_batches(false);
    (void)clean_batch();
    (void)shuffled_batch();
    (void)rules();
    (void)no_rules();
    (void)learning_rules();
    (void)learning_every_event_rules();
    // Learning at its rate: first, uncounted, enough requests to spend the first second's budget, as a
    // worker under steady load.
    // The other learn cases warm up the same way, so the three differ only in what they observe.
    const bool learn_case = which == "learn" || which == "learn-all" || which == "learn-off";
    if (learn_case && !run_requests(which, 1 + 1000 / proxy_batch().events, fresh)) return 1;
    // Two untimed requests first, as a worker that has served the batch before: memos and buffers warm.
    if (which.substr(0, 5) != "fresh" && which != "floor-fresh-gzip" && !profile_requests(which, 2, fresh))
        return 1;
    if (!profile_requests(which, iterations, fresh)) return 1;
    std::printf("%d requests of case %.*s\n", iterations, static_cast<int>(which.size()), which.data());
    return 0;
}

BENCHMARK_CAPTURE(parse_only, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(walker_no_rules, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(filter_batch, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(filter_batch_untraced, clean_50_mobile_events, false);
BENCHMARK_CAPTURE(parse_only, personal_2pct_50_mobile_events, true);
BENCHMARK_CAPTURE(filter_batch, personal_2pct_50_mobile_events, true);
BENCHMARK_CAPTURE(filter_batch_untraced, personal_2pct_50_mobile_events, true);
BENCHMARK(parse_only_shuffled);
BENCHMARK_CAPTURE(filter_batch_shuffled, traced, true);
BENCHMARK_CAPTURE(filter_batch_shuffled, untraced, false);
BENCHMARK(batch_plain_parse_only);
BENCHMARK(batch_gzip_decode);
BENCHMARK_CAPTURE(batch_gzip_request, walker_no_rules, true);
BENCHMARK_CAPTURE(batch_gzip_request, default_rules, false);
BENCHMARK_CAPTURE(batch_gzip_fresh, clean, false);
BENCHMARK_CAPTURE(batch_gzip_fresh, personal_2pct, true);
BENCHMARK_CAPTURE(batch_gzip_learning, observation_off, 0);
BENCHMARK_CAPTURE(batch_gzip_learning, observation_on, 1);
BENCHMARK_CAPTURE(batch_gzip_learning, observation_every_event, 2);
BENCHMARK_CAPTURE(batch_plain_request, traced, true);
BENCHMARK_CAPTURE(batch_plain_request, untraced, false);

}  // namespace

// `filter_bench --profile=<case> <requests>` runs a fixed number of requests for callgrind (see
// bench/README.md); anything else is Google Benchmark.
int main(int argc, char** argv) {
    if (argc == 3 && std::string_view(argv[1]).substr(0, 10) == "--profile=") {
        return profile_main(std::string_view(argv[1]).substr(10), std::atoi(argv[2]));
    }
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
