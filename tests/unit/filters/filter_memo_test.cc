// The walker's per-thread memos (key info, clean values) and their predicted-slot shortcuts, which
// recognise a remembered key or value in the raw JSON text, may only save work: a body must get the same
// verdict, output and audit from a thread whose memos were warmed by look-alike bodies as from a thread
// that has never filtered anything.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "filters/walker/walker.h"
#include "tests/unit/filters/batch_generator.h"
#include "tests/unit/filters/filter_test_support.h"

namespace edgeguard::privacy::testing {
namespace {

struct Result {
    FilterOutput::Verdict verdict;
    std::string body;
    std::vector<std::string> audit;
};

Result run_once(const RuleSet& rules, std::string_view profile, const std::string& body) {
    FilterOutput out = run(rules, profile, body, "application/json", "", "", "/batch/", IpPolicy::Truncate);
    Result r{out.verdict, out.body, {}};
    for (const auto& a : out.audit)
        r.audit.push_back(a.rule_id + " " + a.path + " " + a.action + " " + std::to_string(a.count));
    return r;
}

// The body's result on a thread of its own: its thread_local memos start empty.
Result run_cold(const RuleSet& rules, std::string_view profile, const std::string& body) {
    Result r;
    std::thread t([&] { r = run_once(rules, profile, body); });
    t.join();
    return r;
}

std::string event(const std::string& props) {
    return R"({"event":"$screen","distinct_id":"user-1","properties":{"$os":"Android","$screen_name":"Home",)" +
           props + "}}";
}

std::string batch(const std::vector<std::string>& events) {
    std::string b = R"({"api_key":"phc_test","batch":[)";
    for (size_t i = 0; i < events.size(); ++i) b += (i ? "," : "") + events[i];
    return b + "]}";
}

void expect_same(const Result& cold, const Result& warm, const std::string& what) {
    EXPECT_EQ(cold.verdict, warm.verdict) << what;
    EXPECT_EQ(cold.body, warm.body) << what;
    EXPECT_EQ(cold.audit, warm.audit) << what;
}

// Each pair: a clean body that fills the memos, then a body of the same shape whose values or keys start
// like the remembered ones (a prefix, the same bytes then an escape, the same text under another key).
TEST(FilterMemo, WarmMemosGiveTheColdResult) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    const std::vector<std::pair<std::string, std::string>> pairs = {
        // remembered "jane.doe" must not answer for "jane.doe@example.com"
        {batch({event(R"("note":"jane.doe")")}), batch({event(R"("note":"jane.doe@example.com")")})},
        // the same bytes followed by an escape instead of the closing quote
        {batch({event(R"("note":"jane.doe")")}), batch({event(R"("note":"jane.doe\u0040example.com")")})},
        // an escaped key spelling of a remembered key, and a key that extends a remembered one
        {batch({event(R"("note":"fine","email_hint":"none")")}),
         batch({event(R"("n\u006fte":"jane.doe@example.com","email":"jane.doe@example.com")")})},
        // a clean value remembered under one key, seen under a key rule's key
        {batch({event(R"("nickname":"+7 912 345-67-89x")")}),
         batch({event(R"("phone":"+7 912 345-67-89")")})},
        // shapes that repeat inside one body, then change
        {batch({event(R"("plan":"pro","note":"ok")"), event(R"("plan":"pro","note":"ok")")}),
         batch({event(R"("plan":"pro","note":"ok")"),
                event(R"("plan":"pro","note":"ok 4111 1111 1111 1111")"),
                event(R"("plan":"pro","note":"ok")")})},
        // $ip under the client IP policy after a clean look-alike
        {batch({event(R"("$ip_note":"203.0.113.9")")}), batch({event(R"("$ip":"203.0.113.9")")})},
        // a remembered value that is a prefix of a long string running to the end of the text
        {batch({event(R"("note":"a")")}),
         R"({"event":"x","properties":{"note":"a)" + std::string(200, 'b') + R"("}})"},
    };
    for (const auto& [warmup, body] : pairs) {
        const Result cold = run_cold(*rules, "events", body);
        Result warm;
        std::thread t([&] {
            run_once(*rules, "events", warmup);
            run_once(*rules, "events", body);  // the body itself warms too: the second run must match
            warm = run_once(*rules, "events", body);
        });
        t.join();
        expect_same(cold, warm, body);
    }
}

// Members in an order of their own in every event: values are then recognised by the clean value their key
// had last rather than by the slot that followed the previous lookup. Every body of a generated run must
// get on one warm thread what it gets on a thread that has never filtered anything.
TEST(FilterMemo, ShuffledMembersWarmGiveTheColdResult) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    BatchGenerator gen(31, /*shuffle=*/true);
    std::vector<std::string> bodies;
    for (int i = 0; i < 200; ++i) bodies.push_back(gen.next());
    std::vector<Result> warm;
    uint64_t by_key = 0;
    std::thread t([&] {
        for (const auto& b : bodies) warm.push_back(run_once(*rules, "events", b));
        by_key = walk::thread_scratch().clean_by_key;
    });
    t.join();
    size_t rewritten = 0;
    for (size_t i = 0; i < bodies.size(); ++i) {
        const Result cold = run_cold(*rules, "events", bodies[i]);
        expect_same(cold, warm[i], bodies[i]);
        rewritten += cold.verdict == FilterOutput::Verdict::Rewritten;
    }
    EXPECT_GT(rewritten, 0u);
    EXPECT_GT(by_key, 100u);  // the shortcut answered, or the comparison proves nothing
}

