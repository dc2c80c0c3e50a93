// The observation store and the proposal, without sockets: caps, k-anonymity of enum candidates, the
// distinct estimate, and the proposal's types and omissions.
#include <gtest/gtest.h>

#include <atomic>
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
