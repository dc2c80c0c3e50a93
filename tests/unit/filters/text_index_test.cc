// TextIndex, the one pass DetectorSet makes over a text, and the detectors' candidate paths that read it.
// A candidate path that skips something its byte-by-byte path would have reported loses personal data
// silently, so every built-in detector runs both ways (with the index in DetectorContext and without) over
// the shared privacy cases planted at every offset of generated prose, random bytes, UTF-8 and texts cut
// at 64-byte block edges, and must report the same matches; the index itself is checked against byte
// loops, and its AVX2 pass against the portable one.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "filters/detectors/builtin_detectors.h"
#include "filters/detectors/byte_search.h"
#include "filters/detectors/registry.h"
#include "filters/detectors/text_index.h"
#include "filters/detectors/text_scan.h"

namespace edgeguard::privacy {
namespace {

bool is_number_byte(char c) {
    return is_ascii_digit(c) || c == ' ' || c == '-' || c == '(' || c == ')' || c == '.' || c == '+';
}

// What the index promises, the slow way.
struct ReferenceIndex {
    uint32_t digits = 0, dots = 0, colons = 0, date_separators = 0, max_number_digits = 0, longest_alnum = 0;
    std::vector<NumberStretch> stretches;
};
ReferenceIndex reference(std::string_view t) {
    ReferenceIndex r;
    uint32_t alnum = 0;
    for (size_t i = 0; i < t.size(); ++i) {
        r.digits += is_ascii_digit(t[i]);
        r.dots += t[i] == '.';
        r.colons += t[i] == ':';
        r.date_separators += t[i] == '.' || t[i] == '-' || t[i] == '/';
        alnum = is_ascii_alnum(t[i]) ? alnum + 1 : 0;
        r.longest_alnum = std::max(r.longest_alnum, alnum);
    }
    for (size_t i = 0; i < t.size();) {
        if (!is_number_byte(t[i])) {
            ++i;
            continue;
        }
        size_t end = i;
        uint32_t digits = 0;
        while (end < t.size() && is_number_byte(t[end])) digits += is_ascii_digit(t[end++]);
        r.max_number_digits = std::max(r.max_number_digits, digits);
        if (digits >= TextIndex::kMinStretchDigits)
            r.stretches.push_back({static_cast<uint32_t>(i), static_cast<uint32_t>(end), digits});
        i = end;
    }
    return r;
}

uint32_t reference_flags(std::string_view t) {
    uint32_t f = 0;
    for (char ch : t) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= '0' && c <= '9') f |= kHasDigit;
        if (c >= 'A' && c <= 'Z') f |= kHasUpper | (c > 'F' ? kHasNonHexLetter : 0);
        if (c >= 'a' && c <= 'z') f |= kHasLower | (c > 'f' ? kHasNonHexLetter : 0);
        if (c >= 0x80) f |= kHasNonAscii;
        if (c == '@') f |= kHasAt;
        if (c == '.') f |= kHasDot;
        if (c == ':') f |= kHasColon;
        if (c == '_') f |= kHasUnderscore;
        if (c == '%') f |= kHasPercent;
        if (c == '=') f |= kHasEquals;
        if (c == '-') f |= kHasDash;
        if (c == '?' || c == '#' || c == '&') f |= kHasQueryMark;
        if (c == '+') f |= kHasPlus;
        if (c == ' ') f |= kHasSpace;
    }
    return f;
}