// Runs generated shuffled and ordered batches on a thread with a fast path off, then on, under every profile
// of the shipped and the test rules: each request must get the same verdict, body and audit both times, and
// the fast path must have answered (`answered` > 100), or the comparison proves nothing — also under the
// test rules' `webhook` profile (no detector rules) when `answers_without_detectors`. With
// `expect_rejections`, the batches' invalid tokens must have been refused too (`lenient` passes an
// undecodable body on unchanged). `unanswered` names profiles where the fast path cannot apply by design
// (the comparison still runs).
void expect_fast_path_changes_nothing(uint64_t seed, const std::function<void(walk::Scratch&, bool)>& enable,
                                      const std::function<uint64_t(const walk::Scratch&)>& answered_by,
                                      bool answers_without_detectors, bool expect_rejections,
                                      bool fresh_values = false,
                                      const std::vector<std::string>& unanswered = {}) {
    auto shipped = default_rules();
    auto test = test_rules();
    ASSERT_TRUE(shipped);
    ASSERT_TRUE(test);
    const std::vector<std::pair<const RuleSet*, std::string>> cases = {
        {shipped.get(), "events"}, {shipped.get(), "flags"}, {shipped.get(), "strict"},
        {test.get(), "events"},    {test.get(), "report"},   {test.get(), "webhook"},
        {test.get(), "lenient"},
    };
    for (const auto& [rules, profile] : cases) {
        for (const bool shuffle : {true, false}) {
            BatchGenerator gen(seed++, shuffle, fresh_values);
            std::vector<std::string> bodies;
            for (int i = 0; i < 150; ++i) bodies.push_back(gen.next());
            auto run_all = [&](bool on, uint64_t* answered) {
                std::vector<Result> results;
                std::thread t([&] {
                    auto& scratch = walk::thread_scratch();
                    enable(scratch, on);
                    for (int round = 0; round < 2; ++round)
                        for (const auto& b : bodies) results.push_back(run_once(*rules, profile, b));
                    if (answered != nullptr) *answered = answered_by(scratch);
                });
                t.join();
                return results;
            };
            uint64_t answered = 0;
            const auto without = run_all(false, nullptr);
            const auto with = run_all(true, &answered);
            ASSERT_EQ(with.size(), without.size());
            size_t rewritten = 0, rejected = 0;
            for (size_t i = 0; i < with.size(); ++i) {
                expect_same(without[i], with[i], profile + ": " + bodies[i % bodies.size()]);
                rewritten += with[i].verdict == FilterOutput::Verdict::Rewritten;
                rejected += with[i].verdict == FilterOutput::Verdict::Rejected;
            }
            if (profile != "webhook") {
                EXPECT_GT(rewritten, 0u) << profile;
            }
            if (expect_rejections && profile != "lenient") {
                EXPECT_GT(rejected, 0u) << profile;
            }
            const bool by_design = std::find(unanswered.begin(), unanswered.end(), profile) != unanswered.end();
            if ((profile != "webhook" || answers_without_detectors) && !by_design) {
                EXPECT_GT(answered, 100u) << profile << (shuffle ? " shuffled" : " ordered");
            }
        }
    }
}

