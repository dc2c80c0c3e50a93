// Object traces (filters/walker/object_trace.h) pass over members whose bytes repeat the previous object of
// the same kind. They may only save work: every body must get the same verdict, output and audit with
// traces as without them. Random batches whose events repeat a template with small mutations (a changed
// value, an inserted, deleted or swapped member, personal data, invalid tokens, escapes, nested objects,
// other spacing) are filtered on one thread with traces and on another without, under every profile of the
// shipped rules, the test rules and a file with event- and path-scoped rules.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "filters/decode/replay_compression.h"
#include "filters/walker/walker.h"
#include "tests/unit/filters/batch_generator.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy::testing {
namespace {

struct Result {
    FilterOutput::Verdict verdict;
    std::string body;
    std::string query;
    std::vector<std::string> audit;
    bool operator==(const Result&) const = default;
};

Result run_once(const RuleSet& rules, std::string_view profile, const std::string& body) {
    FilterOutput out = run(rules, profile, body, "application/json", "", "", "/batch/", IpPolicy::Truncate);
    Result r{out.verdict, out.body, out.query, {}};
    for (const auto& a : out.audit)
        r.audit.push_back(a.rule_id + " " + a.path + " " + a.action + " " + std::to_string(a.count));
    return r;
}

// Filters `bodies` in order on a thread of its own (fresh memos and traces), with traces on or off, twice
// over, so the second round also starts from traces the first round left.
std::vector<Result> run_thread(const RuleSet& rules, std::string_view profile,
                               const std::vector<std::string>& bodies, bool traces, uint64_t* passed_over) {
    std::vector<Result> results;
    std::thread t([&] {
        auto& scratch = walk::thread_scratch();
        scratch.traces.enabled = traces;
        for (int round = 0; round < 2; ++round)
            for (const auto& b : bodies) results.push_back(run_once(rules, profile, b));
        if (passed_over != nullptr) *passed_over = scratch.traces.members_passed_over;
    });
    t.join();
    return results;
}

struct Outcomes {
    size_t unchanged = 0, rewritten = 0, rejected = 0;
    uint64_t passed_over = 0;  // members the traces answered for
};

Outcomes expect_traces_change_nothing(const RuleSet& rules, std::string_view profile, uint64_t seed) {
    BatchGenerator gen(seed);
    std::vector<std::string> bodies;
    for (int i = 0; i < 300; ++i) bodies.push_back(gen.next());
    Outcomes seen;
    const auto without = run_thread(rules, profile, bodies, false, nullptr);
    const auto with = run_thread(rules, profile, bodies, true, &seen.passed_over);
    EXPECT_EQ(without.size(), with.size());
    size_t mismatches = 0;
    for (size_t i = 0; i < with.size() && i < without.size(); ++i) {
        seen.unchanged += with[i].verdict == FilterOutput::Verdict::Unchanged;
        seen.rewritten += with[i].verdict == FilterOutput::Verdict::Rewritten;
        seen.rejected += with[i].verdict == FilterOutput::Verdict::Rejected;
        if (with[i] == without[i]) continue;
        if (++mismatches > 3) continue;  // the first few are enough to debug
        const auto& body = bodies[i % bodies.size()];
        ADD_FAILURE() << "profile " << profile << ", body " << i << ": " << body
                      << "\nwithout traces: " << verdict_name(without[i].verdict) << " " << without[i].body
                      << "\nwith traces:    " << verdict_name(with[i].verdict) << " " << with[i].body;
    }
    EXPECT_EQ(mismatches, 0u) << "profile " << profile;
    return seen;
}

// The generated bodies must reach every verdict, and traces must actually answer for members, or the
// comparison proves nothing.
void expect_exercised(const Outcomes& seen, std::string_view profile) {
    EXPECT_GT(seen.unchanged, 0u) << profile;
    EXPECT_GT(seen.rewritten, 0u) << profile;
    EXPECT_GT(seen.rejected, 0u) << profile;
    EXPECT_GT(seen.passed_over, 1000u) << profile;
}

TEST(FilterTrace, ShippedRulesSameResultWithAndWithoutTraces) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    expect_exercised(expect_traces_change_nothing(*rules, "events", 1), "events");
    expect_exercised(expect_traces_change_nothing(*rules, "flags", 2), "flags");
    // strict: the allowlist decides each property (no traces there); nested objects still use them
    expect_traces_change_nothing(*rules, "strict", 3);
}

