// The quiet pass over parsed OTLP protobuf exports (walk::QuietProbe, filter_otlp's QuietFirst) against
// the inspection document it stands in for: generated exports of logs, traces and metrics — random
// attribute trees of every value type, nested up to and past the profile's depth cap, with personal data,
// secrets, URLs, client addresses, encoded values and data-carrying keys planted in some of them — must get
// the same verdict, body, audit and rule ids whichever way they are inspected, and every export the quiet
// pass answers alone must be one the document walk leaves unchanged with nothing to report. Exports with
// some records quiet and some not check that a document of only the others answers as the whole one.
#include <google/protobuf/stubs/logging.h>
#include <gtest/gtest.h>
#include <logs.pb.h>
#include <metrics.pb.h>
#include <trace.pb.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "filters/formats/otlp_filter.h"
#include "filters/otlp/otlp_formats.h"
#include "filters/rule_set_impl.h"
#include "filters/walker/quiet_probe.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy {
namespace {

namespace common = opentelemetry::proto::common::v1;
using KeyValues = google::protobuf::RepeatedPtrField<common::KeyValue>;

// Rules beside the shipped `otel` profile: report mode, a rejecting detector, an event-scoped key rule, a
// shallow depth cap, URL keys, and a detector rule scoped to a path.
constexpr const char* kRules = R"(version: 1
hash_key: {id: h1, env: EDGEGUARD_TEST_HASH_KEY}
profiles:
  otel-report:
    mode: report
    url_keys: ["url.full"]
    rules:
      - id: report-email
        detectors: [email, phone]
        action: redact
      - id: report-user
        paths: ['**."user.id"']
        action: hash
  otel-strict:
    max_depth: 16
    url_keys: ["url.full", "http.target"]
    rules:
      - id: refuse-cards
        detectors: [card]
        action: reject
      - id: span-user
        events: ['$otel_span']
        paths: ['**."user.name"']
        action: drop
      - id: body-secrets
        paths: ['properties.body']
        detectors: [secret, jwt]
        action: hash
      - id: contact
        detectors: [email]
        action: mask
        keep_last: 4
)";

class Generator {
  public:
    explicit Generator(uint32_t seed) : rng_(seed) {}

    // `personal`: values may come from the planted pool; otherwise only from the clean one.
    void set_personal(bool personal) { personal_ = personal; }
    // `deep`: some attribute lists get a kvlist chain deep enough to pass the depth cap.
    void set_deep(bool deep) { deep_ = deep; }

    std::string text() {
        static const char* kClean[] = {"checkout-api",
                                       "GET /api/orders completed with 200 in 12 ms",
                                       "production",
                                       "web-3",
                                       "https",
                                       "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0",
                                       "",
                                       "/api/projects/12/insights",
                                       "INFO",
                                       "quote \" and backslash \\ inside",
                                       "tab\tand\nnewline",
                                       "2026-12-07T10:00:00Z",
                                       "123e4567-e89b-12d3-a456-426614174000",
                                       "https://example.com/a/b",
                                       "caf\xc3\xa9 cr\xc3\xa8me",
                                       "retry 3 of 5"};
        static const char* kPlanted[] = {"contact jane.doe@example.com now",
                                         "call +1 415 555 0132",
                                         "card 4111 1111 1111 1111",
                                         "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",
                                         "https://example.com/reset?token=abc123&user=5",
                                         "{\"email\":\"a@b.co\",\"n\":1}",
                                         "YWxpY2VAZXhhbXBsZS5jb20gc2VudA==",
                                         "81.23.45.67",
                                         "phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9T0uVw",
                                         "[\"x\", \"bob@example.org\"]",
                                         "a@b.co"};
        if (personal_ && pick(4) == 0) return kPlanted[pick(std::size(kPlanted))];
        return kClean[pick(std::size(kClean))];
    }

    std::string key() {
        static const char* kClean[] = {"service.name",
                                       "http.route",
                                       "http.request.method",
                                       "url.scheme",
                                       "k",
                                       "deployment.environment",
                                       "thread.id",
                                       "code.function",
                                       "a\"b",
                                       "x\\y",
                                       "http.response.status_code",
                                       "url.full",
                                       "$ip",
                                       "items"};
        static const char* kPlanted[] = {"user.email",       "enduser.id",
                                         "user.id",          "client.address",
                                         "user.name",        "http.request.header.authorization",
                                         "jane@example.com", "4111111111111111",
                                         "session.id",       "userEmail"};
        if (personal_ && pick(5) == 0) return kPlanted[pick(std::size(kPlanted))];
        return kClean[pick(std::size(kClean))];
    }