// The raw key index (walker/raw_key_index.h) finds a key's memo slot from its first bytes when members come
// in an order of their own. It may only save work: generated shuffled and ordered runs (keys that share
// their first 16 bytes, keys that only differ after an escape, key-rule keys beside plain look-alikes,
// invalid tokens) must get on a thread with the index what they get on a thread without it, under every
// profile of the shipped and the test rules.
TEST(FilterMemo, RawKeyIndexChangesNothing) {
    expect_fast_path_changes_nothing(
        40, [](walk::Scratch& s, bool on) { s.key_index.enabled = on; },
        [](const walk::Scratch& s) { return s.key_index.hits; }, /*answers_without_detectors=*/true,
        /*expect_rejections=*/false);
}

// Scalar members whose bytes prove them clean (walker/walk_structure.cc, clean_scalar_member: canonical
// UUIDs, ISO-8601 timestamps, numbers too short to be an identifier, true/false/null) skip walk_value. They
// may only save work: generated shuffled and ordered runs (look-alikes one byte off, a hit after the shape,
// escapes, UUIDs under URL keys, identifier-shaped and exponent numbers, invalid tokens) must get on a thread
// with the shortcuts what they get on a thread without them, under every profile of the shipped and the test
// rules.
TEST(FilterMemo, ShapeShortcutsChangeNothing) {
    expect_fast_path_changes_nothing(
        70, [](walk::Scratch& s, bool on) { s.shape_shortcuts = on; },
        [](const walk::Scratch& s) { return s.clean_by_shape; }, /*answers_without_detectors=*/false,
        /*expect_rejections=*/true);
}