void expect_index_matches_reference(const TextIndex& index, std::string_view text) {
    const ReferenceIndex r = reference(text);
    const TextFeatures& f = index.features();
    ASSERT_EQ(f.flags, reference_flags(text));
    ASSERT_EQ(f.digits, r.digits);
    ASSERT_EQ(f.dots, r.dots);
    ASSERT_EQ(f.colons, r.colons);
    ASSERT_EQ(f.date_separators, r.date_separators);
    ASSERT_EQ(f.length, text.size());
    ASSERT_EQ(f.max_number_digits, r.max_number_digits);
    for (uint32_t threshold : {4u, 10u, 26u})
        ASSERT_EQ(f.max_alnum_run >= threshold, r.longest_alnum >= threshold) << threshold;
    ASSERT_LE(f.max_alnum_run, r.longest_alnum);
    ASSERT_EQ(index.number_stretches().size(), r.stretches.size());
    for (size_t k = 0; k < r.stretches.size(); ++k) {
        ASSERT_EQ(index.number_stretches()[k].begin, r.stretches[k].begin) << k;
        ASSERT_EQ(index.number_stretches()[k].end, r.stretches[k].end) << k;
        ASSERT_EQ(index.number_stretches()[k].digits, r.stretches[k].digits) << k;
    }
    for (size_t from = 0; from <= text.size() + 1; ++from) {
        size_t digit = std::min(from, text.size());
        while (digit < text.size() && !is_ascii_digit(text[digit])) ++digit;
        ASSERT_EQ(index.next_digit(from), digit) << from;
    }
}

std::string random_text(std::mt19937& rng, std::string_view alphabet, size_t length) {
    std::uniform_int_distribution<size_t> pick(0, alphabet.size() - 1);
    std::string s(length, ' ');
    for (char& c : s) c = alphabet[pick(rng)];
    return s;
}

TEST(TextIndex, AgreesWithByteLoopsOnRandomTexts) {
    std::mt19937 rng(20261207);
    // Every class the pass tells apart, its neighbours in the byte order, and long alphanumeric stretches.
    const std::string alphabet = std::string("0123456789 -().+@:_%=?#&/,!AFGOPZaf gopz`{[@\x7f\x80\xd0\xff") +
                                 std::string(1, '\0') + "aaaaaaaaaa1111111111";
    std::uniform_int_distribution<size_t> length(0, 300);
    TextIndex fast, portable;
    for (int round = 0; round < 3000; ++round) {
        const size_t n = round < 200 ? static_cast<size_t>(round) : length(rng);
        const std::string text = random_text(rng, alphabet, n);
        SCOPED_TRACE(testing::Message() << "length " << n);
        fast.build(text);
        portable.build_portable(text);
        expect_index_matches_reference(fast, text);
        expect_index_matches_reference(portable, text);
        ASSERT_EQ(fast.features().max_alnum_run, portable.features().max_alnum_run);
    }
}

TEST(TextIndex, RunsAcrossBlockEdges) {
    TextIndex index;
    // Runs of every length ending at, crossing and spanning 64-byte block edges, in a text of spaces or of
    // letters (which cut number stretches).
    for (char filler : {' ', 'x', '\xd0'}) {
        for (size_t length = 1; length <= 140; ++length) {
            for (size_t at : {size_t{0}, size_t{1}, size_t{60}, size_t{63}, size_t{64}, size_t{65}, size_t{127}}) {
                for (char run_byte : {'7', 'a'}) {
                    std::string text(at, filler);
                    text += std::string(length, run_byte);
                    text += std::string(70, filler);
                    SCOPED_TRACE(testing::Message() << "filler " << int(filler) << " run " << run_byte << " x"
                                                    << length << " at " << at);
                    index.build(text);
                    expect_index_matches_reference(index, text);
                }
            }
        }
    }
}

// The shared privacy cases: every value, personal or look-alike.
std::vector<std::string> privacy_case_values() {
    std::vector<std::string> values;
    std::ifstream file(std::string(EDGEGUARD_SHARED_DIR) + "/privacy-cases.jsonl");
    simdjson::dom::parser parser;
    std::string line;
    while (std::getline(file, line)) {
        if (line.empty()) continue;
        simdjson::dom::element doc;
        std::string_view value;
        if (parser.parse(line).get(doc) != simdjson::SUCCESS || doc["value"].get(value) != simdjson::SUCCESS) continue;
        values.emplace_back(value);
    }
    return values;
}

