// Every body in ../shared/corpus through the shipped conf/privacy.yaml: it decodes, clean bodies come back
// Unchanged (forwarded byte-identical), bodies with personal data come back as valid JSON without it, and
// filtering the output again changes nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <re2/re2.h>

#include <filesystem>

#include "filter_test_support.h"
#include "filters/decode/base64.h"

namespace edgeguard::privacy {
namespace {

using namespace edgeguard::privacy::testing;
namespace fs = std::filesystem;
using V = FilterOutput::Verdict;

struct CorpusRequest {
    std::string name;
    std::string profile = "events";
    std::string path = "/batch/";
    std::string method = "POST";
    std::string query;
    std::string content_type = "application/json";
    std::string content_encoding;
    std::string body;
    bool plain_json = false;  // the body itself is the JSON (so its text can be checked directly)
};

bool contains(std::string_view s, std::string_view part) { return s.find(part) != std::string_view::npos; }

std::string profile_for(std::string_view name) {
    if (contains(name, "flags-request") || contains(name, "flags_request") || contains(name, "server-flags") ||
        contains(name, "flags_android") || contains(name, "android_flags") || contains(name, "flags-request-body")) {
        return "flags";
    }
    if (contains(name, "replay") || contains(name, "session-replay")) return "replay";
    return "events";
}

std::vector<CorpusRequest> corpus_requests() {
    std::vector<CorpusRequest> out;
    const fs::path root = fs::path(shared_dir()) / "corpus";
    auto add_file = [&](const fs::path& p) {
        const std::string name = p.filename().string();
        if (name == "PROVENANCE.md" || name == "manifest.json" || name.ends_with(".snap") || name.ends_with(".jsonl") ||
            name.ends_with(".md")) {
            return;
        }
        CorpusRequest r;
        r.name = p.lexically_relative(root).string();
        r.profile = profile_for(name);
        r.body = read_file(p.string());
        if (name.ends_with(".url")) {
            // A GET with ?data=: the file is the request target.
            std::string target = r.body;
            while (!target.empty() && (target.back() == '\n' || target.back() == '\r')) target.pop_back();
            const size_t q = target.find('?');
            r.method = "GET";
            r.path = target.substr(0, q);
            r.query = q == std::string::npos ? "" : target.substr(q + 1);
            r.body.clear();
            r.content_type.clear();
        } else if (name.ends_with(".form") || contains(name, "-form__")) {
            r.content_type = "application/x-www-form-urlencoded";
            r.path = "/e/";
            if (contains(name, "lz64")) r.query = "compression=lz64";
        } else if (name.ends_with(".gz") || contains(name, ".body.gz")) {
            r.content_type = "text/plain";
            if (contains(name, "gzip-content-encoding")) {
                r.content_type = "application/json; charset=utf-8";
                r.content_encoding = "gzip";
            }
        } else if (contains(name, "lz64-raw")) {
            r.content_type = "text/plain";
            r.query = "compression=lz64";
        } else if (contains(name, "base64-raw")) {
            r.content_type = "text/plain";
        } else {
            r.plain_json = name.ends_with(".json");
        }
        if (contains(name, "flags")) r.path = "/flags/";
        if (r.profile == "replay") r.path = "/s/";
        out.push_back(std::move(r));
    };
    for (const auto& e : fs::recursive_directory_iterator(root)) {
        if (e.is_regular_file()) add_file(e.path());
    }
    // The recorded request dump: one real request a line, body in base64.
    const std::string dump = read_file((root / "PostHog+hog-rs__capture__tests__requests_dump.jsonl").string());
    size_t line_no = 0, pos = 0;
    simdjson::dom::parser parser;
    while (pos < dump.size()) {
        size_t end = dump.find('\n', pos);
        if (end == std::string::npos) end = dump.size();
        const std::string line = dump.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (line.empty() || line[0] != '{') continue;
        simdjson::dom::element doc;
        if (parser.parse(line).get(doc)) continue;
        CorpusRequest r;
        r.name = "requests_dump.jsonl line " + std::to_string(line_no);
        const std::string target{std::string_view(doc["path"])};
        const size_t q = target.find('?');
        r.path = target.substr(0, q);
        r.query = q == std::string::npos ? "" : target.substr(q + 1);
        r.method = std::string(std::string_view(doc["method"]));
        r.content_type = std::string(std::string_view(doc["content_type"]));
        r.content_encoding = std::string(std::string_view(doc["content_encoding"]));
        auto body = base64_decode(std::string_view(doc["body"]));
        if (!std::holds_alternative<std::string>(body)) continue;
        r.body = std::get<std::string>(body);
        out.push_back(std::move(r));
    }
    return out;
}

// The corpus inputs known to carry personal data (emails in $set, person_properties, distinct_id, titles,
// planted values in synthetic files). Everything else must pass byte-identical.
bool expected_personal(std::string_view name) {
    for (std::string_view marker :
         {"snapshots__batch-request", "server-batch-family", "server-flags-maximal", "snapshots__event_channel_shapes",
          "event-shapes-batch", "feature-flags-request", "flags_request", "legacy_event_family",
          "batch_events_payload", "line05", "line10", "line12", "line13", "line16", "line 5", "line 10", "line 12",
          "line 13", "line 16", "gzip-content-encoding__android_batch", "replay-cv2024-10", "identify.test.ts.snap.01",
          "server-wire-snapshots.spec.ts.snap.02", "event-snapshots.spec.ts.snap.01", "event-snapshots.spec.ts.snap.02",
          "lz64-", "gzip-js-text-plain__batch_events_payload"}) {
        if (contains(name, marker)) return true;
    }
    return false;
}

class FilterCorpus : public ::testing::Test {
protected:
    void SetUp() override {
        if (!fs::exists(fs::path(shared_dir()) / "corpus")) GTEST_SKIP() << "no ../shared/corpus";
        rules_ = default_rules();
        ASSERT_TRUE(rules_);
    }
    FilterOutput filter(const CorpusRequest& r, std::string_view body, std::string_view query,
                        std::string_view content_type, std::string_view encoding) {
        FilterInput in;
        in.method = r.method;
        in.path = r.path;
        in.query = query;
        in.content_type = content_type;
        in.content_encoding = encoding;
        in.body = body;
        in.client_ip = "81.23.45.67";
        in.ip_policy = IpPolicy::Truncate;
        return rules_->apply(r.profile, in);
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(FilterCorpus, EveryBodyDecodesCleanOnesPassPersonalDataIsRemovedAndFilteringIsIdempotent) {
    const auto requests = corpus_requests();
    ASSERT_GT(requests.size(), 60u);
    const RE2 email(R"([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})");
    size_t rewritten = 0, unchanged = 0;
    for (const auto& r : requests) {
        SCOPED_TRACE(r.name);
        const FilterOutput out = filter(r, r.body, r.query, r.content_type, r.content_encoding);
        ASSERT_NE(out.verdict, V::Rejected) << out.status << " " << out.code << ": " << out.error;
        if (out.verdict == V::Unchanged) {
            ++unchanged;
            EXPECT_FALSE(expected_personal(r.name)) << "personal data was expected but nothing matched";
            if (r.plain_json) {
                EXPECT_FALSE(RE2::PartialMatch(r.body, email)) << "an email passed unchanged";
            }
            continue;
        }
        ++rewritten;
        // Person and group properties are allowlist-first: a body whose only change is team properties
        // dropped from $set, person_properties or group properties (the SDKs' test fixtures use `foo`,
        // `myProperty`, `age`) changed by policy, not because a detector or key rule misfired.
        const bool only_unlisted_person_properties =
            std::all_of(out.audit.begin(), out.audit.end(),
                        [](const AuditEntry& a) { return a.rule_id == "person_properties" || a.rule_id == "client_ip_policy"; });
        EXPECT_TRUE(expected_personal(r.name) || only_unlisted_person_properties)
            << "a clean body was rewritten:\n" << out.body.substr(0, 2000);
        EXPECT_TRUE(valid_json(out.body));
        EXPECT_FALSE(RE2::PartialMatch(out.body, email)) << "an email survived";
        // Capture reads the rewritten body as plain JSON with the query the proxy sends.
        const FilterOutput again = filter(r, out.body, out.query, "application/json", "");
        EXPECT_EQ(again.verdict, V::Unchanged) << "filtering twice changed the body again:\n" << again.body.substr(0, 2000);
    }
    EXPECT_GT(rewritten, 10u);
    EXPECT_GT(unchanged, 30u);
}

TEST_F(FilterCorpus, ReplayCompressedFieldIsRewrittenAndReEncoded) {
    const fs::path p = fs::path(shared_dir()) / "corpus/derived/synthetic/replay-cv2024-10__single_replay_event_payload.json";
    if (!fs::exists(p)) GTEST_SKIP() << "no synthetic replay file";
    CorpusRequest r;
    r.profile = "replay";
    r.path = "/s/";
    r.body = read_file(p.string());
    const FilterOutput out = filter(r, r.body, "", "application/json", "");
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_TRUE(valid_json(out.body));
    // The field is still a cv 2024-10 gzip-latin1 string: walking the output finds nothing more.
    EXPECT_NE(out.body.find("\"cv\":\"2024-10\""), std::string::npos);
    EXPECT_NE(out.body.find("\"data\":\"\\u001f\xc2\x8b\\b"), std::string::npos);  // gzip magic 1f 8b 08 as latin-1
    const FilterOutput again = filter(r, out.body, "", "application/json", "");
    EXPECT_EQ(again.verdict, V::Unchanged);
    bool saw_replay_path = false;
    for (const auto& a : out.audit) saw_replay_path = saw_replay_path || contains(a.path, "$snapshot_data[*].data");
    EXPECT_TRUE(saw_replay_path);
}

TEST_F(FilterCorpus, PrivacyCasesThroughTheDefaultRules) {
    const std::string cases = read_file(shared_dir() + "/privacy-cases.jsonl");
    if (cases.empty()) GTEST_SKIP() << "no privacy-cases.jsonl";
    simdjson::dom::parser parser;
    size_t pos = 0, checked = 0;
    while (pos < cases.size()) {
        size_t end = cases.find('\n', pos);
        if (end == std::string::npos) end = cases.size();
        const std::string line = cases.substr(pos, end - pos);
        pos = end + 1;
        simdjson::dom::element doc;
        if (line.empty() || parser.parse(line).get(doc)) continue;
        const std::string value{std::string_view(doc["value"])};
        const bool pii = bool(doc["pii"]);
        const std::string kind{std::string_view(doc["kind"])};
        // The value as a free-text property of an ordinary event.
        std::string body = R"({"event":"e","properties":{"text":")";
        body += [&] {
            std::string s;
            for (char c : value) {
                if (c == '"' || c == '\\') s.push_back('\\');
                s.push_back(c);
            }
            return s;
        }();
        body += "\"}}";
        CorpusRequest r;
        const FilterOutput out = filter(r, body, "", "application/json", "");
        SCOPED_TRACE(kind + ": " + value);
        if (pii) {
            EXPECT_NE(out.verdict, V::Unchanged) << "personal data passed";
        } else {
            EXPECT_EQ(out.verdict, V::Unchanged) << "clean look-alike was changed: " << out.body;
        }
        ++checked;
    }
    EXPECT_GT(checked, 80u);
}

}  // namespace
}  // namespace edgeguard::privacy