TEST(FilterTrace, TestRulesSameResultWithAndWithoutTraces) {
    auto rules = test_rules();
    ASSERT_TRUE(rules);
    expect_exercised(expect_traces_change_nothing(*rules, "events", 10), "events");
    // report: hits are counted, never acted on; webhook: any hit rejects (and a rejected event's members
    // are not compared, so its traces mostly sit out); lenient: one email rule
    EXPECT_GT(expect_traces_change_nothing(*rules, "report", 11).passed_over, 1000u);
    expect_traces_change_nothing(*rules, "webhook", 12);
    EXPECT_GT(expect_traces_change_nothing(*rules, "lenient", 13).passed_over, 1000u);
    expect_traces_change_nothing(*rules, "strict", 14);
    expect_traces_change_nothing(*rules, "strict_reject", 15);
}

// Rules whose effect depends on the event or the path: a member clean in one event must not be passed
// over in an event or at a path where the same bytes are acted on.
TEST(FilterTrace, ScopedRulesSameResultWithAndWithoutTraces) {
    set_test_hash_keys();
    std::vector<RuleError> errors;
    auto rules = RuleSet::load_text(R"(version: 1
hash_key: { id: h1, env: EDGEGUARD_TEST_HASH_KEY }
profiles:
  scoped:
    rules:
      - id: identify-email
        detectors: [email]
        events: ["$identify"]
        action: redact
      - id: set-phone
        detectors: [phone]
        paths: ["properties.$set.*"]
        action: drop
      - id: note-in-purchase
        paths: ["properties.note"]
        events: ["purchase"]
        action: hash
      - id: plan-report
        paths: ["**.plan"]
        action: drop
        mode: report
  no_rules:
    rules: []
)",
                                    "inline", errors);
    for (const auto& e : errors) ADD_FAILURE() << e.line << ":" << e.col << ": " << e.message;
    ASSERT_TRUE(rules);
    expect_exercised(expect_traces_change_nothing(*rules, "scoped", 20), "scoped");
    EXPECT_GT(expect_traces_change_nothing(*rules, "no_rules", 21).passed_over, 1000u);
}

// A thread that alternates profiles must not pass members over on the word of the other profile's walk:
// every member is clean for a profile without rules.
TEST(FilterTrace, ProfileSwitchForgetsTraces) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    std::vector<RuleError> errors;
    auto none = RuleSet::load_text("profiles:\n  events:\n    rules: []\n", "inline", errors);
    ASSERT_TRUE(none);
    BatchGenerator gen(30);
    std::vector<std::string> bodies;
    for (int i = 0; i < 200; ++i) bodies.push_back(gen.next());
    auto alternate = [&](bool traces) {
        std::vector<Result> results;
        std::thread t([&] {
            walk::thread_scratch().traces.enabled = traces;
            for (const auto& b : bodies) {
                run_once(*none, "events", b);
                results.push_back(run_once(*rules, "events", b));
            }
        });
        t.join();
        return results;
    };
    const auto without = alternate(false);
    const auto with = alternate(true);
    size_t rewritten = 0;
    for (size_t i = 0; i < bodies.size(); ++i) {
        EXPECT_TRUE(with[i] == without[i]) << bodies[i];
        rewritten += with[i].verdict == FilterOutput::Verdict::Rewritten;
    }
    EXPECT_GT(rewritten, 0u);
}