    void any_value(common::AnyValue* v, int depth) {
        const int choice = depth <= 0 ? static_cast<int>(pick(6)) : static_cast<int>(pick(9));
        switch (choice) {
            case 0:
            case 1:
            case 2:
                v->set_string_value(text());
                break;
            case 3: {
                static const int64_t kClean[] = {0, 200, -7, 1765080000, 12345678};
                static const int64_t kPlanted[] = {4111111111111111, 79161234567};
                v->set_int_value(personal_ && pick(3) == 0 ? kPlanted[pick(std::size(kPlanted))]
                                                           : kClean[pick(std::size(kClean))]);
                break;
            }
            case 4:
                pick(2) ? v->set_bool_value(pick(2) == 0) : v->set_double_value(0.25);
                break;
            case 5:
                pick(2) ? v->set_bytes_value(std::string("\x01\x02\xff", 3)) : void(v->Clear());
                break;
            case 6:
            case 7:
                key_values(v->mutable_kvlist_value()->mutable_values(), depth - 1, 1 + pick(3));
                break;
            default: {
                auto* values = v->mutable_array_value()->mutable_values();
                for (size_t i = 0, n = pick(4); i < n; ++i) any_value(values->Add(), depth - 1);
            }
        }
    }

    void key_values(KeyValues* list, int depth, size_t n) {
        for (size_t i = 0; i < n; ++i) {
            auto* kv = list->Add();
            kv->set_key(key());
            any_value(kv->mutable_value(), depth);
        }
    }

    // A chain of kvlists `levels` deep under one attribute (the depth cap is reached around 30 levels).
    void deep(KeyValues* list, int levels) {
        auto* kv = list->Add();
        kv->set_key("nested");
        common::AnyValue* v = kv->mutable_value();
        for (int i = 0; i < levels; ++i) {
            auto* inner = v->mutable_kvlist_value()->add_values();
            inner->set_key("level");
            v = inner->mutable_value();
        }
        v->set_string_value(text());
    }

    void attributes(KeyValues* list) {
        key_values(list, static_cast<int>(pick(4)), pick(5));
        if (deep_ && pick(12) == 0) deep(list, 4 + static_cast<int>(pick(36)));
    }

    template <class ResourceX>
    void resource_and_scope(ResourceX* rx, common::InstrumentationScope* scope) {
        if (pick(3)) attributes(rx->mutable_resource()->mutable_attributes());
        if (pick(2)) {
            scope->set_name(text());
            if (pick(2)) attributes(scope->mutable_attributes());
        }
    }

    std::string logs() {
        opentelemetry::proto::logs::v1::ExportLogsServiceRequest req;
        auto* rl = req.add_resource_logs();
        auto* sl = rl->add_scope_logs();
        resource_and_scope(rl, sl->mutable_scope());
        for (size_t i = 0, n = 1 + pick(6); i < n; ++i) {
            auto* lr = sl->add_log_records();
            if (pick(4)) any_value(lr->mutable_body(), 2);
            if (pick(4) == 0) lr->set_event_name(text());
            lr->set_severity_text("INFO");
            attributes(lr->mutable_attributes());
        }
        return req.SerializeAsString();
    }

    std::string traces() {
        opentelemetry::proto::trace::v1::ExportTraceServiceRequest req;
        auto* rs = req.add_resource_spans();
        auto* ss = rs->add_scope_spans();
        resource_and_scope(rs, ss->mutable_scope());
        for (size_t i = 0, n = 1 + pick(4); i < n; ++i) {
            auto* span = ss->add_spans();
            span->set_name(text());
            attributes(span->mutable_attributes());
            if (pick(2)) span->mutable_status()->set_message(text());
            for (size_t e = 0, m = pick(3); e < m; ++e) {
                auto* ev = span->add_events();
                ev->set_name(text());
                attributes(ev->mutable_attributes());
            }
            if (pick(3) == 0) attributes(span->add_links()->mutable_attributes());
        }
        return req.SerializeAsString();
    }

    std::string metrics() {
        opentelemetry::proto::metrics::v1::ExportMetricsServiceRequest req;
        auto* rm = req.add_resource_metrics();
        auto* sm = rm->add_scope_metrics();
        resource_and_scope(rm, sm->mutable_scope());
        for (size_t i = 0, n = 1 + pick(3); i < n; ++i) {
            auto* m = sm->add_metrics();
            m->set_name(text());
            if (pick(2)) m->set_description(text());
            m->set_unit("ms");
            if (pick(3) == 0) attributes(m->mutable_metadata());
            switch (pick(5)) {
                case 0: {
                    auto* dp = m->mutable_gauge()->add_data_points();
                    attributes(dp->mutable_attributes());
                    dp->set_as_double(1.5);
                    if (pick(2)) attributes(dp->add_exemplars()->mutable_filtered_attributes());
                    break;
                }
                case 1: {
                    auto* dp = m->mutable_sum()->add_data_points();
                    attributes(dp->mutable_attributes());
                    dp->set_as_int(42);
                    break;
                }
                case 2: {
                    auto* dp = m->mutable_histogram()->add_data_points();
                    attributes(dp->mutable_attributes());
                    dp->add_bucket_counts(3);
                    dp->add_explicit_bounds(0.5);
                    if (pick(2)) attributes(dp->add_exemplars()->mutable_filtered_attributes());
                    break;
                }
                case 3: {
                    auto* dp = m->mutable_exponential_histogram()->add_data_points();
                    attributes(dp->mutable_attributes());
                    dp->mutable_positive()->add_bucket_counts(7);
                    if (pick(2)) attributes(dp->add_exemplars()->mutable_filtered_attributes());
                    break;
                }
                default: {
                    auto* dp = m->mutable_summary()->add_data_points();
                    attributes(dp->mutable_attributes());
                    dp->add_quantile_values()->set_quantile(0.5);
                    break;
                }
            }
        }
        return req.SerializeAsString();
    }

