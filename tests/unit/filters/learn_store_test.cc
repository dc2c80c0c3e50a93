// The observation store and the proposal, without sockets: caps, k-anonymity of enum candidates, the
// distinct estimate, and the proposal's types and omissions.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>

#include "filters/filter_api.h"
#include "filters/learn/observation_store.h"
#include "filters/learn/observed_json.h"
#include "filters/learn/proposal.h"
#include "filters/string_memo.h"

namespace edgeguard::privacy::learn {
namespace {

ValueObservation string_value(std::string_view event, std::string_view key, std::string_view value,
                              uint32_t client, bool candidate = true) {
    ValueObservation o;
    o.event = event;
    o.key = key;
    o.type = kString;
    o.value_hash = mix64(fast_string_hash(value));
    o.length = static_cast<uint32_t>(value.size());
    if (candidate) o.enum_candidate = value;
    o.client = client;
    return o;
}

TEST(LearnStore, DistinctEstimateIsWithinTheSketchError) {
    ObservationStore store(1);
    ProfileTable* t = store.shard(0).profile("events");
    for (int i = 0; i < 5000; ++i) {
        t->event_seen("e");
        t->observe(string_value("e", "id", "value-" + std::to_string(i), 1, false));
    }
    ObservedProfile observed;
    std::string error;
    ASSERT_TRUE(read_observed(render_observed_json(store), "events", observed, error)) << error;
    ASSERT_EQ(observed.properties.size(), 1u);
    EXPECT_NEAR(static_cast<double>(observed.properties[0].distinct_estimate), 5000.0, 5000.0 * 0.2);
    EXPECT_EQ(observed.properties[0].count, 5000u);
}

TEST(LearnStore, EnumValuesAppearOnlyOnceEnoughClientsSentThem) {
    ObservationStore store(2);
    // "rare" from 9 clients, "common" from 10 — split over two workers, merged on read.
    for (uint32_t c = 0; c < 9; ++c)
        store.shard(c % 2).profile("events")->observe(string_value("e", "plan", "rare", c));
    for (uint32_t c = 0; c < 10; ++c) {
        store.shard(c % 2).profile("events")->observe(string_value("e", "plan", "common", 100 + c));
        store.shard(c % 2).profile("events")->observe(string_value("e", "plan", "common", 100 + c));
    }
    const std::string json = render_observed_json(store);
    EXPECT_EQ(json.find("rare"), std::string::npos) << json;
    EXPECT_NE(json.find("\"common\":20"), std::string::npos) << json;
    EXPECT_NE(json.find("\"other\":9"), std::string::npos) << json;
}

TEST(LearnStore, PathsBeyondTheCapAreCountedNotStored) {
    Limits limits;
    limits.paths = 1000;
    ObservationStore store(1, limits);
    ProfileTable* t = store.shard(0).profile("events");
    for (int i = 0; i < 100000; ++i) t->observe(string_value("e", "k" + std::to_string(i), "v", 1, false));
    EXPECT_EQ(t->path_count(), 1000u);
    EXPECT_EQ(t->paths_overflow(), 99000u);
    EXPECT_LT(t->memory_bytes(), 1000u * 1024u);
}

TEST(LearnStore, EnumCandidatesBeyondTheCapAreCounted) {
    Limits limits;
    limits.enum_values = 3;
    ObservationStore store(1, limits);
    ProfileTable* t = store.shard(0).profile("events");
    for (uint32_t v = 0; v < 5; ++v)
        for (uint32_t c = 0; c < 10; ++c) t->observe(string_value("e", "k", "v" + std::to_string(v), c));
    const std::string json = render_observed_json(store);
    EXPECT_EQ(json.find("\"v3\""), std::string::npos);
    EXPECT_NE(json.find("\"other\":20"), std::string::npos) << json;
}

TEST(LearnProposal, TypesEvidenceAndOmissions) {
    ObservationStore store(1);
    ProfileTable* t = store.shard(0).profile("events");
    for (uint32_t i = 0; i < 100; ++i) {
        t->event_seen("e");
        t->observe(string_value("e", "plan", i % 2 ? "pro" : "free", i));
        ValueObservation n;
        n.event = "e";
        n.key = "count";
        n.type = kInteger;
        n.value_hash = mix64(i);
        t->observe(n);
        n.key = "price";
        n.type = i % 2 ? kInteger : kFloat;
        t->observe(n);
        DetectorTally hits;
        hits.add("email");
        ValueObservation c = string_value("e", "contact", "x", i, false);
        c.hits = &hits;
        t->observe(c);
        ValueObservation p = string_value("e", "email", "y", i, false);
        p.person_key = true;
        t->observe(p);
    }
    t->observe(string_value("e", "rare", "z", 1, false));
    ObservedProfile observed;
    std::string error, yaml;
    ASSERT_TRUE(read_observed(render_observed_json(store), "events", observed, error)) << error;
    ProposalOptions options;
    options.source_profile = "events";
    options.proposed_name = "events-learnt";
    options.min_share = 0.05;
    ASSERT_TRUE(write_proposal(observed, options, yaml, error)) << error;
    EXPECT_NE(yaml.find("\"plan\": {enum: [\"free\", \"pro\"]}"), std::string::npos) << yaml;
    EXPECT_NE(yaml.find("\"count\": integer"), std::string::npos) << yaml;
    EXPECT_NE(yaml.find("\"price\": number"), std::string::npos) << yaml;
    EXPECT_NE(yaml.find("# left out \"contact\": detector hits (email 100)"), std::string::npos) << yaml;
    EXPECT_NE(yaml.find("# left out \"email\": a key rule"), std::string::npos) << yaml;
    EXPECT_NE(yaml.find("# left out \"rare\": rare"), std::string::npos) << yaml;
    std::vector<RuleError> errors;
    EXPECT_NE(RuleSet::load_text(yaml, "proposal.yaml", errors), nullptr);

    std::string report;
    ASSERT_TRUE(diff_proposal(observed, yaml, "events-learnt", report, error)) << error;
    EXPECT_NE(report.find("drop \"contact\" on 100% of events (100): not listed"), std::string::npos)
        << report;
    EXPECT_EQ(report.find("\"plan\""), std::string::npos) << report;
}

// The path lookup predicts each key from the order of the last event of the same name: a prediction that
// does not hold (keys reordered, added, missing, another event name) must never count a value elsewhere.
TEST(LearnStore, KeysInAChangingOrderAreCountedUnderTheirOwnPath) {
    ObservationStore store(1);
    ProfileTable* t = store.shard(0).profile("events");
    const std::string keys[] = {"a", "b", "c", "d", "e"};
    std::map<std::string, uint64_t> expected;
    for (uint32_t i = 0; i < 200; ++i) {
        const std::string event = i % 3 ? "view" : "tap";
        t->event_seen(event);
        for (uint32_t k = 0; k < 5; ++k) {
            const std::string& key = keys[(k * (i % 4 + 1) + i) % 5];  // an order of its own per event
            if ((i + k) % 7 == 0) continue;                            // and now and then one missing
            t->observe(string_value(event, key, "v", i, false));
            ++expected[event + "." + key];
        }
    }
    std::map<std::string, uint64_t> counted;
    t->for_each_path([&](const PathStats& p) { counted[p.event + "." + p.key] += p.count.get(); });
    EXPECT_EQ(counted, expected);
}

// A clock the tests move by hand (the store reads it through a plain function pointer).
uint64_t test_now_ms = 0;
uint64_t test_clock() {
    return test_now_ms;
}

TEST(LearnRate, ObservesAtMostTheRateAndCountsEveryEvent) {
    test_now_ms = 5000;
    ObservationStore store(1, {}, test_clock);
    ProfileTable* t = store.shard(0).profile("events");
    auto observed_of = [&](int events) {
        int n = 0;
        for (int i = 0; i < events; ++i) n += t->event_seen(i % 2 ? "a" : "b") ? 1 : 0;
        return n;
    };
    t->begin_request(100);
    EXPECT_EQ(observed_of(150), 100);  // a second's worth at first
    test_now_ms += 250;
    t->begin_request(100);
    EXPECT_EQ(observed_of(150), 25);  // a quarter of a second refills a quarter
    test_now_ms += 3;
    t->begin_request(100);
    test_now_ms += 3;
    t->begin_request(100);
    test_now_ms += 4;
    t->begin_request(100);
    EXPECT_EQ(observed_of(10), 1);  // 10 ms over three requests: one event, no rounding lost
    test_now_ms += 60000;
    t->begin_request(100);
    EXPECT_EQ(observed_of(1000), 100);  // never more than a second's worth
    t->begin_request(0);
    EXPECT_EQ(observed_of(500), 500);  // 0: every event
    EXPECT_EQ(t->events_total(), 1810u);
    EXPECT_EQ(t->events_observed(), 726u);

    // Counts and shares are over the observed events; the event counts are over all of them.
    const std::string json = render_observed_json(store);
    EXPECT_NE(json.find("\"events_total\":1810,\"events_observed\":726"), std::string::npos) << json;
    EXPECT_NE(json.find("\"events\":{\"a\":905,\"b\":905}"), std::string::npos) << json;
}

// Through the filter: events beyond the rate are counted, not observed, and what is forwarded is the same
// whether an event is observed or not.
TEST(LearnRate, TheFilterObservesEventsWithinTheRateOnly) {
    const std::string rules_text =
        "profiles:\n"
        "  events:\n"
        "    learn: true\n"
        "    learn_events_per_second: 3\n"
        "    rules:\n"
        "      - id: email\n"
        "        detectors: [email]\n"
        "        action: redact\n";
    std::vector<RuleError> errors;
    auto rules = RuleSet::load_text(rules_text, "inline", errors);
    ASSERT_NE(rules, nullptr) << (errors.empty() ? "" : errors[0].message);
    std::string body = "[";
    for (int i = 0; i < 8; ++i) {
        if (i) body += ",";
        body += "{\"event\":\"e\",\"distinct_id\":\"u" + std::to_string(i) +
                "\",\"properties\":{\"plan\":\"pro\",\"n\":" + std::to_string(i) +
                (i == 6 ? ",\"contact\":\"ann.b@mail.example\"" : "") + "}}";
    }
    body += "]";
    test_now_ms = 1000;
    ObservationStore store(1, {}, test_clock);
    FilterInput in;
    in.method = "POST";
    in.path = "/e/";
    in.content_type = "application/json";
    in.body = body;
    const FilterOutput without = rules->apply("events", in);
    in.observations = &store.shard(0);
    const FilterOutput with = rules->apply("events", in);
    EXPECT_EQ(with.verdict, without.verdict);
    EXPECT_EQ(with.body, without.body);
    EXPECT_EQ(with.verdict, FilterOutput::Verdict::Rewritten);  // the email was redacted either way

    ObservedProfile observed;
    std::string error;
    ASSERT_TRUE(read_observed(render_observed_json(store), "events", observed, error)) << error;
    EXPECT_EQ(observed.events_total, 8u);
    EXPECT_EQ(observed.events_observed, 3u);
    ASSERT_EQ(observed.properties.size(), 2u);  // the 7th event's contact was not observed
    EXPECT_EQ(observed.properties[0].key, "n");
    EXPECT_EQ(observed.properties[0].count, 3u);
    EXPECT_EQ(observed.properties[1].key, "plan");
    EXPECT_EQ(observed.properties[1].count, 3u);

    // A second later there is room again: the next request is observed.
    test_now_ms += 1000;
    (void)rules->apply("events", in);
    ASSERT_TRUE(read_observed(render_observed_json(store), "events", observed, error)) << error;
    EXPECT_EQ(observed.events_total, 16u);
    EXPECT_EQ(observed.events_observed, 6u);
}

}  // namespace
}  // namespace edgeguard::privacy::learn

