// Metrics registry: counters move where they should, and every scrape is strict Prometheus text 0.0.4.
#include "proxy/ops/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "filters/filter_api.h"
#include "proxy/config/config.h"

namespace edgeguard {
namespace {

// ---------------------------------------------------------------------------------------------------------------
// A strict parser for the text exposition format 0.0.4, written from the format's grammar, not from our
// renderer.

struct Sample {
    std::string name;
    std::map<std::string, std::string> labels;
    double value = 0;
};

struct Family {
    std::string type;
    std::string help;
    std::vector<Sample> samples;
};

struct Exposition {
    std::map<std::string, Family> families;
    std::string error;  // empty when the text parsed and every consistency check held

    // Value of the one sample `name` whose labels include all of `want`; nullopt when none or several match.
    std::optional<double> value(const std::string& family, const std::string& name,
                                const std::map<std::string, std::string>& want) const {
        auto f = families.find(family);
        if (f == families.end()) return std::nullopt;
        std::optional<double> found;
        for (const auto& s : f->second.samples) {
            if (s.name != name) continue;
            bool all = true;
            for (const auto& [k, v] : want) {
                auto it = s.labels.find(k);
                if (it == s.labels.end() || it->second != v) all = false;
            }
            if (!all) continue;
            if (found) return std::nullopt;
            found = s.value;
        }
        return found;
    }
};

bool is_name_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_' || c == ':';
}
bool is_name_char(char c) {
    return is_name_start(c) || std::isdigit(static_cast<unsigned char>(c));
}
bool is_label_start(char c) {
    return std::isalpha(static_cast<unsigned char>(c)) || c == '_';
}
bool is_label_char(char c) {
    return is_label_start(c) || std::isdigit(static_cast<unsigned char>(c));
}

bool parse_metric_name(std::string_view s, size_t& i, std::string& out) {
    if (i >= s.size() || !is_name_start(s[i])) return false;
    size_t b = i;
    while (i < s.size() && is_name_char(s[i])) ++i;
    out.assign(s.substr(b, i - b));
    return true;
}

std::optional<double> parse_value(std::string_view v) {
    if (v == "+Inf") return INFINITY;
    if (v == "-Inf") return -INFINITY;
    if (v == "NaN") return NAN;
    if (v.empty()) return std::nullopt;
    std::string tmp(v);
    char* end = nullptr;
    double d = std::strtod(tmp.c_str(), &end);
    if (end != tmp.c_str() + tmp.size()) return std::nullopt;
    return d;
}

// Sample line: name [ "{" label="value" { "," label="value" } "}" ] SP value [ SP timestamp ]
std::string parse_sample(std::string_view line, Sample& out) {
    size_t i = 0;
    if (!parse_metric_name(line, i, out.name)) return "bad metric name";
    if (i < line.size() && line[i] == '{') {
        ++i;
        while (i < line.size() && line[i] != '}') {
            if (!is_label_start(line[i])) return "bad label name";
            size_t b = i;
            while (i < line.size() && is_label_char(line[i])) ++i;
            std::string key(line.substr(b, i - b));
            if (key.rfind("__", 0) == 0) return "reserved label name";
            if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') return "expected =\"";
            i += 2;
            std::string value;
            while (true) {
                if (i >= line.size()) return "unterminated label value";
                char c = line[i++];
                if (c == '"') break;
                if (c != '\\') {
                    value += c;
                    continue;
                }
                if (i >= line.size()) return "dangling escape";
                char esc = line[i++];
                if (esc == '\\')
                    value += '\\';
                else if (esc == '"')
                    value += '"';
                else if (esc == 'n')
                    value += '\n';
                else
                    return "invalid escape in label value";
            }
            if (!out.labels.emplace(key, value).second) return "duplicate label " + key;
            if (i < line.size() && line[i] == ',')
                ++i;
            else if (i >= line.size() || line[i] != '}')
                return "expected ',' or '}' after a label";
        }
        if (i >= line.size()) return "unterminated label set";
        ++i;
    }
    if (i >= line.size() || line[i] != ' ') return "expected one space before the value";
    ++i;
    std::string_view rest = line.substr(i);
    size_t sp = rest.find(' ');
    auto v = parse_value(rest.substr(0, sp));
    if (!v) return "bad value";
    out.value = *v;
    if (sp != std::string_view::npos) {
        std::string_view ts = rest.substr(sp + 1);
        if (ts.empty() || ts.find_first_not_of("-0123456789") != std::string_view::npos)
            return "bad timestamp";
    }
    return "";
}

// The family a sample name belongs to, given the current family's type.
bool sample_belongs(const std::string& sample, const std::string& family, const std::string& type) {
    if (sample == family) return type != "histogram" && type != "summary";
    if (type == "histogram")
        return sample == family + "_bucket" || sample == family + "_sum" || sample == family + "_count";
    if (type == "summary") return sample == family + "_sum" || sample == family + "_count";
    return false;
}

std::string check_histograms(const Exposition& e) {
    for (const auto& [name, f] : e.families) {
        if (f.type != "histogram") continue;
        // Group by labels without le.
        std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
        std::map<std::map<std::string, std::string>, double> counts, sums;
        for (const auto& s : f.samples) {
            auto labels = s.labels;
            if (s.name == name + "_bucket") {
                auto le = labels.find("le");
                if (le == labels.end()) return name + ": bucket without le";
                auto bound = parse_value(le->second);
                if (!bound) return name + ": bad le " + le->second;
                labels.erase(le);
                buckets[labels].emplace_back(*bound, s.value);
            } else if (s.name == name + "_count") {
                counts[labels] = s.value;
            } else {
                sums[labels] = s.value;
            }
        }
        for (const auto& [labels, bs] : buckets) {
            double prev_le = -INFINITY, prev_v = 0;
            for (const auto& [le, v] : bs) {
                if (!(le > prev_le)) return name + ": le not increasing";
                if (v < prev_v) return name + ": buckets not cumulative";
                if (v != std::floor(v) || v < 0) return name + ": bucket count not a natural number";
                prev_le = le;
                prev_v = v;
            }
            if (!std::isinf(prev_le)) return name + ": no le=\"+Inf\" bucket";
            if (!counts.count(labels) || counts[labels] != prev_v) return name + ": _count != +Inf bucket";
            if (!sums.count(labels) || sums[labels] < 0) return name + ": missing or negative _sum";
        }
        if (counts.size() != buckets.size() || sums.size() != buckets.size())
            return name + ": orphan _count/_sum";
    }
    return "";
}

Exposition parse_exposition(const std::string& text) {
    Exposition e;
    if (!text.empty() && text.back() != '\n') {
        e.error = "text does not end with a newline";
        return e;
    }
    std::istringstream in(text);
    std::string line;
    std::string current;  // the family whose lines we are in
    std::set<std::string> closed;
    std::set<std::string> series;
    int lineno = 0;
    auto fail = [&](const std::string& why) {
        e.error = "line " + std::to_string(lineno) + ": " + why + ": " + line;
        return e;
    };
    while (std::getline(in, line)) {
        ++lineno;
        if (line.empty()) return fail("empty line");
        if (line[0] == '#') {
            std::string_view rest(line);
            bool help = rest.rfind("# HELP ", 0) == 0, type = rest.rfind("# TYPE ", 0) == 0;
            if (!help && !type) return fail("stray comment");  // we emit no free comments
            size_t i = 7;
            std::string name;
            if (!parse_metric_name(rest, i, name)) return fail("bad name in comment");
            if (i >= rest.size() || rest[i] != ' ') return fail("expected space after name");
            std::string_view arg = rest.substr(i + 1);
            if (name != current) {
                if (!current.empty()) closed.insert(current);
                if (closed.count(name)) return fail("family lines are not contiguous");
                current = name;
            }
            Family& f = e.families[name];
            if (help) {
                if (!f.help.empty()) return fail("second HELP");
                for (size_t k = 0; k < arg.size(); ++k)
                    if (arg[k] == '\\' && (k + 1 >= arg.size() || (arg[k + 1] != '\\' && arg[k + 1] != 'n')))
                        return fail("invalid escape in HELP");
                    else if (arg[k] == '\\')
                        ++k;
                f.help = std::string(arg);
                if (f.help.empty()) return fail("empty HELP");
            } else {
                if (!f.type.empty()) return fail("second TYPE");
                if (!f.samples.empty()) return fail("TYPE after samples");
                if (arg != "counter" && arg != "gauge" && arg != "histogram" && arg != "summary" &&
                    arg != "untyped")
                    return fail("unknown type");
                f.type = std::string(arg);
            }
            continue;
        }
        Sample s;
        std::string why = parse_sample(line, s);
        if (!why.empty()) return fail(why);
        if (current.empty() || e.families[current].type.empty()) return fail("sample before its TYPE");
        Family& f = e.families[current];
        if (!sample_belongs(s.name, current, f.type)) return fail("sample outside its family " + current);
        if (f.type == "counter" && (s.value < 0 || std::isnan(s.value))) return fail("negative counter");
        std::string key = s.name;
        for (const auto& [k, v] : s.labels) key += "\x1f" + k + "=" + v;
        if (!series.insert(key).second) return fail("duplicate series");
        f.samples.push_back(std::move(s));
    }
    for (const auto& [name, f] : e.families)
        if (f.type.empty()) {
            e.error = name + ": HELP without TYPE";
            return e;
        }
    e.error = check_histograms(e);
    return e;
}

// ---------------------------------------------------------------------------------------------------------------

Config two_route_config() {
    Config c;
    RouteConfig capture;
    capture.name = "capture";
    capture.privacy_profile = "events";
    RouteConfig web;
    web.name = "web";
    c.routes = {capture, web};
    UpstreamConfig up;
    up.name = "capture";
    c.upstreams = {up};
    return c;
}

TEST(MetricsParser, RejectsMalformedExposition) {
    // The parser guards every other test here, so it must fail on each class of mistake.
    const char* bad[] = {
        "x_total 1\n",                                                // sample before TYPE
        "# TYPE x counter\nx 1",                                      // no final newline
        "# TYPE x counter\nx{a=\"b\\q\"} 1\n",                        // invalid escape
        "# TYPE x counter\nx{a=\"b\"}  1\n",                          // two spaces
        "# TYPE x counter\nx -1\n",                                   // negative counter
        "# TYPE x counter\n# TYPE y gauge\ny 1\n# TYPE x counter\n",  // second TYPE / non-contiguous
        "# TYPE x counter\nx 1\nx 2\n",                               // duplicate series
        "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\n",  // not
                                                                                                    // cumulative
        "# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_sum 1\nh_count 1\n",     // no +Inf
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 1\n",  // count mismatch
        "# TYPE x gauge\ny 1\n",                                              // sample outside family
        "# TYPE x counter\nx{1a=\"b\"} 1\n",                                  // bad label name
    };
    for (const char* text : bad) EXPECT_NE(parse_exposition(text).error, "") << text;
    auto good = parse_exposition(
        "# HELP h a \\\\ help\n# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum "
        "3.5\n"
        "h_count 2\n");
    EXPECT_EQ(good.error, "");
}

TEST(Metrics, EmptyRegistryScrapesCleanly) {
    Metrics m(2);
    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    EXPECT_EQ(e.families.at("edgeguard_requests_total").type, "counter");
    EXPECT_EQ(e.families.at("edgeguard_request_duration_seconds").type, "histogram");
    EXPECT_EQ(e.value("edgeguard_config_reloads_total", "edgeguard_config_reloads_total", {}), 0.0);
}

TEST(Metrics, RequestCountersSumAcrossShardsByRouteAndStatusClass) {
    Metrics m(2);
    auto ids = m.register_config(two_route_config());
    ASSERT_EQ(ids.routes.size(), 2u);
    m.shard(0).request_done(ids.routes[0], 200, 1'000, 100, 10);
    m.shard(1).request_done(ids.routes[0], 204, 2'000, 50, 5);
    m.shard(1).request_done(ids.routes[0], 503, 2'000, 1, 1);
    m.shard(0).request_done(ids.routes[1], 404, 2'000, 0, 7);
    m.shared_shard().request_done(kOtherLabel, 400, 10, 3, 3);  // no route matched

    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    const std::string fam = "edgeguard_requests_total";
    EXPECT_EQ(e.value(fam, fam, {{"route", "capture"}, {"code", "2xx"}}), 2.0);
    EXPECT_EQ(e.value(fam, fam, {{"route", "capture"}, {"code", "5xx"}}), 1.0);
    EXPECT_EQ(e.value(fam, fam, {{"route", "capture"}, {"code", "4xx"}}), 0.0);
    EXPECT_EQ(e.value(fam, fam, {{"route", "web"}, {"code", "4xx"}}), 1.0);
    EXPECT_EQ(e.value(fam, fam, {{"route", "_other"}, {"code", "4xx"}}), 1.0);
    EXPECT_EQ(
        e.value("edgeguard_received_bytes_total", "edgeguard_received_bytes_total", {{"route", "capture"}}),
        151.0);
    EXPECT_EQ(e.value("edgeguard_sent_bytes_total", "edgeguard_sent_bytes_total", {{"route", "web"}}), 7.0);
}

TEST(Metrics, LatencyHistogramIsCumulativeWithSumAndCount) {
    Metrics m(1);
    auto ids = m.register_config(two_route_config());
    auto& s = m.shard(0);
    s.request_done(ids.routes[1], 200, 3'000, 0, 0);       // 3 ms
    s.request_done(ids.routes[1], 200, 200'000, 0, 0);     // 200 ms
    s.request_done(ids.routes[1], 200, 20'000'000, 0, 0);  // 20 s, beyond the last finite bucket
    s.upstream_response(ids.upstreams[0], 10'000);         // exactly 0.01 s lands in le="0.01"

    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    const std::string h = "edgeguard_request_duration_seconds";
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "web"}, {"le", "0.005"}}), 1.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "web"}, {"le", "0.1"}}), 1.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "web"}, {"le", "0.25"}}), 2.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "web"}, {"le", "10"}}), 2.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "web"}, {"le", "+Inf"}}), 3.0);
    EXPECT_EQ(e.value(h, h + "_count", {{"route", "web"}}), 3.0);
    EXPECT_NEAR(*e.value(h, h + "_sum", {{"route", "web"}}), 20.203, 1e-9);
    const std::string u = "edgeguard_upstream_duration_seconds";
    EXPECT_EQ(e.value(u, u + "_bucket", {{"upstream", "capture"}, {"le", "0.005"}}), 0.0);
    EXPECT_EQ(e.value(u, u + "_bucket", {{"upstream", "capture"}, {"le", "0.01"}}), 1.0);
}

