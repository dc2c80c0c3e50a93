// Values encoded inside strings: a JSON document held in a string (walked like any object, its edits
// re-embedded), and base64/base64url runs of 16 or more characters that decode to UTF-8 text (scanned, and a
// decoded JSON document walked; a hit acts on the whole encoded run). Percent-escapes, repeated up to three
// rounds, are undone by the detectors' normalisation (detectors/normalize.h). Every decoding is bounded:
// kMaxEmbedLevels levels of nesting (JSON in base64 in JSON ...), the profile's max_depth across them, and
// decoded text never longer than the string it came from.
#include <simdjson.h>

#include <algorithm>

#include "filters/decode/base64.h"
#include "filters/detectors/byte_search.h"
#include "filters/value_actions.h"
#include "filters/walker/value_shapes.h"
#include "filters/walker/walker.h"

namespace edgeguard::privacy::walk {
namespace {

constexpr size_t kMinBase64Run = 16;

constexpr std::array<bool, 256> make_base64_table() {
    std::array<bool, 256> t{};
    for (int c = 'A'; c <= 'Z'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'z'; ++c) t[c] = true;
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    t['+'] = t['/'] = t['-'] = t['_'] = true;
    return t;
}
constexpr std::array<bool, 256> kBase64Byte = make_base64_table();

// UTF-8 text a person could have written: valid UTF-8, no control bytes but tab and line breaks.
bool is_text(std::string_view bytes) {
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) return false;
    }
    return simdjson::validate_utf8(bytes.data(), bytes.size());
}

// Decodes one run of base64 or base64url (padding optional) into `out`; false when it is neither.
bool decode_run(std::string_view run, std::string& out) {
    out.clear();
    const bool url = run.find_first_of("-_") != std::string_view::npos;
    const bool standard = run.find_first_of("+/") != std::string_view::npos;
    if (url && standard) return false;
    if (url) return base64_decode_into(run, Base64Alphabet::UrlSafe, out);
    std::string_view body = run;
    while (!body.empty() && body.back() == '=') body.remove_suffix(1);
    if (body.size() % 4 == 1) return false;
    if (body.size() % 4 == 0) return base64_decode_into(body, Base64Alphabet::Standard, out);
    std::string padded(body);
    padded.append(4 - body.size() % 4, '=');
    return base64_decode_into(padded, Base64Alphabet::Standard, out);
}

}  // namespace

bool may_hold_base64_run(std::string_view s) {
    return s.size() >= kMinBase64Run && contains_base64_run(s, kMinBase64Run);
}

bool looks_like_json_text(std::string_view s) {
    // Most strings are told by their first byte.
    if (s.size() < 2 || (s[0] != '{' && s[0] != '[' && !is_ws(s[0]))) return false;
    size_t b = 0, e = s.size();
    while (b < e && is_ws(s[b])) ++b;
    while (e > b && is_ws(s[e - 1])) --e;
    if (e - b < 2) return false;
    return (s[b] == '{' && s[e - 1] == '}') || (s[b] == '[' && s[e - 1] == ']');
}

// Walks `inner` with the profile's rules on top of the current path (the string's own key is the last
// step), in a walker of its own. False when `inner` is not JSON: nothing is recorded then. Otherwise the
// audit, report-only hits and any rejection are merged into this walk; edits stay in `inner_out`.
bool Walker::walk_embedded(std::string_view inner, size_t depth, WalkOutcome& inner_out) {
    if (embed_level_ >= kMaxEmbedLevels || depth >= profile_.max_depth) return false;
    inner_out = WalkOutcome{};
    Walker nested(profile_, rules_, options_, inner_out, path_);
    nested.in_event_ = in_event_;
    nested.event_name_ = event_name_;
    nested.event_depth_ = event_depth_;
    nested.allowlist_ = nullptr;
    nested.scratch_ = scratch_;
    nested.embed_level_ = static_cast<uint8_t>(embed_level_ + 1);
    nested.no_traces_ = true;
    const size_t saved_path = path_.size();
    const bool ok = nested.run(scratch_->embedded_parsers[embed_level_], scratch_->embedded_padded[embed_level_],
                               inner, WalkShape::AnyValue, depth);
    while (path_.size() > saved_path) path_.pop_back();
    if (inner_out.status == WalkOutcome::Status::ParseError || (!ok && inner_out.status == WalkOutcome::Status::Ok))
        return false;
    for (auto& a : inner_out.audit) {
        bool merged = false;
        for (auto& e : out_.audit) {
            if (e.rule_id == a.rule_id && e.path == a.path && e.action == a.action) {
                e.count += a.count;
                merged = true;
                break;
            }
        }
        if (!merged) out_.audit.push_back(a);
    }
    out_.report_only_hits = out_.report_only_hits || inner_out.report_only_hits;
    if (inner_out.status == WalkOutcome::Status::Rejected) {
        for (auto& id : inner_out.reject_rule_ids) {
            if (std::find(out_.reject_rule_ids.begin(), out_.reject_rule_ids.end(), id) == out_.reject_rule_ids.end())
                out_.reject_rule_ids.push_back(id);
        }
        if (out_.status == WalkOutcome::Status::Ok) out_.status = WalkOutcome::Status::Rejected;
    }
    return true;
}