// Values the project's detectors accept in their other written forms, and near misses.
const std::vector<std::string> kProjectValues = {
    "+7 (916) 123-45-67", "8 916 123 45 67", "8.916.123.45.67", "9161234567", "tel79161234567",
    "4111 1111 1111 1111", "4111-1111-1111-1111", "4111.1111.1111.1111", "5500000000000004", "card4111111111111111",
    "500100732259", "112-233-445 95", "11223344595", "45 10 123456", "4510 № 123456", "паспорт 4510 123456",
    "8.8.8.8", "203.0.113.9", "93.184.216.34", "2a00:1450:4001:81c::200e", "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432", "12.03.1985", "1985-03-12", "5 марта 1990", "born 12 Mar 1985", "DOB 01/02/1990",
    "Иванов Иван Иванович", "Ivanov Ivan Ivanovich", "ivan.petrov@example.ru", "phx_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5",
    "?token=abc123&utm_source=x", "1BoatSLRHtKNngkdXEeobR76b53LETtpyT", "2024-000123", "v2.1.1.108",
    "0192f6a1-7c5b-7a3e-9b2f-3d4c5e6f7a8b", "1765080000000",
};

// Prose of the kind an assistant sees, with the short numbers that open the digit gates.
std::string prose(size_t bytes, size_t salt) {
    static const char* const kSentences[] = {
        "The checkout page takes 2.4 seconds on mobile. ", "Retention drops after day 7 for the March cohort. ",
        "The export runs at 02:00 UTC and writes 1.2 GB. ", "Rolled out to 25% of users in region eu-west-1. ",
        "Order 2024-000123 ships within 2 days. ",          "Summarize the release notes (v3.14) please. ",
    };
    std::string out;
    for (size_t i = salt; out.size() < bytes; ++i) out += kSentences[(i * 5) % 6];
    out.resize(bytes);
    return out;
}

const char* const kKeys[] = {"", "birth_date", "passport", "card_number", "app_version", "barcode"};

// Every built-in detector over `text`, with and without the index; the same matches either way. Under
// every key of kKeys, or only under kKeys[only_key].
void expect_same_both_ways(const std::vector<std::unique_ptr<GatedDetector>>& detectors, TextIndex& index,
                           std::string_view text, size_t only_key = std::size(kKeys)) {
    index.build(text);
    std::vector<DetectorMatch> scalar, candidates;
    for (size_t k = 0; k < std::size(kKeys); ++k) {
        if (only_key != std::size(kKeys) && k != only_key) continue;
        const char* key = kKeys[k];
        for (const auto& d : detectors) {
            scalar.clear();
            candidates.clear();
            DetectorContext plain;
            plain.key = key;
            DetectorContext indexed = plain;
            indexed.index = &index;
            d->find(text, plain, scalar);
            d->find(text, indexed, candidates);
            ASSERT_EQ(scalar.size(), candidates.size()) << d->id() << " key '" << key << "' [" << text << "]";
            for (size_t k = 0; k < scalar.size(); ++k) {
                ASSERT_EQ(scalar[k].begin, candidates[k].begin) << d->id() << " [" << text << "]";
                ASSERT_EQ(scalar[k].end, candidates[k].end) << d->id() << " [" << text << "]";
            }
        }
    }
}

std::vector<std::unique_ptr<GatedDetector>> all_builtins() {
    std::vector<std::unique_ptr<GatedDetector>> all;
    for (std::string_view id : builtin_detector_ids()) {
        std::string error;
        std::unique_ptr<Detector> d = make_builtin_detector(id, &error);
        all.emplace_back(dynamic_cast<GatedDetector*>(d.release()));
        EXPECT_NE(all.back(), nullptr) << id;
    }
    return all;
}