TEST(Metrics, AnObservationOnABucketBoundLandsInThatBucket) {
    Metrics m(1);
    auto ids = m.register_config(two_route_config());
    auto& s = m.shard(0);
    s.request_done(ids.routes[0], 200, 100, 0, 0);        // exactly 0.0001 s
    s.request_done(ids.routes[0], 200, 250, 0, 0);        // exactly 0.00025 s
    s.request_done(ids.routes[0], 200, 251, 0, 0);        // just above it
    s.request_done(ids.routes[0], 200, 10'000'000, 0, 0);  // exactly the last finite bound, 10 s
    s.request_done(ids.routes[0], 200, 10'000'001, 0, 0);  // just above it

    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    const std::string h = "edgeguard_request_duration_seconds";
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "0.0001"}}), 1.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "0.00025"}}), 2.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "0.0005"}}), 3.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "5"}}), 3.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "10"}}), 4.0);
    EXPECT_EQ(e.value(h, h + "_bucket", {{"route", "capture"}, {"le", "+Inf"}}), 5.0);
}

TEST(Metrics, GaugesAndUpstreamCountersMove) {
    Metrics m(2);
    auto ids = m.register_config(two_route_config());
    const uint32_t up = ids.upstreams[0];
    m.shard(0).connection_opened();
    m.shard(0).connection_opened();
    m.shard(1).connection_closed();  // a connection may close on another shard's books: sums still hold
    m.shard(0).stream_opened();
    m.shard(0).pool_idle_delta(up, 3);
    m.shard(1).pool_idle_delta(up, -1);
    m.shard(1).pool_active_delta(up, 2);
    m.shard(0).upstream_connect_error(up);
    m.shard(1).upstream_timeout(up);
    m.shard(1).upstream_retry(up);
    m.shard(1).upstream_retry(up);
    m.shard(0).rejected(RejectReason::Allowlist);
    m.shard(1).rejected(RejectReason::RateLimit);
    m.shard(1).rejected(RejectReason::RateLimit);
    m.shared_shard().tls_handshake_failed();
    m.shared_shard().rate_limit_fell_back();

    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    EXPECT_EQ(e.value("edgeguard_active_connections", "edgeguard_active_connections", {}), 1.0);
    EXPECT_EQ(e.value("edgeguard_connections_accepted_total", "edgeguard_connections_accepted_total", {}),
              2.0);
    EXPECT_EQ(e.value("edgeguard_active_streams", "edgeguard_active_streams", {}), 1.0);
    const std::string pool = "edgeguard_upstream_pool_connections";
    EXPECT_EQ(e.value(pool, pool, {{"upstream", "capture"}, {"state", "idle"}}), 2.0);
    EXPECT_EQ(e.value(pool, pool, {{"upstream", "capture"}, {"state", "active"}}), 2.0);
    EXPECT_EQ(e.value("edgeguard_upstream_connect_errors_total", "edgeguard_upstream_connect_errors_total",
                      {{"upstream", "capture"}}),
              1.0);
    EXPECT_EQ(e.value("edgeguard_upstream_timeouts_total", "edgeguard_upstream_timeouts_total",
                      {{"upstream", "capture"}}),
              1.0);
    EXPECT_EQ(e.value("edgeguard_upstream_retries_total", "edgeguard_upstream_retries_total",
                      {{"upstream", "capture"}}),
              2.0);
    const std::string rej = "edgeguard_rejections_total";
    EXPECT_EQ(e.value(rej, rej, {{"reason", "allowlist"}}), 1.0);
    EXPECT_EQ(e.value(rej, rej, {{"reason", "rate_limit"}}), 2.0);
    EXPECT_EQ(e.value(rej, rej, {{"reason", "privacy"}}), 0.0);
    EXPECT_EQ(e.value("edgeguard_tls_handshake_failures_total", "edgeguard_tls_handshake_failures_total", {}),
              1.0);
    EXPECT_EQ(e.value("edgeguard_rate_limit_fallbacks_total", "edgeguard_rate_limit_fallbacks_total", {}),
              1.0);
}

