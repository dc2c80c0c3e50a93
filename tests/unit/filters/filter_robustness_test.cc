// Hostile inputs: nothing crashes, nothing is forwarded that was not understood, every output is valid JSON.
#include <gtest/gtest.h>
#include <zlib.h>

#include <random>

#include "filter_test_support.h"

namespace edgeguard::privacy {
namespace {

using namespace edgeguard::privacy::testing;
using V = FilterOutput::Verdict;

std::string gzip(std::string_view text) {
    z_stream zs{};
    deflateInit2(&zs, 6, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&zs, text.size()) + 32, '\0');
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    zs.avail_in = static_cast<uInt>(text.size());
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    deflate(&zs, Z_FINISH);
    out.resize(zs.total_out);
    deflateEnd(&zs);
    return out;
}

class FilterRobustness : public ::testing::Test {
protected:
    void SetUp() override {
        rules_ = default_rules();
        ASSERT_TRUE(rules_);
    }
    FilterOutput filter(std::string_view body, std::string_view content_type = "application/json",
                        uint64_t wire_limit = 20 * 1024 * 1024) {
        FilterInput in;
        in.method = "POST";
        in.path = "/batch/";
        in.content_type = content_type;
        in.body = body;
        in.wire_limit = wire_limit;
        return rules_->apply("events", in);
    }
    void expect_sane(const FilterOutput& out) {
        if (out.verdict == V::Rejected) {
            EXPECT_GE(out.status, 400);
            EXPECT_LT(out.status, 500);
            EXPECT_FALSE(out.code.empty());
        } else if (out.verdict == V::Rewritten) {
            EXPECT_TRUE(valid_json(out.body));
        }
    }
    std::shared_ptr<const RuleSet> rules_;
};

TEST_F(FilterRobustness, RandomBytesAreRejectedCleanly) {
    std::mt19937 rng(12345);
    for (int i = 0; i < 300; ++i) {
        std::string body(rng() % 2048, '\0');
        for (auto& c : body) c = static_cast<char>(rng());
        if (i % 3 == 0 && body.size() > 2) body[0] = '\x1f', body[1] = '\x8b';  // pretend to be gzip
        const auto out = filter(body, i % 2 ? "text/plain" : "application/json");
        expect_sane(out);
        EXPECT_NE(out.verdict, V::Rewritten);
    }
}

TEST_F(FilterRobustness, TruncatedGzipIsA400) {
    const std::string gz = gzip(R"([{"event":"x","properties":{"email":"a@b.io"}}])");
    for (size_t cut : {gz.size() - 1, gz.size() - 8, gz.size() / 2, size_t{10}, size_t{3}}) {
        const auto out = filter(gz.substr(0, cut), "text/plain");
        EXPECT_EQ(out.verdict, V::Rejected) << cut;
        EXPECT_EQ(out.status, 400) << cut;
    }
}

TEST_F(FilterRobustness, DeepNestingIsA400NotACrash) {
    for (const char* open : {"[", "{\"a\":"}) {
        std::string body;
        const int depth = 100000;
        for (int i = 0; i < depth; ++i) body += open;
        body += "1";
        for (int i = 0; i < depth; ++i) body += open[0] == '[' ? "]" : "}";
        const auto out = filter(body);
        EXPECT_EQ(out.verdict, V::Rejected);
        EXPECT_EQ(out.status, 400);
    }
    // Inside an ordinary event too.
    std::string body = R"({"event":"x","properties":{"p":)";
    for (int i = 0; i < 100000; ++i) body += "[";
    for (int i = 0; i < 100000; ++i) body += "]";
    body += "}}";
    const auto out = filter(body);
    EXPECT_EQ(out.verdict, V::Rejected);
    EXPECT_EQ(out.status, 400);
}

TEST_F(FilterRobustness, HundredMegabyteStringIsHandled) {
    std::string body = R"({"event":"x","properties":{"s":")";
    body.append(100u * 1024 * 1024, 'a');
    body += R"( mail me: ivan@example.ru"}})";
    const auto out = filter(body, "application/json", body.size());
    expect_sane(out);
    if (out.verdict == V::Rewritten) {
        EXPECT_EQ(out.body.find("ivan@"), std::string::npos);
    } else {
        EXPECT_EQ(out.verdict, V::Rejected);  // over a size cap: refused, never forwarded uninspected
    }
}

