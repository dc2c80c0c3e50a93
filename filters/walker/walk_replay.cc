// posthog-js cv "2024-10" replay items: `data` (FullSnapshot) and data.texts/attributes/adds/removes
// (Mutation) hold gzip bytes as latin-1 strings; they are inflated, walked as JSON and re-encoded when
// something changed.
#include "filters/walker/walker.h"

#include <algorithm>

#include "filters/decode/gzip.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy::walk {

// properties.$snapshot_data[*] or properties.$snapshot_data (a single object).
bool Walker::is_replay_item_path() const {
    const size_t n = rel_size();
    const PathStep* p = rel_path();
    if (n == 3)
        return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data" &&
               p[2].is_index;
    if (n == 2)
        return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data";
    return false;
}

// posthog-js cv "2024-10": `data` (FullSnapshot) or data.texts/attributes/adds/removes hold gzip bytes
// as a latin-1 string. Inflate, walk the inner JSON, and re-encode it when something changed.
bool Walker::maybe_replay_field(std::string_view s, size_t raw_begin, size_t raw_end, size_t depth) {
    replay_field_handled_ = false;
    if (!compressed_item_ || path_.empty() || path_.back().is_index) return true;
    const std::string_view key = path_.back().key;
    const size_t n = rel_size();
    const PathStep* p = rel_path();
    const bool direct_data = key == "data" && (is_replay_item_path_at(n - 1));
    const bool mutation_field =
        (key == "texts" || key == "attributes" || key == "adds" || key == "removes") && n >= 2 &&
        !p[n - 2].is_index && p[n - 2].key == "data" && is_replay_item_path_at(n - 2);
    if (!direct_data && !mutation_field) return true;
    std::string bytes;
    if (!utf8_to_latin1(s, bytes)) return fail("compressed replay field is not a latin-1 string");
    if (!has_gzip_magic(bytes)) return fail("compressed replay field is not gzip");
    auto inflated = gzip_inflate(bytes, kMaxReplayFieldBytes);
    if (auto* err = std::get_if<DecodeError>(&inflated))
        return fail("compressed replay field: " + err->message);
    const std::string& inner = std::get<std::string>(inflated);
    replay_field_handled_ = true;
    // Walk the inner document with its own parser; its edits are collected separately.
    WalkOutcome inner_out;
    inner_out.status = WalkOutcome::Status::Ok;
    Walker nested(profile_, rules_, options_, inner_out, path_);
    nested.in_event_ = in_event_;
    nested.event_name_ = event_name_;
    nested.event_depth_ = event_depth_;
    nested.scratch_ = scratch_;
    od::parser parser;
    std::string padded;
    const bool ok = nested.run_nested(parser, padded, inner, depth);
    for (auto& a : inner_out.audit) {
        bool merged = false;
        for (auto& e : out_.audit) {
            if (e.rule_id == a.rule_id && e.path == a.path && e.action == a.action &&
                e.matched_by == a.matched_by) {
                e.count += a.count;
                merged = true;
            }
        }
        if (!merged) out_.audit.push_back(a);
    }
    out_.report_only_hits = out_.report_only_hits || inner_out.report_only_hits;
    if (inner_out.status == WalkOutcome::Status::Rejected) {
        for (auto& id : inner_out.reject_rule_ids) {
            if (std::find(out_.reject_rule_ids.begin(), out_.reject_rule_ids.end(), id) ==
                out_.reject_rule_ids.end()) {
                out_.reject_rule_ids.push_back(id);
            }
        }
        if (out_.status == WalkOutcome::Status::Ok) out_.status = WalkOutcome::Status::Rejected;
        return true;
    }
    if (!ok) return fail("compressed replay field: " + inner_out.error);
    if (inner_out.edits.empty()) return true;
    std::sort(inner_out.edits.begin(), inner_out.edits.end(),
              [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
    const std::string rewritten = apply_edits(inner, inner_out.edits);
    std::string latin1;
    latin1_to_utf8(gzip_deflate(rewritten), latin1);
    std::string json = "\"";
    append_json_escaped(json, latin1);
    json.push_back('"');
    add_edit(raw_begin, raw_end, std::move(json));
    return true;
}

bool Walker::is_replay_item_path_at(size_t len) const {
    const PathStep* p = rel_path();
    if (len == 3)
        return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data" &&
               p[2].is_index;
    if (len == 2)
        return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data";
    return false;
}

bool Walker::run_nested(od::parser& parser, std::string& padded, std::string_view json, size_t depth) {
    return run(parser, padded, json, WalkShape::AnyValue, depth);
}

}  // namespace edgeguard::privacy::walk