TEST(DetectorCandidates, PlantedValuesAtEveryOffsetOfProse) {
    std::vector<std::string> values = privacy_case_values();
    ASSERT_GT(values.size(), 50u) << "the shared privacy cases are part of this test";
    values.insert(values.end(), kProjectValues.begin(), kProjectValues.end());
    const auto detectors = all_builtins();
    TextIndex index;
    const std::string around = prose(150, 1);
    int planted = 0;
    for (const std::string& value : values) {
        for (size_t at = 0; at <= around.size(); ++at) {
            std::string text = around.substr(0, at) + value + around.substr(at);
            expect_same_both_ways(detectors, index, text, at % std::size(kKeys));
            ++planted;
        }
        // The value twice, and touching both ends.
        expect_same_both_ways(detectors, index, value + " " + value);
        expect_same_both_ways(detectors, index, value);
    }
    EXPECT_GT(planted, 10000);
}

TEST(DetectorCandidates, ValuesAroundBlockEdges) {
    const auto detectors = all_builtins();
    TextIndex index;
    std::vector<std::string> values = privacy_case_values();
    values.insert(values.end(), kProjectValues.begin(), kProjectValues.end());
    for (const std::string& value : values) {
        for (size_t edge : {size_t{63}, size_t{64}, size_t{65}, size_t{128}}) {
            // The value ending just before, at and just after the edge, and starting there.
            for (size_t shift = 0; shift <= value.size() + 2; ++shift) {
                const size_t at = edge + 2 > shift ? edge + 2 - shift : 0;
                std::string text = prose(at, 3) + value + prose(70, 4);
                expect_same_both_ways(detectors, index, text);
            }
        }
    }
}

TEST(DetectorCandidates, RandomBytesAndUtf8) {
    const auto detectors = all_builtins();
    TextIndex index;
    std::mt19937 rng(64);
    const std::string bytes = std::string("0123456789 -().+@:_%=?#&/,xvAK eyJ\xd0\xb2\xd1\x87\xc2\xa0") +
                              "\xef\xbc\x91" "\xe2\x80\x8b" "\xd0\xbe\xd0\xb2\xd0\xb8\xd1\x87 ";
    std::uniform_int_distribution<size_t> length(0, 200);
    const std::vector<std::string> tokens = {"4111", "1111", " ", "-", "+7", "916", "123", "45", "67", ".", "8",
                                              "паспорт ", "4510", "123456", "born ", "12.03.1985", "DE89", "3704",
                                              "0044", "1.2.3.4", "8.8", "tel", "x", "@", "a.co", "k@a.co",
                                              "ivan.petrov", "@example.ru", "xn--p1ai", "почта", "é", "'", "_",
                                              ":", "git@github.com:org/repo", "logo@2x.png"};
    std::uniform_int_distribution<size_t> pick(0, tokens.size() - 1), count(0, 30);
    for (int round = 0; round < 3000; ++round) {
        expect_same_both_ways(detectors, index, random_text(rng, bytes, length(rng)));
        std::string soup;
        for (size_t k = count(rng); k > 0; --k) soup += tokens[pick(rng)];
        expect_same_both_ways(detectors, index, soup);
    }
}