// A value remembered by its key's slot is confirmed by its bytes alone while the clean-value memo has not
// been cleared since (walk_structure.cc, known_clean_string). After a clear, that slot may hold another
// key's pair with the same value bytes: here `note` (where a passport-like number is nothing) takes the slot
// `passport_note` last had, and `passport_note` with the same bytes must still be scanned (its key is the
// passport detector's context).
TEST(FilterMemo, ClearedMemoSlotAnswersOnlyForItsOwnKey) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    const std::string number = "4510 123456";
    const size_t slots = walk::thread_scratch().clean_values.capacity();
    const size_t target = fast_string_hash("note", number) & (slots - 1);
    std::string earlier;  // a clean value of `passport_note` whose pair lands where ("note", number) will
    for (int i = 0; earlier.empty(); ++i) {
        const std::string v = "fine-" + std::to_string(i);
        if ((fast_string_hash("passport_note", v) & (slots - 1)) == target) earlier = v;
    }
    const std::string body = batch({event(R"("passport_note":")" + number + R"(")")});
    const Result cold = run_cold(*rules, "events", body);
    ASSERT_EQ(cold.verdict, FilterOutput::Verdict::Rewritten);  // the number is a passport under this key
    Result warm;
    bool reused = false;
    std::thread t([&] {
        auto& memo = walk::thread_scratch().clean_values;
        run_once(*rules, "events", batch({event(R"("passport_note":")" + earlier + R"(")")}));
        const uint32_t earlier_slot =
            memo.find_slot("passport_note", earlier, fast_string_hash("passport_note", earlier));
        const uint32_t generation = memo.generation();
        // Distinct clean pairs that fill the memo to its clear with the last of them (the memo clears when
        // an insertion would pass 3/4 full), so that it holds one pair when `note` comes. A key stops
        // inserting after 256 values: 200 a key.
        const size_t inserts = memo.capacity() * 3 / 4 - memo.size() + 1;
        for (size_t done = 0, k = 0; done < inserts; ++k) {
            std::string props;
            for (size_t i = 0; i < 200 && done < inserts; ++i, ++done)
                props += (props.empty() ? "" : ",") +
                         ("\"fill" + std::to_string(k) + "\":\"w" + std::to_string(i) + "\"");
            run_once(*rules, "events", batch({event(props)}));
        }
        run_once(*rules, "events", batch({event(R"("note":")" + number + R"(")")}));
        reused = memo.generation() != generation &&
                 memo.find_slot("note", number, fast_string_hash("note", number)) == earlier_slot;
        warm = run_once(*rules, "events", body);
    });
    t.join();
    ASSERT_TRUE(reused) << "the memo was not cleared, or the slot not taken: the test proves nothing";
    expect_same(cold, warm, body);
}

// Short strings the memo does not know and on which no detector's gate opens are clean without a scan
// (process_string, DetectorSet::quiet). They may only save work: generated shuffled and ordered runs with
// values drawn anew in every event (some of them personal data) must get on a thread with the shortcut what
// they get on a thread without it, under every profile of the shipped and the test rules.
TEST(FilterMemo, QuietShortcutChangesNothing) {
    expect_fast_path_changes_nothing(
        90, [](walk::Scratch& s, bool on) { s.quiet_shortcuts = on; },
        [](const walk::Scratch& s) { return s.clean_by_quiet; }, /*answers_without_detectors=*/false,
        /*expect_rejections=*/true, /*fresh_values=*/true);
}

// An object trace also compares a member with the member its key had in the previous object of its kind,
// wherever it stood there (walker/object_trace.h, TraceCursor::reusable_by_key), found through the raw key
// index's unconfirmed guess. It may only save work: generated shuffled and ordered runs (members moved,
// inserted and removed, keys sharing their first 16 bytes, escaped spellings, look-alike values one byte
// off, invalid tokens) must get with it what they get with the cursor alone, under every profile of the
// shipped and the test rules.
TEST(FilterMemo, TraceMembersFoundByKeyChangeNothing) {
    expect_fast_path_changes_nothing(
        120, [](walk::Scratch& s, bool on) { s.traces.by_key = on; },
        [](const walk::Scratch& s) { return s.traces.members_found_by_key; }, /*answers_without_detectors=*/false,
        /*expect_rejections=*/true, /*fresh_values=*/false, /*unanswered=*/{"strict"});
}

// A profile switch on the same thread must not reuse the other profile's answers.
TEST(FilterMemo, ProfileSwitchForgetsAnswers) {
    auto rules = default_rules();
    ASSERT_TRUE(rules);
    const std::string body = batch({event(R"("note":"jane.doe@example.com","plan":"pro")")});
    const Result cold_events = run_cold(*rules, "events", body);
    const Result cold_strict = run_cold(*rules, "strict", body);
    Result events, strict;
    std::thread t([&] {
        run_once(*rules, "strict", body);
        events = run_once(*rules, "events", body);
        strict = run_once(*rules, "strict", body);
    });
    t.join();
    expect_same(cold_events, events, "events after strict");
    expect_same(cold_strict, strict, "strict after events");
    EXPECT_EQ(cold_events.verdict, FilterOutput::Verdict::Rewritten);
}

}  // namespace
}  // namespace edgeguard::privacy::testing