TEST(Metrics, PrivacyDecisionsByProfileRuleAndAction) {
    Metrics m(1);
    auto ids = m.register_config(two_route_config());
    const uint32_t events = ids.profile("events");
    ASSERT_NE(events, kOtherLabel);
    EXPECT_EQ(ids.profile("nope"), kOtherLabel);

    privacy::FilterOutput out;
    out.verdict = privacy::FilterOutput::Verdict::Rewritten;
    out.audit.push_back({"email", "batch[*].properties.$set.email", "redact", 3});
    out.audit.push_back({"ip", "batch[*].properties.$ip", "truncate_ip", 1});
    out.audit.push_back({"card", "batch[*].properties.note", "frobnicate", 1});  // an action we do not know
    m.record_privacy(m.shard(0), events, out);
    m.record_privacy(m.shard(0), events, out);
    privacy::FilterOutput rejected;
    rejected.verdict = privacy::FilterOutput::Verdict::Rejected;
    rejected.status = 422;
    rejected.audit.push_back({"ssn", "batch[*].properties.ssn", "reject", 1});
    m.record_privacy(m.shard(0), events, rejected);
    privacy::FilterOutput undecodable;  // the filter fails closed on a body it cannot decode
    undecodable.verdict = privacy::FilterOutput::Verdict::Rejected;
    undecodable.status = 415;
    m.record_privacy(m.shard(0), events, undecodable);
    privacy::FilterOutput passed;  // `on_undecodable: pass` lets it through and says so in the audit
    passed.audit.push_back({"on_undecodable", "", "pass", 1});
    m.record_privacy(m.shard(0), events, passed);

    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    const std::string d = "edgeguard_privacy_decisions_total";
    EXPECT_EQ(e.value(d, d, {{"profile", "events"}, {"rule", "email"}, {"action", "redact"}}), 6.0);
    EXPECT_EQ(e.value(d, d, {{"profile", "events"}, {"rule", "ip"}, {"action", "truncate_ip"}}), 2.0);
    EXPECT_EQ(e.value(d, d, {{"profile", "events"}, {"rule", "card"}, {"action", "other"}}), 2.0);
    EXPECT_EQ(e.value(d, d, {{"profile", "events"}, {"rule", "ssn"}, {"action", "reject"}}), 1.0);
    const std::string v = "edgeguard_privacy_requests_total";
    EXPECT_EQ(e.value(v, v, {{"profile", "events"}, {"verdict", "rewritten"}}), 2.0);
    EXPECT_EQ(e.value(v, v, {{"profile", "events"}, {"verdict", "rejected"}}), 1.0);
    EXPECT_EQ(e.value(v, v, {{"profile", "events"}, {"verdict", "unchanged"}}), 1.0);
    EXPECT_EQ(e.value(v, v, {{"profile", "events"}, {"verdict", "decode_failed"}}), 1.0);
    EXPECT_EQ(e.value(d, d, {{"profile", "events"}, {"rule", "on_undecodable"}, {"action", "pass"}}), 1.0);
}