TEST_F(FilterRobustness, InvalidUtf8IsRejected) {
    for (std::string bad : {std::string("{\"event\":\"x\",\"properties\":{\"s\":\"\xff\xfe\"}}"),
                            std::string("{\"event\":\"x\",\"properties\":{\"s\":\"\xc3\"}}"),
                            std::string("{\"event\":\"\xed\xa0\x80\",\"properties\":{}}")}) {
        const auto out = filter(bad);
        EXPECT_EQ(out.verdict, V::Rejected);
        EXPECT_EQ(out.status, 400);
    }
}

TEST_F(FilterRobustness, MutatedPayloadsNeverProduceInvalidJson) {
    const std::string seed = read_file(source_path("tests/fixtures/privacy/planted_batch.json"));
    ASSERT_FALSE(seed.empty());
    std::mt19937 rng(777);
    const std::string alphabet = "{}[]\":,\\ @.0123456789abcdefu+-eE\n";
    for (int i = 0; i < 2000; ++i) {
        std::string body = seed;
        const int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            const size_t pos = rng() % body.size();
            switch (rng() % 3) {
                case 0: body[pos] = alphabet[rng() % alphabet.size()]; break;
                case 1: body.erase(pos, 1 + rng() % 8); break;
                default: body.insert(pos, 1, alphabet[rng() % alphabet.size()]); break;
            }
            if (body.empty()) body.push_back('{');  // not = "{": a false GCC 12 -Wrestrict at -O3
        }
        const auto out = filter(body);
        expect_sane(out);
        if (out.verdict == V::Rewritten && !valid_json(out.body)) ADD_FAILURE() << body << "\n=> " << out.body;
        if (out.verdict == V::Rewritten) {
            const auto again = filter(out.body);
            EXPECT_EQ(again.verdict, V::Unchanged) << body << "\n=> " << out.body << "\n=> " << again.body;
        }
    }
}

TEST_F(FilterRobustness, MobileReplayWireframeTextRedactedAndImagesDropped) {
    const std::string body =
        R"([{"event":"$snapshot","properties":{"$session_id":"s1","$snapshot_source":"mobile","$snapshot_data":[{"type":2,"data":{"wireframes":[{"id":1,"type":"text","text":"Hi olga@example.ru","childWireframes":[{"id":2,"type":"image","base64":"data:image/png;base64,iVBORw0KGgo="}]}]}}]}}])";
    FilterInput in;
    in.method = "POST";
    in.path = "/s/";
    in.content_type = "application/json";
    in.body = body;
    const auto out = rules_->apply("replay", in);
    ASSERT_EQ(out.verdict, V::Rewritten);
    EXPECT_EQ(out.body,
              R"([{"event":"$snapshot","properties":{"$session_id":"s1","$snapshot_source":"mobile","$snapshot_data":[{"type":2,"data":{"wireframes":[{"id":1,"type":"text","text":"Hi [redacted:email]","childWireframes":[{"id":2,"type":"image"}]}]}}]}}])");
}

TEST_F(FilterRobustness, PlantedBatchIsCleanedAndIdempotent) {
    const std::string body = read_file(source_path("tests/fixtures/privacy/planted_batch.json"));
    const auto out = filter(body);
    ASSERT_EQ(out.verdict, V::Rewritten);
    for (const char* gone : {"olga", "916", "4111 1111 1111 1111", "81.23.45.67", "+7916"}) {
        EXPECT_EQ(out.body.find(gone), std::string::npos) << gone << " in " << out.body;
    }
    for (const char* kept : {"Checkout", "3.2.1", "\"plan\":\"pro\"", "19.99", "phc_TestProjectKey123", "step=2"}) {
        EXPECT_NE(out.body.find(kept), std::string::npos) << kept << " missing from " << out.body;
    }
    EXPECT_EQ(filter(out.body).verdict, V::Unchanged);
    EXPECT_EQ(filter(read_file(source_path("tests/fixtures/privacy/clean_batch.json"))).verdict, V::Unchanged);
}

}  // namespace
}  // namespace edgeguard::privacy