  private:
    size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
    std::mt19937 rng_;
    bool personal_ = false;
    bool deep_ = true;
};

std::string describe(const FilterOutput& o) {
    std::string s = std::to_string(static_cast<int>(o.verdict)) + " " + std::to_string(o.status) + " " +
                    o.code + " " + o.error + " report_only=" + std::to_string(o.report_only_hits) + " ids=";
    for (const auto& id : o.rule_ids) s += id + ",";
    s += " audit=";
    for (const auto& a : o.audit)
        s += a.rule_id + "|" + a.path + "|" + a.action + "|" + std::to_string(a.count) + "|" + a.matched_by +
             ";";
    return s + " body=" + std::to_string(o.body.size()) + " type=" + o.content_type;
}

const Profile& profile_named(const CompiledRules& rules, std::string_view name) {
    for (const auto& p : rules.profiles) {
        if (p->name == name) return *p;
    }
    ADD_FAILURE() << "no profile " << name;
    return *rules.profiles.front();
}

TEST(OtlpQuietPass, AnswersExactlyAsTheInspectionDocumentWould) {
    testing::set_test_hash_keys();
    const auto shipped = testing::default_rules();
    std::vector<RuleError> errors;
    const auto extra = RuleSet::load_text(kRules, "inline.yaml", errors);
    ASSERT_TRUE(shipped && extra) << (errors.empty() ? "" : errors[0].message);
    const auto& shipped_rules = dynamic_cast<const CompiledRuleSet&>(*shipped).rules();
    const auto& extra_rules = dynamic_cast<const CompiledRuleSet&>(*extra).rules();
    struct Case {
        const CompiledRules* rules;
        const Profile* profile;
    };
    const Case cases[] = {{&shipped_rules, &profile_named(shipped_rules, "otel")},
                          {&extra_rules, &profile_named(extra_rules, "otel-report")},
                          {&extra_rules, &profile_named(extra_rules, "otel-strict")}};
    static constexpr PayloadKind kKinds[] = {PayloadKind::OtlpLogs, PayloadKind::OtlpTraces,
                                             PayloadKind::OtlpMetrics};
    static constexpr const char* kPaths[] = {"/i/v1/logs", "/i/v1/traces", "/i/v1/metrics"};

    Generator gen(20261207);
    size_t quiet = 0, partial = 0, unchanged = 0, rewritten = 0, rejected = 0, too_deep = 0;
    constexpr int kRequests = 1500;
    for (int i = 0; i < kRequests; ++i) {
        gen.set_personal(i % 2 == 1);
        const size_t k = static_cast<size_t>(i) % 3;
        const std::string body = k == 0 ? gen.logs() : k == 1 ? gen.traces() : gen.metrics();
        const Case& c = cases[static_cast<size_t>(i / 3) % std::size(cases)];
        FilterInput in;
        in.method = "POST";
        in.path = kPaths[k];
        in.content_type = "application/x-protobuf";
        in.body = body;
        in.ip_policy = i % 4 == 0 ? IpPolicy::Truncate : IpPolicy::Forward;
        // Either order, so neither inspection only ever meets memos the other one filled.
        FilterOutput by_doc, by_quiet;
        if (i % 2 == 0) {
            by_doc = filter_otlp(*c.profile, *c.rules, in, kKinds[k], OtlpInspection::DocumentOnly);
            by_quiet = filter_otlp(*c.profile, *c.rules, in, kKinds[k], OtlpInspection::QuietFirst);
        } else {
            by_quiet = filter_otlp(*c.profile, *c.rules, in, kKinds[k], OtlpInspection::QuietFirst);
            by_doc = filter_otlp(*c.profile, *c.rules, in, kKinds[k], OtlpInspection::DocumentOnly);
        }
        ASSERT_EQ(describe(by_quiet), describe(by_doc)) << "request " << i;
        ASSERT_EQ(by_quiet.body, by_doc.body) << "request " << i;

        WalkOptions options;
        options.ip_policy = in.ip_policy;
        walk::QuietProbe probe(*c.profile, *c.rules, options);
        otlp::QuietRecords records;
        const bool all_quiet = otlp::protobuf_quiet_pass(body, kKinds[k], probe, records);
        // Some records quiet and some not: the document held only the others.
        if (records.complete && std::count(records.loud.begin(), records.loud.end(), 0) > 0 &&
            std::count(records.loud.begin(), records.loud.end(), 1) > 0)
            ++partial;
        if (all_quiet) {
            ++quiet;
            EXPECT_EQ(by_doc.verdict, FilterOutput::Verdict::Unchanged) << "request " << i;
            EXPECT_TRUE(by_doc.audit.empty() && !by_doc.report_only_hits) << "request " << i;
        }
        switch (by_doc.verdict) {
            case FilterOutput::Verdict::Unchanged:
                ++unchanged;
                break;
            case FilterOutput::Verdict::Rewritten:
                ++rewritten;
                break;
            default:
                by_doc.error.find("deep") != std::string::npos ? ++too_deep : ++rejected;
                break;
        }
    }
    // The generator reaches every outcome, and the quiet pass answers a good share alone.
    EXPECT_GT(quiet, kRequests / 5u);
    EXPECT_GT(partial, 100u);
    EXPECT_GT(unchanged, quiet / 2u);
    EXPECT_GT(rewritten, 50u);
    EXPECT_GT(rejected, 10u);
    EXPECT_GT(too_deep, 5u);
}