TEST(Metrics, ReloadCountersAndConfigHashInfo) {
    Metrics m(1);
    m.config_loaded("abc123");
    m.config_reload_failed();
    m.config_reload_failed();
    m.config_loaded("def456");
    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    EXPECT_EQ(e.value("edgeguard_config_reloads_total", "edgeguard_config_reloads_total", {}), 2.0);
    EXPECT_EQ(e.value("edgeguard_config_reload_failures_total", "edgeguard_config_reload_failures_total", {}),
              2.0);
    EXPECT_EQ(e.value("edgeguard_config_info", "edgeguard_config_info", {{"hash", "def456"}}), 1.0);
    EXPECT_FALSE(e.value("edgeguard_config_info", "edgeguard_config_info", {{"hash", "abc123"}}).has_value());
    EXPECT_GT(*e.value("edgeguard_config_last_reload_success_timestamp_seconds",
                       "edgeguard_config_last_reload_success_timestamp_seconds", {}),
              1.6e9);
}

TEST(Metrics, LabelValuesAreEscaped) {
    Metrics m(1);
    Config c;
    RouteConfig r;
    r.name = "we\"ird\\route\nname";
    c.routes = {r};
    auto ids = m.register_config(c);
    m.shard(0).request_done(ids.routes[0], 200, 1, 0, 0);
    auto text = m.render();
    auto e = parse_exposition(text);
    ASSERT_EQ(e.error, "") << text;
    EXPECT_EQ(e.value("edgeguard_requests_total", "edgeguard_requests_total",
                      {{"route", "we\"ird\\route\nname"}, {"code", "2xx"}}),
              1.0);
}