// Short texts as values hold them: the privacy cases' values and the project's cut to at most
// TextIndex::kShortTextBytes, look-alikes, and random bytes of every class the pass tells apart.
std::vector<std::string> short_texts() {
    std::vector<std::string> texts = privacy_case_values();
    texts.insert(texts.end(), kProjectValues.begin(), kProjectValues.end());
    for (std::string& t : texts)
        if (t.size() > TextIndex::kShortTextBytes) t.resize(TextIndex::kShortTextBytes);
    for (const char* t : {"ORD-123456",
                          "4567",
                          "3.5.12",
                          "+7 916 123-45-67",
                          "89161234567",
                          "k@a.co",
                          "1.2.3.4",
                          "12.03.1985",
                          "4111 1111 1111 1111",
                          "DE89370400440532013000",
                          "born 1985-03-12",
                          "Ivan Ivanovich",
                          "eyJhbGciOiJIUzI1NiJ9.eyJ.x",
                          "?code=abc",
                          "a=b&token=c",
                          "%40",
                          "2001:db8::1",
                          "::ffff:8.8.8.8",
                          "ghp_0123456789abcdefghij",
                          "012-345-678 90"})
        texts.emplace_back(t);
    std::mt19937 rng(32);
    const std::string alphabet = std::string("0123456789 -().+@:_%=?#&/,!AFGOPZaf gopz`{[\x7f\x80\xd0\xff") +
                                 std::string(1, '\0') + "aaaaaaaaaa1111111111";
    std::uniform_int_distribution<size_t> length(0, TextIndex::kShortTextBytes);
    for (int round = 0; round < 20000; ++round) texts.push_back(random_text(rng, alphabet, length(rng)));
    return texts;
}

// The bound DetectorSet::quiet gates short texts with holds every bit of the exact mask, from the AVX2 pass
// and the portable one alike.
TEST(TextIndex, ShortTextGateBoundHoldsTheExactMask) {
    TextIndex index;
    for (const std::string& text : short_texts()) {
        index.build(text);
        for (const char* key : kKeys) {
            DetectorContext ctx;
            ctx.key = key;
            const uint64_t exact = gate_mask(index.features(), ctx);
            const uint64_t bound = TextIndex::short_text_gate_bound(text, ctx);
            ASSERT_EQ(bound & exact, exact) << "[" << text << "] key " << key;
            ASSERT_EQ(TextIndex::short_text_gate_bound(text, ctx, /*portable=*/true), bound)
                << "[" << text << "]";
        }
    }
}

// A text DetectorSet::quiet calls quiet is one no built-in detector reports anything in, each asked on its
// own, ungated and without an index; and quiet answers for most of the generated texts, so the check bites.
TEST(DetectorSetQuiet, QuietTextsHoldNothingAnyDetectorFinds) {
    const DetectorSet set = DetectorSet::builtin();
    const auto detectors = all_builtins();
    size_t quiet = 0, found = 0;
    std::vector<DetectorMatch> matches;
    for (const std::string& text : short_texts()) {
        for (const char* key : kKeys) {
            DetectorContext ctx;
            ctx.key = key;
            matches.clear();
            for (const auto& d : detectors) d->find(text, ctx, matches);
            found += !matches.empty();
            if (!set.quiet(text, ctx)) continue;
            ++quiet;
            ASSERT_TRUE(matches.empty()) << matches.front().detector << " in [" << text << "] key " << key;
        }
    }
    EXPECT_GT(quiet, 10000u);
    EXPECT_GT(found, 100u);
}

// The walker's cheap test before decoding base64 runs.
TEST(ByteSearch, Base64RunTestAgreesWithTheByteLoop) {
    std::mt19937 rng(16);
    const std::string alphabet = "aZ09+/-_ =.\x80";
    std::uniform_int_distribution<size_t> length(0, 200), run(1, 70);
    const auto in_alphabet = [](char c) {
        return is_ascii_alnum(c) || c == '+' || c == '/' || c == '-' || c == '_';
    };
    for (int round = 0; round < 20000; ++round) {
        std::string text = random_text(rng, alphabet, length(rng));
        if (round % 2 == 0) text.insert(text.size() / 2, std::string(run(rng), 'Q'));
        size_t longest = 0, current = 0;
        for (char c : text) {
            current = in_alphabet(c) ? current + 1 : 0;
            longest = std::max(longest, current);
        }
        for (size_t min_run : {size_t{1}, size_t{16}, size_t{40}, size_t{64}})
            ASSERT_EQ(contains_base64_run(text, min_run), longest >= min_run) << min_run << " [" << text << "]";
    }
}

}  // namespace
}  // namespace edgeguard::privacy