// The quiet pass answers only for bodies libprotobuf parses: damaged exports (bytes changed, cut, inserted)
// that it calls quiet must all parse. Undamaged, clean and within the depth cap, every export is quiet.
TEST(OtlpQuietPass, AnswersOnlyForBodiesLibprotobufParses) {
    testing::set_test_hash_keys();
    const auto shipped = testing::default_rules();
    ASSERT_TRUE(shipped);
    const auto& rules = dynamic_cast<const CompiledRuleSet&>(*shipped).rules();
    const Profile& otel = profile_named(rules, "otel");
    static constexpr PayloadKind kKinds[] = {PayloadKind::OtlpLogs, PayloadKind::OtlpTraces,
                                             PayloadKind::OtlpMetrics};
    Generator gen(7);
    gen.set_deep(false);
    std::mt19937 rng(11);
    auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
    opentelemetry::proto::logs::v1::ExportLogsServiceRequest logs;
    opentelemetry::proto::trace::v1::ExportTraceServiceRequest traces;
    opentelemetry::proto::metrics::v1::ExportMetricsServiceRequest metrics;
    auto parses = [&](size_t k, const std::string& body) {
        const int n = static_cast<int>(body.size());
        return k == 0   ? logs.ParseFromArray(body.data(), n)
               : k == 1 ? traces.ParseFromArray(body.data(), n)
                        : metrics.ParseFromArray(body.data(), n);
    };
    WalkOptions options;
    google::protobuf::LogSilencer quiet_parser;  // libprotobuf logs every string field it refuses
    size_t intact_quiet = 0, damaged_quiet = 0, damaged_refused = 0;
    for (int i = 0; i < 3000; ++i) {
        const size_t k = static_cast<size_t>(i) % 3;
        std::string body = k == 0 ? gen.logs() : k == 1 ? gen.traces() : gen.metrics();
        {
            walk::QuietProbe probe(otel, rules, options);
            otlp::QuietRecords records;
            if (otlp::protobuf_quiet_pass(body, kKinds[k], probe, records)) ++intact_quiet;
        }
        for (size_t d = 0, n = 1 + pick(3); d < n && !body.empty(); ++d) {
            const size_t at = pick(body.size());
            switch (pick(4)) {
                case 0:
                    body[at] = static_cast<char>(pick(256));
                    break;
                case 1:
                    body.resize(at);
                    break;
                case 2:
                    body.insert(at, 1, static_cast<char>(pick(256)));
                    break;
                default:
                    body[at] = static_cast<char>(body[at] ^ (1 << pick(8)));
                    break;
            }
        }
        walk::QuietProbe probe(otel, rules, options);
        otlp::QuietRecords records;
        if (otlp::protobuf_quiet_pass(body, kKinds[k], probe, records)) {
            ++damaged_quiet;
            ASSERT_TRUE(parses(k, body))
                << "damaged body " << i << " answered quietly but libprotobuf refuses it";
        } else if (!parses(k, body)) {
            ++damaged_refused;
        }
    }
    EXPECT_EQ(intact_quiet, 3000u);
    EXPECT_GT(damaged_refused, 500u);
    EXPECT_GT(damaged_quiet, 50u);
}

}  // namespace
}  // namespace edgeguard::privacy