TEST(Metrics, ExternalFamiliesAreRendered) {
    Metrics m(1);
    std::atomic<uint64_t> drops{5};
    m.add_external("edgeguard_access_log_dropped_total", "Lines dropped.", "counter",
                   [&] { return static_cast<double>(drops.load()); });
    drops = 7;
    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    EXPECT_EQ(e.value("edgeguard_access_log_dropped_total", "edgeguard_access_log_dropped_total", {}), 7.0);
}

TEST(Metrics, CollectorFamiliesAreRenderedWithEscapedLabels) {
    Metrics m(1);
    uint64_t handshakes = 3;
    m.add_collector([&](std::string& out) {
        append_metric_family(out, "edgeguard_test_things_total", "Things, by listener.", "counter");
        append_metric_sample(out, "edgeguard_test_things_total", {{"listener", "a\"b"}, {"kind", "x"}}, handshakes);
        append_metric_sample(out, "edgeguard_test_things_total", {{"listener", "c"}, {"kind", "y"}}, 0);
    });
    handshakes = 4;  // read at scrape time, not at registration
    auto text = m.render();
    auto e = parse_exposition(text);
    ASSERT_EQ(e.error, "") << text;
    EXPECT_EQ(e.value("edgeguard_test_things_total", "edgeguard_test_things_total",
                      {{"listener", "a\"b"}, {"kind", "x"}}),
              4.0);
    EXPECT_EQ(e.value("edgeguard_test_things_total", "edgeguard_test_things_total", {{"listener", "c"}, {"kind", "y"}}),
              0.0);
}