// Objects longer than a trace keeps (kMaxTraceBytes): members past it are always walked, the ones before it
// are still answered for, and the records stay bounded.
TEST(FilterTrace, ObjectsLongerThanATrace) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    auto props = [](int personal_at) {
        std::string p;
        for (int i = 0; i < 2000; ++i) {
            if (i) p += ",";
            p += "\"k" + std::to_string(i) + "\":\"" +
                 (i == personal_at ? std::string("jane.doe@example.com") : "v" + std::to_string(i)) + "\"";
        }
        return p;
    };
    const std::string text = R"({"api_key":"phc_test","batch":[{"event":"a","properties":{)" + props(-1) +
                             R"(}},{"event":"a","properties":{)" + props(1500) +
                             R"(}},{"event":"a","properties":{)" + props(3) + "}}]}";
    std::vector<Result> results;
    uint64_t passed_over = 0;
    size_t kept = 0;
    for (bool traces : {false, true}) {
        std::thread t([&] {
            auto& scratch = walk::thread_scratch();
            scratch.traces.enabled = traces;
            results.push_back(run_once(*rules, "events", text));
            passed_over = scratch.traces.members_passed_over;
            for (const auto& kind : scratch.traces.kinds) kept = std::max(kept, kind.member_count);
        });
        t.join();
    }
    EXPECT_EQ(results[1].verdict, FilterOutput::Verdict::Rewritten);
    EXPECT_EQ(results[1].body.find("jane.doe"), std::string::npos);
    EXPECT_TRUE(results[0] == results[1]);
    EXPECT_GT(passed_over, 500u);  // members within the first 8 KiB, in the second and third event
    // Only the members within the first kMaxTraceBytes are kept ("k0":"v0", is 10 bytes), not all 2,000.
    EXPECT_LE(kept, walk::kMaxTraceBytes / 10);
}

// A kind whose objects stop repeating sits out (bounded cost), and comes back once they repeat again.
TEST(FilterTrace, BacksOffWhileObjectsDoNotRepeatAndReturns) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    constexpr int kMembers = 10;
    auto event = [](int unique) {
        std::string e = R"({"event":"a","properties":{)";
        for (int j = 0; j < kMembers; ++j) {
            if (j) e += ",";
            e += "\"k" + std::to_string(j) + "\":\"v" + std::to_string(unique < 0 ? j : unique * 100 + j) +
                 "\"";
        }
        return e + "}}";
    };
    std::string changing = R"({"api_key":"phc_test","batch":[)", repeating = changing;
    for (int i = 0; i < 100; ++i) {
        changing += (i ? "," : "") + event(i);
        repeating += (i ? "," : "") + event(-1);
    }
    changing += "]}";
    repeating += "]}";
    uint64_t after_changing = 0, after_repeating = 0, sat_out = 0;
    std::thread t([&] {
        auto& scratch = walk::thread_scratch();
        run_once(*rules, "events", changing);
        after_changing = scratch.traces.members_passed_over;
        sat_out = scratch.traces.objects_sat_out;
        run_once(*rules, "events", repeating);
        after_repeating = scratch.traces.members_passed_over;
    });
    t.join();
    // Each changing event shares only "k0":"v… up to its digits with the one before: nothing to pass over.
    EXPECT_EQ(after_changing, 0u);
    // Backing off 1, 3, 7, 15, 16, 16, ... events: most of the 100 were walked without comparing.
    EXPECT_GT(sat_out, 80u);
    // Sitting out at most kMaxBackoff events twice (once more against the last changing event), then
    // every member of every event.
    EXPECT_GE(after_repeating, uint64_t{(100 - 2 * walk::kMaxBackoff - 2) * kMembers});
}

