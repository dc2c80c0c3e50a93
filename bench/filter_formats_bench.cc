// The privacy filter on the wire formats beside PostHog's JSON events (the filter_bench cases for them):
// an LLM analytics generation as /i/v0/ai multipart (20 KB prompt + 5 KB completion) and an OTLP logs export
// of 100 records in JSON and in protobuf, through RuleSet::apply with conf/privacy.yaml's `ai` and `otel`
// profiles, as the proxy calls it. MB/s is bytes of request body per second on one core.
//   build/bench/filter_formats_bench --benchmark_min_time=2
#include <benchmark/benchmark.h>
#include <logs.pb.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "filters/filter_api.h"

namespace {

using edgeguard::privacy::FilterInput;
using edgeguard::privacy::FilterOutput;
using edgeguard::privacy::RuleError;
using edgeguard::privacy::RuleSet;

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

// The format's own cost: decode, walk and re-emit with profiles that have no rules.
std::shared_ptr<const RuleSet> no_rules() {
    static std::shared_ptr<const RuleSet> loaded = [] {
        std::vector<RuleError> errors;
        auto r = RuleSet::load_text("profiles:\n  ai:\n    rules: []\n  otel:\n    rules: []\n", "inline", errors);
        if (!r) abort();
        return r;
    }();
    return loaded;
}

// Support-chat prose: sentences of the kind a product's assistant sees, numbers and all, no personal data.
const char* const kSentences[] = {
    "The dashboard shows weekly active users broken down by plan and country. ",
    "After the last deploy the checkout page takes 2.4 seconds to load on mobile. ",
    "Could you explain why the retention curve drops after day 7 for the March cohort? ",
    "Our export job runs every night at 02:00 UTC and writes about 1.2 GB of parquet files. ",
    "Use the funnel insight with three steps: viewed pricing, started trial, upgraded. ",
    "The feature flag new-onboarding is rolled out to 25% of users in the EU region. ",
    "Order 2024-000123 was shipped yesterday and should arrive within two business days. ",
    "Summarize the following release notes in five bullet points for the changelog. ",
};

std::string prose(size_t bytes, size_t salt) {
    std::string out;
    for (size_t i = salt; out.size() < bytes; ++i) out += kSentences[(i * 5) % 8];
    out.resize(bytes);
    return out;
}

std::string json_string(const std::string& s) { return "\"" + s + "\""; }  // prose has nothing to escape

constexpr const char* kBoundary = "----posthogAiBoundaryBench0123456789";

std::string generation(bool personal) {
    std::string prompt_user = prose(20 * 1024 - 400, 1);
    std::string completion = prose(5 * 1024 - 200, 3);
    if (personal) {
        prompt_user.replace(4000, 60, "please write to ivan.petrov@example.ru or call +7 916 123-45-67.");
        completion.replace(1000, 40, "I emailed ivan.petrov@example.ru today.");
    }
    const std::string event =
        "{\"event\":\"$ai_generation\",\"distinct_id\":\"user_8812\",\"uuid\":\"0192f6a1-7c5b-7a3e-9b2f-3d4c5e6f7a8b\","
        "\"timestamp\":\"2026-12-07T04:20:11.532Z\"}";
    const std::string props =
        "{\"$ai_model\":\"gpt-4o-2024-08-06\",\"$ai_provider\":\"openai\",\"$ai_trace_id\":"
        "\"b2c2a5b0-3c1f-4a7e-8f00-1a2b3c4d5e6f\",\"$ai_input_tokens\":5120,\"$ai_output_tokens\":1280,"
        "\"$ai_latency\":3.81,\"$ai_http_status\":200,\"$ai_total_cost_usd\":0.0256,\"$lib\":\"posthog-python\"}";
    const std::string input = "[{\"role\":\"system\",\"content\":" + json_string(prose(380, 0)) +
                              "},{\"role\":\"user\",\"content\":" + json_string(prompt_user) + "}]";
    const std::string output = "[{\"role\":\"assistant\",\"content\":" + json_string(completion) + "}]";
    std::string body;
    auto part = [&](const char* name, const char* type, const std::string& data) {
        body += std::string("--") + kBoundary + "\r\nContent-Disposition: form-data; name=\"" + name +
                "\"\r\nContent-Type: " + type + "\r\n\r\n" + data + "\r\n";
    };
    part("event", "application/json", event);
    part("event.properties", "application/json", props);
    part("event.properties.$ai_input", "application/json", input);
    part("event.properties.$ai_output_choices", "application/json", output);
    body += std::string("--") + kBoundary + "--\r\n";
    return body;
}

void ai_generation_multipart_impl(benchmark::State& state, bool personal, bool walker_only) {
    const std::string body = generation(personal);
    const std::string content_type = std::string("multipart/form-data; boundary=") + kBoundary;
    FilterInput in;
    in.method = "POST";
    in.path = "/i/v0/ai/";
    in.content_type = content_type;
    in.body = body;
    in.ip_policy = edgeguard::privacy::IpPolicy::Truncate;
    const auto expected =
        personal && !walker_only ? FilterOutput::Verdict::Rewritten : FilterOutput::Verdict::Unchanged;
    auto r = walker_only ? no_rules() : rules();
    for (auto _ : state) {
        FilterOutput out = r->apply("ai", in);
        if (out.verdict != expected) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
    state.counters["body_bytes"] = static_cast<double>(body.size());
}

// 100 log records of a web service: a request line as the body, HTTP semantic-convention attributes.
// `personal`: the last record's body names the customer's email address (so the export is rewritten).
opentelemetry::proto::logs::v1::ExportLogsServiceRequest logs_export(bool personal = false) {
    opentelemetry::proto::logs::v1::ExportLogsServiceRequest req;
    auto* rl = req.add_resource_logs();
    auto attr = [](auto* list, const std::string& k, const std::string& v) {
        auto* kv = list->Add();
        kv->set_key(k);
        kv->mutable_value()->set_string_value(v);
    };
    auto* res = rl->mutable_resource()->mutable_attributes();
    attr(res, "service.name", "checkout-api");
    attr(res, "service.version", "2.14.1");
    attr(res, "deployment.environment", "production");
    attr(res, "host.name", "web-3");
    auto* sl = rl->add_scope_logs();
    sl->mutable_scope()->set_name("checkout.http");
    const char* routes[] = {"/api/checkout", "/api/cart/items", "/api/projects/12/insights", "/api/orders"};
    for (int i = 0; i < 100; ++i) {
        auto* lr = sl->add_log_records();
        lr->set_time_unix_nano(1765080000000000000ull + i * 1000000ull);
        lr->set_severity_number(9);
        lr->set_severity_text("INFO");
        lr->mutable_body()->set_string_value(std::string("GET ") + routes[i % 4] + " completed with 200 in " +
                                             std::to_string(10 + i % 37) + " ms after " +
                                             std::to_string(i % 3) + " retries" +
                                             (personal && i == 99 ? " for jane.doe@example.com" : ""));
        auto* a = lr->mutable_attributes();
        attr(a, "http.request.method", i % 3 ? "GET" : "POST");
        attr(a, "http.route", routes[i % 4]);
        attr(a, "url.scheme", "https");
        attr(a, "user_agent.original", "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15");
        auto* status = a->Add();
        status->set_key("http.response.status_code");
        status->mutable_value()->set_int_value(200);
        lr->set_trace_id(std::string(16, static_cast<char>(i)));
        lr->set_span_id(std::string(8, static_cast<char>(i + 1)));
    }
    return req;
}

// The same export in the OTLP JSON mapping (ids as hex, int64 as strings).
std::string logs_json(bool personal = false) {
    const auto req = logs_export(personal);
    auto hex = [](const std::string& b) {
        static const char* d = "0123456789abcdef";
        std::string out;
        for (unsigned char c : b) {
            out.push_back(d[c >> 4]);
            out.push_back(d[c & 15]);
        }
        return out;
    };
    auto attrs = [](const auto& list) {
        std::string out = "[";
        for (const auto& kv : list) {
            if (out.size() > 1) out += ",";
            out += "{\"key\":\"" + kv.key() + "\",\"value\":";
            out += kv.value().has_string_value() ? "{\"stringValue\":\"" + kv.value().string_value() + "\"}"
                                                 : "{\"intValue\":\"" + std::to_string(kv.value().int_value()) + "\"}";
            out += "}";
        }
        return out + "]";
    };
    const auto& rl = req.resource_logs(0);
    std::string out = "{\"resourceLogs\":[{\"resource\":{\"attributes\":" + attrs(rl.resource().attributes()) +
                      "},\"scopeLogs\":[{\"scope\":{\"name\":\"checkout.http\"},\"logRecords\":[";
    bool first = true;
    for (const auto& lr : rl.scope_logs(0).log_records()) {
        if (!first) out += ",";
        first = false;
        out += "{\"timeUnixNano\":\"" + std::to_string(lr.time_unix_nano()) +
               "\",\"severityNumber\":9,\"severityText\":\"INFO\",\"body\":{\"stringValue\":\"" +
               lr.body().string_value() + "\"},\"attributes\":" + attrs(lr.attributes()) + ",\"traceId\":\"" +
               hex(lr.trace_id()) + "\",\"spanId\":\"" + hex(lr.span_id()) + "\"}";
    }
    return out + "]}]}]}";
}

void ai_generation_multipart(benchmark::State& state, bool personal) {
    ai_generation_multipart_impl(state, personal, false);
}
void ai_generation_multipart_no_rules(benchmark::State& state, bool personal) {
    ai_generation_multipart_impl(state, personal, true);
}

void otlp_logs_impl(benchmark::State& state, bool protobuf, bool walker_only, bool personal = false) {
    const std::string body = protobuf ? logs_export(personal).SerializeAsString() : logs_json(personal);
    FilterInput in;
    in.method = "POST";
    in.path = "/i/v1/logs";
    in.content_type = protobuf ? "application/x-protobuf" : "application/json";
    in.body = body;
    auto r = walker_only ? no_rules() : rules();
    for (auto _ : state) {
        FilterOutput out = r->apply("otel", in);
        const auto expected = personal ? FilterOutput::Verdict::Rewritten : FilterOutput::Verdict::Unchanged;
        if (out.verdict != expected) state.SkipWithError("unexpected verdict");
        benchmark::DoNotOptimize(out);
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * body.size()));
    state.counters["body_bytes"] = static_cast<double>(body.size());
}

void otlp_logs(benchmark::State& state, bool protobuf) { otlp_logs_impl(state, protobuf, false); }
// An email in the last record: a protobuf export is read by the quiet pass to its end, then parsed, read
// into the document, walked and re-serialized (the price of a request with something to redact).
void otlp_logs_personal(benchmark::State& state, bool protobuf) { otlp_logs_impl(state, protobuf, false, true); }
void otlp_logs_no_rules(benchmark::State& state, bool protobuf) { otlp_logs_impl(state, protobuf, true); }

BENCHMARK_CAPTURE(ai_generation_multipart_no_rules, clean_20k_prompt_5k_completion, false);
BENCHMARK_CAPTURE(ai_generation_multipart, clean_20k_prompt_5k_completion, false);
BENCHMARK_CAPTURE(ai_generation_multipart, personal_20k_prompt_5k_completion, true);
BENCHMARK_CAPTURE(otlp_logs_no_rules, json_100_records, false);
BENCHMARK_CAPTURE(otlp_logs_no_rules, protobuf_100_records, true);
BENCHMARK_CAPTURE(otlp_logs, json_100_records, false);
BENCHMARK_CAPTURE(otlp_logs, protobuf_100_records, true);
BENCHMARK_CAPTURE(otlp_logs_personal, json_100_records_email_in_last, false);
BENCHMARK_CAPTURE(otlp_logs_personal, protobuf_100_records_email_in_last, true);

}  // namespace

BENCHMARK_MAIN();