namespace edgeguard::privacy::learn {
namespace {

// The admin thread merges while a worker writes: no lock, and (under TSan) no race.
TEST(LearnStore, ReadersMergeWhileTheWorkerWrites) {
    ObservationStore store(1);
    std::atomic<bool> done{false};
    std::thread worker([&] {
        ProfileTable* t = store.shard(0).profile("events");
        DetectorTally hits;
        hits.add("email");
        for (uint32_t i = 0; i < 20000; ++i) {
            t->event_seen("e" + std::to_string(i % 7));
            // The observation holds views: its key and value must outlive it.
            const std::string key = "k" + std::to_string(i % 3000);
            const std::string value = "v" + std::to_string(i % 20);
            ValueObservation o = string_value("e", key, value, i % 40);
            if (i % 5 == 0) o.hits = &hits;
            t->observe(o);
        }
        done = true;
    });
    size_t renders = 0;
    while (!done || renders == 0) {
        const std::string json = render_observed_json(store);
        EXPECT_EQ(json.front(), '{');
        ++renders;
    }
    worker.join();
    ObservedProfile observed;
    std::string error;
    ASSERT_TRUE(read_observed(render_observed_json(store), "events", observed, error)) << error;
    EXPECT_EQ(observed.events_total, 20000u);
    EXPECT_EQ(observed.properties.size(), 3000u);
}

}  // namespace
}  // namespace edgeguard::privacy::learn