// A string that is a JSON object or array: walked like one. Its edits are applied to the document, which
// becomes the string's new value (re-escaped). True when the string was JSON and has been handled.
bool Walker::maybe_embedded_json(std::string_view s, size_t raw_begin, size_t raw_end) {
    if (!looks_like_json_text(s)) return false;
    WalkOutcome inner_out;
    if (!walk_embedded(s, string_depth_, inner_out)) return false;
    if (stopped() || inner_out.edits.empty()) return true;
    std::sort(inner_out.edits.begin(), inner_out.edits.end(),
              [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
    std::vector<Edit> disjoint;
    for (auto& e : inner_out.edits) {
        if (!disjoint.empty() && e.begin < disjoint.back().end) continue;
        disjoint.push_back(std::move(e));
    }
    std::string json = "\"";
    append_json_escaped(json, apply_edits(s, disjoint));
    json.push_back('"');
    add_edit(raw_begin, raw_end, std::move(json));
    return true;
}

// What one decoded run holds: the first detector that reports something in it (or, when it is a JSON
// document, whether walking it changed or refused anything: `rule_id` then names the first rule that acted).
std::string_view Walker::decoded_hit(std::string_view decoded, std::string& rule_id) {
    if (looks_like_json_text(decoded)) {
        WalkOutcome inner_out;
        if (walk_embedded(decoded, string_depth_, inner_out)) {
            if (stopped()) return {};
            if (!inner_out.edits.empty()) {
                for (const auto& a : inner_out.audit) {
                    if (a.action != "report") {
                        rule_id = a.rule_id;
                        break;
                    }
                }
                if (rule_id.empty()) rule_id = "encoded";
            }
            return {};
        }
    }
    if (!profile_.has_detector_rules) return {};
    std::vector<DetectorMatch> inner;
    DetectorContext ctx;
    ctx.key = path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
    profile_.detector_set->scan(decoded, ctx, inner);
    if (!inner.empty()) return inner.front().detector;
    // Base64 inside base64, up to the nesting bound.
    if (size_t{embed_level_} + 1 < kMaxEmbedLevels && decoded.size() >= kMinBase64Run) {
        ++embed_level_;
        std::string_view hit;
        for_each_base64_run(decoded, [&](size_t, size_t, std::string_view inner_decoded) {
            if (hit.empty() && rule_id.empty()) hit = decoded_hit(inner_decoded, rule_id);
        });
        --embed_level_;
        return hit;
    }
    return {};
}

template <typename Fn>
void Walker::for_each_base64_run(std::string_view s, Fn&& fn) {
    std::string& decoded = scratch_->decoded_runs[std::min<size_t>(embed_level_, kMaxEmbedLevels - 1)];
    for (size_t i = 0; i < s.size();) {
        if (!kBase64Byte[static_cast<unsigned char>(s[i])]) {
            ++i;
            continue;
        }
        size_t e = i;
        while (e < s.size() && kBase64Byte[static_cast<unsigned char>(s[e])]) ++e;
        size_t run_end = e;
        while (run_end < s.size() && run_end - e < 2 && s[run_end] == '=') ++run_end;
        if (e - i >= kMinBase64Run && decode_run(s.substr(i, run_end - i), decoded) && is_text(decoded)) {
            const std::string copy = decoded;  // the callback may decode further runs into the same buffer
            fn(i, run_end, std::string_view(copy));
        }
        i = run_end;
    }
}

// Base64 runs of `s` that decode to text with something in it become matches spanning the whole run,
// reported under the detector that found it inside (the rule for that detector then acts on the run). A
// decoded JSON document whose walk changed something is replaced whole by a placeholder (encoded_spans_).
void Walker::inspect_base64_runs(std::string_view s, std::vector<DetectorMatch>& matches) {
    encoded_spans_.clear();
    if (embed_level_ >= kMaxEmbedLevels) return;
    // Cheap byte test first: a run of kMinBase64Run alphabet bytes (kBase64Byte's, 64 bytes at a time).
    if (!may_hold_base64_run(s)) return;
    // Nested walks reuse the scratch match buffer: the matches so far are kept aside once a run decodes.
    std::vector<DetectorMatch> outer;
    bool kept = false;
    std::vector<DetectorMatch> found;
    for_each_base64_run(s, [&](size_t b, size_t e, std::string_view decoded) {
        if (stopped()) return;
        if (!kept) {
            outer = matches;
            kept = true;
        }
        for (const auto& m : outer)
            if (m.begin < e && b < m.end) return;  // already reported as it is written
        std::string rule_id;
        const std::string_view detector = decoded_hit(decoded, rule_id);
        if (!detector.empty()) found.push_back(DetectorMatch{b, e, detector});
        else if (!rule_id.empty()) encoded_spans_.push_back(SpanEdit{b, e, redact_placeholder(rule_id)});
    });
    if (!kept) return;
    matches = std::move(outer);
    matches.insert(matches.end(), found.begin(), found.end());
    std::sort(matches.begin(), matches.end(),
              [](const DetectorMatch& a, const DetectorMatch& b) { return a.begin < b.begin; });
}

}  // namespace edgeguard::privacy::walk