TEST(LabelTable, InternIsStableAndOverflowGoesToOther) {
    LabelTable t(4);  // _other + 3 names
    EXPECT_EQ(t.name(kOtherLabel), kOtherLabelName);
    uint32_t a = t.intern("a"), b = t.intern("b");
    EXPECT_NE(a, b);
    EXPECT_EQ(t.intern("a"), a);
    EXPECT_EQ(t.find("b"), b);
    EXPECT_EQ(t.find("zzz"), kOtherLabel);
    uint32_t c = t.intern("c");
    EXPECT_EQ(t.size(), 4u);
    EXPECT_EQ(t.intern("d"), kOtherLabel);  // full
    EXPECT_EQ(t.name(c), "c");
    EXPECT_EQ(t.size(), 4u);
}

TEST(LabelTable, ConcurrentInternAgrees) {
    LabelTable t(128);
    std::vector<std::vector<uint32_t>> seen(4);
    std::vector<std::thread> threads;
    for (int w = 0; w < 4; ++w)
        threads.emplace_back([&, w] {
            for (int i = 0; i < 100; ++i) seen[w].push_back(t.intern("rule-" + std::to_string(i)));
        });
    for (auto& th : threads) th.join();
    for (int w = 1; w < 4; ++w) EXPECT_EQ(seen[w], seen[0]);
    EXPECT_EQ(t.size(), 101u);
    for (int i = 0; i < 100; ++i) EXPECT_EQ(t.name(seen[0][i]), "rule-" + std::to_string(i));
}

TEST(Metrics, ConcurrentWorkersLoseNoUpdates) {
    constexpr int kWorkers = 4, kPerWorker = 50'000;
    Metrics m(kWorkers);
    auto ids = m.register_config(two_route_config());
    std::vector<std::thread> threads;
    for (int w = 0; w < kWorkers; ++w)
        threads.emplace_back([&, w] {
            for (int i = 0; i < kPerWorker; ++i) m.shard(w).request_done(ids.routes[0], 200, 100, 1, 2);
        });
    // Scrapes while workers write must always parse.
    for (int i = 0; i < 20; ++i) ASSERT_EQ(parse_exposition(m.render()).error, "");
    for (auto& th : threads) th.join();
    auto e = parse_exposition(m.render());
    ASSERT_EQ(e.error, "");
    EXPECT_EQ(e.value("edgeguard_requests_total", "edgeguard_requests_total",
                      {{"route", "capture"}, {"code", "2xx"}}),
              double(kWorkers * kPerWorker));
    EXPECT_EQ(e.value("edgeguard_sent_bytes_total", "edgeguard_sent_bytes_total", {{"route", "capture"}}),
              double(2 * kWorkers * kPerWorker));
}

}  // namespace
}  // namespace edgeguard