// A posthog-js cv:"2024-10" replay field is walked as a document of its own, in a buffer freed when its
// walk ends: traces made inside it must not point into it afterwards (ASan reads the sanitizer pass).
TEST(FilterTrace, ReplayFieldsWalkedInTheirOwnBuffers) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    auto node = [](const std::string& id) {
        return R"({"attributes":{"class":"btn","id":")" + id + R"(","data-x":"1"}})";
    };
    auto item = [&](const std::string& id) {
        const std::string inner =
            R"({"node":{"attributes":{"class":"btn","id":"root","data-x":"1"},"childNodes":[)" + node("a") +
            "," + node("b") + "," + node(id) + "]}}";
        return R"({"type":2,"cv":"2024-10","data":)" + encode_latin1_gzip_json_literal(inner) +
               R"(,"timestamp":1700000000000})";
    };
    std::string text =
        R"([{"event":"$snapshot","properties":{"$session_id":"s1","$window_id":"w1","$snapshot_data":[)";
    for (int i = 0; i < 6; ++i) text += (i ? "," : "") + item(i == 4 ? "jane.doe@example.com" : "c");
    text += R"(]}},{"event":"$snapshot","properties":{"attributes":{"class":"btn","id":"c","data-x":"1"}}}])";
    std::vector<Result> results;
    for (bool traces : {false, true}) {
        std::thread t([&] {
            walk::thread_scratch().traces.enabled = traces;
            for (int round = 0; round < 3; ++round) results.push_back(run_once(*rules, "replay", text));
        });
        t.join();
    }
    ASSERT_EQ(results.size(), 6u);
    EXPECT_EQ(results[0].verdict, FilterOutput::Verdict::Rewritten);
    for (const auto& r : results) EXPECT_TRUE(r == results[0]);
}

// Hand-written neighbours: the member before is clean and identical up to where the next one differs.
TEST(FilterTrace, ByteNeighboursOfAReusableMember) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    auto body = [](const std::vector<std::string>& props) {
        std::string b = R"({"api_key":"phc_test","batch":[)";
        for (size_t i = 0; i < props.size(); ++i) {
            if (i) b += ",";
            b += R"({"event":"$screen","distinct_id":"u","properties":{"$os":"Android",)" + props[i] + "}}";
        }
        return b + "]}";
    };
    const std::vector<std::pair<std::string, FilterOutput::Verdict>> cases = {
        // a number that continues past the remembered one, or turns into an identifier
        {body({R"("n":1,"x":1)", R"("n":1,"x":1e)"}), FilterOutput::Verdict::Rejected},
        {body({R"("n":1,"x":4)", R"("n":1,"x":4111111111111111)"}), FilterOutput::Verdict::Rewritten},
        {body({R"("n":true,"x":1)", R"("n":truex,"x":1)"}), FilterOutput::Verdict::Rejected},
        // the last member of the object, then the same bytes followed by more
        {body({R"("note":"ok")", R"("note":"ok","email":"a@b.co")"}), FilterOutput::Verdict::Rewritten},
        {body({R"("note":"ok")", R"("note":"ok jane.doe@example.com")"}), FilterOutput::Verdict::Rewritten},
        // same bytes at the same index, but the object around it is broken after it
        {body({R"("note":"ok","b":2)", R"("note":"ok" "b":2)"}), FilterOutput::Verdict::Rejected},
        {body({R"("note":"ok","b":2)", R"("note":"ok",,"b":2)"}), FilterOutput::Verdict::Rejected},
        {body({R"("note":"ok","b":2)", R"("note":"ok":"b")"}), FilterOutput::Verdict::Rejected},
    };
    for (const auto& [text, expected] : cases) {
        std::vector<Result> with, without;
        for (bool traces : {false, true}) {
            std::thread t([&] {
                walk::thread_scratch().traces.enabled = traces;
                (traces ? with : without).push_back(run_once(*rules, "events", text));
            });
            t.join();
        }
        EXPECT_EQ(with[0].verdict, expected) << text;
        EXPECT_TRUE(with[0] == without[0]) << text << "\n" << with[0].body << "\n" << without[0].body;
    }
}

}  // namespace
}  // namespace edgeguard::privacy::testing
