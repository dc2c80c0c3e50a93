// The walker's decision for one value at a time, without a JSON text (quiet_probe.h): the same steps
// walk_object_impl, walk_array and walk_value take for a member, run on the value's JSON token written into
// a scratch string, answering only whether they left the value alone. A step added to those (a new kind
// of decision, a new way a string is acted on) belongs here too: tests/unit/filters/otlp_quiet_pass_test.cc
// holds the two to the same answers on generated OTLP exports.
#include <algorithm>

#include "filters/detectors/json_number.h"
#include "filters/value_actions.h"
#include "filters/walker/walker.h"

namespace edgeguard::privacy::walk {

// Nothing recorded, nothing refused, nothing to rewrite so far.
bool Walker::probe_quiet() const {
    return out_.status == WalkOutcome::Status::Ok && out_.edits.empty() && out_.audit.empty() &&
           !out_.report_only_hits && !value_drop_;
}

bool Walker::probe_begin_event(std::string_view name) {
    // walk_request_root → walk_event_list → walk_event(obj, 2).
    if (options_.observe != nullptr || profile_.max_depth < 2) return false;
    in_event_ = true;
    event_depth_ = path_.size();
    event_name_ = name;
    // An allowlist decides the members of `properties` by their JSON type.
    allowlist_ = profile_.allowlists.empty() ? nullptr : allowlist_for_event();
    if (allowlist_ != nullptr) return false;
    if (!probe_key("event")) return false;
    const bool quiet = probe_string(name);
    path_.pop_back();
    return quiet && probe_key("properties") && probe_container();
}

// Entering a member: the depth walk_value checks, then the member's decision.
bool Walker::probe_key(std::string_view key) {
    push_step(key, false);
    if (probe_depth() > profile_.max_depth) return false;
    load_key_info_out_of_line(path_.back());
    return probe_decision();
}

bool Walker::probe_index() {
    push_step({}, true);
    if (probe_depth() > profile_.max_depth) return false;
    key_info_ = scratch_->index_info;
    key_slot_ = StringMemo<KeyInfo>::kNoSlot;
    return probe_decision();
}

// decide_by_key and process_key for the member at the path, whatever its value: quiet when neither the
// client IP policy nor a key rule (for a value of any type) nor a detector hit in the key acts on it.
bool Walker::probe_decision() const {
    if (key_info_.plain) return true;
    if (key_info_.key_hits || client_ip_member()) return false;
    return key_info_.rule_mask == 0 || (key_rule_here(false) == nullptr && key_rule_here(true) == nullptr);
}

// walk_object_impl / walk_array for the value at the path: the depth check, and the objects whose members
// an allowlist decides (person properties) or that hold replay data.
bool Walker::probe_container() const {
    if (probe_depth() + 1 > profile_.max_depth) return false;
    if (profile_.person_properties.enabled && at_person_properties()) return false;
    return !is_replay_item_path();
}

// walk_value's string case for a member the decision left to Walk.
bool Walker::probe_string(std::string_view s) {
    probe_text_.clear();
    probe_text_.push_back('"');
    append_json_escaped(probe_text_, s);
    probe_text_.push_back('"');
    base_ = probe_text_.data();
    size_ = probe_text_.size();
    string_depth_ = probe_depth();
    clean_hint_missed_ = false;
    value_drop_ = false;
    const std::string_view key =
        path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
    process_string(s, 0, size_, key);
    return probe_quiet();
}

// walk_value's number case for an integer written as its digits.
bool Walker::probe_integer(std::string_view digits) {
    probe_text_.assign(digits);
    base_ = probe_text_.data();
    size_ = probe_text_.size();
    value_drop_ = false;
    const std::string_view tok = probe_text_;
    if (json_integer_may_be_identifier(tok)) {
        process_number(tok, 0, size_);
    } else if (tok.size() >= 4 && json_float_integer_digits(tok, number_digits_)) {
        process_number(number_digits_, 0, size_);
    }
    return probe_quiet();
}

}  // namespace edgeguard::privacy::walk
