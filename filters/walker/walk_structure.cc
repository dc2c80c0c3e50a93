// The one pass over the JSON: request shapes, events, objects, arrays and values, and the per-member
// decision (client IP policy, key rules, allowlist) made before a value is walked.
#include "filters/walker/walker.h"

#include <algorithm>
#include <cstring>

#include "filters/detectors/json_number.h"
#include "filters/value_actions.h"
#include "filters/walker/value_shapes.h"

namespace edgeguard::privacy::walk {

void Walker::prepare_memos() {
    Scratch& scratch = *scratch_;
    if (scratch.key_infos.owner != profile_.unique_id) {
        scratch.key_infos.clear();
        scratch.key_infos.owner = profile_.unique_id;
        std::fill(scratch.key_value_stats.begin(), scratch.key_value_stats.end(), KeyValueStats{});
        scratch.index_info = compute_key_info(PathStep{{}, true});  // the same for every array element
        scratch.traces.clear();  // tagged by key slots, and reusable only under the profile that walked them
    }
    if (scratch.clean_values.owner != profile_.unique_id) {
        scratch.clean_values.clear();
        scratch.clean_values.owner = profile_.unique_id;
    }
}

// Object keys are answered from a per-thread cache instead of re-running key regexes per event (keys are
// stored as the memo's second string, so that predicted_raw can compare them against raw key text).
// Sets key_info_ (copied memory to memory: returning it by value stalled store forwarding per member).
// `in_place`: the key is its own raw JSON text (no escapes), so its slot may answer predicted_key later, and
// predicted_key already found that the hinted slot does not hold it (a raw slot holding it would have
// answered there), so the hint is not tried again.
void Walker::load_key_info(const PathStep& step, bool in_place) {
    key_slot_ = StringMemo<KeyInfo>::kNoSlot;
    if (step.is_index) {
        key_info_ = scratch_->index_info;
        return;
    }
    if (step.key.size() > kMaxCachedKeyBytes) {
        key_info_ = compute_key_info(step);
        return;
    }
    auto& cache = scratch_->key_infos;
    const uint32_t previous = scratch_->last_key_slot;
    uint32_t slot = in_place ? StringMemo<KeyInfo>::kNoSlot : cache.predicted_slot(previous, {}, step.key);
    if (slot == StringMemo<KeyInfo>::kNoSlot) {
        const uint64_t hash = fast_string_hash({}, step.key);
        slot = cache.find_slot({}, step.key, hash);
        if (slot == StringMemo<KeyInfo>::kNoSlot) {
            slot = cache.insert({}, step.key, hash, compute_key_info(step), in_place);
            scratch_->key_value_stats[slot] = KeyValueStats{};  // the slot may have held another key
        }
        cache.link(previous, slot);
        if (in_place) scratch_->key_index.remember(key_index_position_, slot);
    }
    scratch_->last_key_slot = slot;
    key_slot_ = slot;
    key_info_ = cache.value_at(slot);
}

void Walker::load_key_info_out_of_line(const PathStep& step) { load_key_info(step, false); }

// The key the raw key index holds at `position` (RawKeyIndex::position of the key's first bytes, which the
// member loop computed for the object trace), or else the one the memo predicts to follow
// the previous key (two keys sharing their first 16 bytes in turn), checked against the raw key text: on
// a hit the key (without escapes, ending at the predicted length) and its info are known without scanning
// the key. The index comes first because it answers whatever order members come in.
bool Walker::predicted_key(const char* key_raw, uint32_t position, std::string_view& key) {
    auto& cache = scratch_->key_infos;
    key_index_position_ = position;
    uint32_t slot =
        cache.raw_key_slot(scratch_->key_index.slot_at(key_index_position_), key_raw, base_ + size_);
    if (slot != StringMemo<KeyInfo>::kNoSlot) {
        ++scratch_->key_index.hits;
    } else {
        slot = cache.predicted_raw(scratch_->last_key_slot, key_raw, base_ + size_);
        if (slot == StringMemo<KeyInfo>::kNoSlot) return false;
    }
    key = std::string_view(key_raw, cache.b_size_at(slot));
    scratch_->last_key_slot = slot;
    key_slot_ = slot;
    key_info_ = cache.value_at(slot);
    return true;
}

// Decides what happens to the value at the current path before walking it.
// Fills `d` in place (it starts as Walk): returning a Decision by value made the caller reload it with
// one wide load over narrower stores, a store-forwarding stall on every member.
void Walker::decide(od::value& v, const Allowlist* allowlist, Decision& d) {
    if (!key_info_.plain) {
        decide_by_key(v, d);
        if (d.kind != Decision::Kind::Walk || stopped()) return;
    }
    // 3. The event's property allowlist, or the person-property allowlist.
    if (allowlist != nullptr) decide_by_allowlist(v, *allowlist, d);
}

// $set, $set_once (top level and in properties), person_properties / $properties and $group_set hold person
// or group properties; group_properties / $group_properties hold one such object per group type.
bool Walker::at_person_properties() const {
    const size_t n = rel_size();
    if (n == 0 || n > 2) return false;
    const PathStep* p = rel_path();
    if (p[0].is_index) return false;
    const std::string_view k0 = p[0].key;
    if (n == 1)
        return k0 == "$set" || k0 == "$set_once" || k0 == "person_properties" || k0 == "$properties" ||
               k0 == "$group_set";
    if (p[1].is_index) return false;
    const std::string_view k1 = p[1].key;
    if (k0 == "properties") return k1 == "$set" || k1 == "$set_once" || k1 == "$group_set";
    return k0 == "group_properties" || k0 == "$group_properties";
}

// The member at the path is the client address the IP policy governs.
bool Walker::client_ip_member() const {
    return options_.ip_policy != IpPolicy::Forward && in_event_ && key_info_.ip &&
           (rel_is({"properties", "$ip"}) || rel_is({"$ip"}) || rel_is({"ip"}) || rel_is({"ip_address"}));
}

// Steps 1 and 2 of decide(): the client IP policy and key rules.
void Walker::decide_by_key(od::value& v, Decision& d) {
    if (path_.empty()) return;
    // 1. Client IP policy on $ip (and the flags/legacy ip fields).
    if (client_ip_member()) {
        od::json_type t;
        std::string_view s;
        if (!v.type().get(t) && t == od::json_type::string) {
            // Peek at the raw token (no escapes in an IP) without consuming the value.
            std::string_view tok = v.raw_json_token();
            while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
            if (tok.size() >= 2) s = tok.substr(1, tok.size() - 2);
            std::string text;
            if (options_.ip_policy == IpPolicy::Drop) {
                // A truthy anonymous value: PostHog back-fills a missing or empty $ip from XFF.
                text = "0.0.0.0";
            } else {
                text = truncate_ip(s, profile_.ip);
                if (text.empty()) text = "0.0.0.0";
            }
            if (text != s) {
                audit("client_ip_policy", options_.ip_policy == IpPolicy::Drop ? "drop" : "truncate_ip", "ip_policy");
            }
            d.kind = Decision::Kind::Replace;
            // Not assign("\""): at -O3 GCC 12 reports a false -Wrestrict overlap in that inlined copy.
            ip_replacement_.clear();
            ip_replacement_.push_back('"');
            ip_replacement_.append(text).push_back('"');
            d.replacement = &ip_replacement_;
            return;
        }
    }
    // 2. Key rules by path.
    bool literal_value = false;
    if (key_info_.form_mask != 0) {
        od::json_type t;
        literal_value = !v.type().get(t) && (t == od::json_type::boolean || t == od::json_type::null);
    }
    const PathPattern* pattern = nullptr;
    if (const Rule* rule = key_info_.rule_mask != 0 ? key_rule_here(literal_value, &pattern) : nullptr) {
        if (enforce(rule->id, rule->mode, rule->action.kind, key_match_name(pattern))) {
            if (rule->action.kind == ActionKind::Drop) {
                d.kind = Decision::Kind::Drop;
            } else {
                d.kind = Decision::Kind::Replace;
                d.rule = rule;
                d.replace_computed = true;
            }
            return;
        }
        if (stopped()) {
            d.kind = Decision::Kind::Inert;
            return;
        }
    }
}

// Step 3 of decide(): the event's property allowlist, for a member at the top of `properties`.
void Walker::decide_by_allowlist(od::value& v, const Allowlist& allowlist, Decision& d) {
    if (path_.empty()) return;
    const std::string_view key = path_.back().key;
    const AllowedProperty* listed = nullptr;
    for (const auto& p : allowlist.properties) {
        if (glob_match(p.name_glob, key)) {
            listed = &p;
            break;
        }
    }
    if (listed != nullptr && !listed->type.scanned()) {
        if (!type_ok(v, listed->type))
            listed = nullptr;  // a mistyped value is not what was allowed
        else
            d.kind = Decision::Kind::Inert;
    }
    if (listed == nullptr) {
        const ActionKind action = allowlist.reject_unlisted ? ActionKind::Reject : ActionKind::Drop;
        if (enforce(allowlist.id, allowlist.mode, action, "allowlist")) d.kind = Decision::Kind::Drop;
        return;
    }
}

// Parses `json` with `parser` and walks it; edits are offsets into `json`.
bool Walker::run(od::parser& parser, std::string& padded, std::string_view json, WalkShape shape,
                 size_t depth) {
    // The buffer only grows (a shorter body reuses it without a fill); the padding after the text is
    // zeroed every time because unescaped_in_place relies on a zero byte right after the text.
    const size_t padded_size = json.size() + simdjson::SIMDJSON_PADDING;
    if (padded.size() < padded_size) padded.resize(padded_size);
    std::memcpy(padded.data(), json.data(), json.size());
    std::memset(padded.data() + json.size(), 0, simdjson::SIMDJSON_PADDING);
    return run_in_place(parser, std::string_view(padded.data(), json.size()), shape, depth);
}

// `json` is followed by simdjson::SIMDJSON_PADDING zero bytes (a PaddedText, or run()'s copy).
bool Walker::run_in_place(od::parser& parser, std::string_view json, WalkShape shape, size_t depth) {
    // Traces point into the text while it is walked; they keep their own copy once this walk ends,
    // however it ends (a nested replay walk's buffer is freed, the request's is reused).
    struct KeepTraces {
        ObjectTraces& traces;
        ~KeepTraces() { traces.keep(); }
    } keep_traces{scratch_->traces};
    base_ = json.data();
    size_ = json.size();
    od::document doc;
    if (parser.iterate(json.data(), json.size(), json.size() + simdjson::SIMDJSON_PADDING).get(doc)) {
        return fail("invalid JSON");
    }
    doc_ = &doc;
    od::value root;
    // A scalar root cannot be taken as a value in On-Demand; handle it separately.
    bool is_scalar = false;
    if (doc.is_scalar().get(is_scalar)) return fail("invalid JSON");
    if (is_scalar) {
        if (shape == WalkShape::Request) return fail("payload is not an event, a list of events or a batch");
        return walk_root_scalar(doc);
    }
    if (doc.get_value().get(root)) return fail("invalid JSON");
    size_t begin = 0, end = 0;
    bool ok = false;
    if (shape == WalkShape::Request) {
        ok = walk_request_root(root, depth);
    } else {
        ok = walk_value(root, Decision{}, depth, begin, end);
    }
    if (!ok) return false;
    const char* rest = nullptr;
    if (!doc.current_location().get(rest)) return fail("invalid JSON: trailing content");
    return true;
}

bool Walker::walk_request_root(od::value& root, size_t depth) {
    od::json_type type;
    if (root.type().get(type)) return fail("invalid JSON");
    if (type == od::json_type::array) {
        od::array arr;
        if (root.get_array().get(arr)) return fail("invalid JSON");
        return walk_event_list(arr, depth + 1);
    }
    if (type != od::json_type::object) return fail("payload is not an event, a list of events or a batch");
    od::object obj;
    if (root.get_object().get(obj)) return fail("invalid JSON");
    od::value batch;
    bool is_batch = false;
    auto found = obj.find_field_unordered("batch");
    if (!found.get(batch)) {
        od::json_type bt;
        is_batch = !batch.type().get(bt) && bt == od::json_type::array;
    } else if (found.error() != simdjson::NO_SUCH_FIELD) {
        return fail("invalid JSON");
    }
    bool rewound = false;
    if (obj.reset().get(rewound)) return fail("invalid JSON");
    if (!is_batch) return walk_event(obj, depth + 1);
    // Envelope: `batch` holds the events; api_key/token/sent_at are walked like any value.
    return walk_object(obj, depth + 1, /*envelope=*/true);
}

bool Walker::walk_event_list(od::array& arr, size_t depth) {
    for (auto element : arr) {
        od::value v;
        if (element.get(v)) return fail("invalid JSON");
        push_step({}, true);
        size_t begin = 0, end = 0;
        od::json_type type;
        if (v.type().get(type)) return fail("invalid JSON");
        bool ok;
        if (type == od::json_type::object) {
            od::object obj;
            begin = obj_begin(v);
            if (v.get_object().get(obj)) return fail("invalid JSON");
            ok = walk_event(obj, depth + 1);
            end = value_end();
        } else {
            ok = walk_value(v, Decision{}, depth + 1, begin, end);
        }
        path_.pop_back();
        if (!ok) return false;
        (void)begin;
        (void)end;
    }
    return true;
}

bool Walker::walk_event(od::object& obj, size_t depth) {
    if (depth > profile_.max_depth) return fail("JSON nested too deeply");
    const bool saved_in_event = in_event_;
    const std::string_view saved_name = event_name_;
    const size_t saved_depth = event_depth_;
    const Allowlist* saved_allowlist = allowlist_;
    const bool saved_observing = learn_observing_;
    in_event_ = true;
    event_depth_ = path_.size();
    event_name_ = {};
    od::value name_value;
    auto found = obj.find_field_unordered("event");
    if (!found.get(name_value)) {
        std::string_view name;
        if (!name_value.get_string().get(name)) event_name_ = name;
    } else if (found.error() != simdjson::NO_SUCH_FIELD) {
        return fail("invalid JSON");
    }
    bool rewound = false;
    if (obj.reset().get(rewound)) return fail("invalid JSON");
    if (options_.observe != nullptr) [[unlikely]] {
        if (!learn_event(obj)) return fail("invalid JSON");
    }
    allowlist_ = profile_.allowlists.empty() ? nullptr : allowlist_for_event();
    const bool ok = walk_object(obj, depth, false);
    in_event_ = saved_in_event;
    event_name_ = saved_name;
    event_depth_ = saved_depth;
    allowlist_ = saved_allowlist;
    learn_observing_ = saved_observing;
    return ok;
}

size_t Walker::obj_begin(od::value& v) {
    std::string_view tok = v.raw_json_token();
    return static_cast<size_t>(tok.data() - base_);
}

// Offset just past the value consumed last: the iterator stands on the next token.
size_t Walker::value_end() {
    const char* loc = nullptr;
    size_t pos = size_;
    if (!doc_->current_location().get(loc)) pos = static_cast<size_t>(loc - base_);
    while (pos > 0 && is_ws(base_[pos - 1])) --pos;
    return pos;
}

// Deletes the byte ranges of dropped members (merged, so adjacent drops become one edit).
bool Walker::finish_members(MemberTracker& tracker) {
    if (!tracker.any_drop() || stopped()) return !stopped() || out_.status == WalkOutcome::Status::Rejected;
    std::vector<std::pair<size_t, size_t>> ranges;
    ranges.swap(drop_ranges_);
    tracker.finish(ranges);
    std::sort(ranges.begin(), ranges.end());
    size_t cur_b = ranges[0].first, cur_e = ranges[0].second;
    for (size_t i = 1; i <= ranges.size(); ++i) {
        if (i < ranges.size() && ranges[i].first <= cur_e) {
            cur_e = std::max(cur_e, ranges[i].second);
            continue;
        }
        add_edit(cur_b, cur_e, std::string());
        if (i < ranges.size()) {
            cur_b = ranges[i].first;
            cur_e = ranges[i].second;
        }
    }
    return true;
}

bool Walker::walk_root_scalar(od::document& doc) {
    od::json_type t;
    if (doc.type().get(t)) return fail("invalid JSON");
    std::string_view tok;
    if (doc.raw_json_token().get(tok)) return fail("invalid JSON");
    switch (t) {
        case od::json_type::string: {
            std::string_view s;
            if (doc.get_string().get(s)) return fail("invalid JSON");
            const size_t begin = static_cast<size_t>(tok.data() - base_);
            size_t end = begin + tok.size();
            while (end > begin && is_ws(base_[end - 1])) --end;
            process_string(s, begin, end, {});
            return true;
        }
        case od::json_type::number: {
            while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
            return is_json_number(tok) || fail("invalid JSON number");
        }
        case od::json_type::boolean: {
            bool b;
            return !doc.get_bool().get(b) || fail("invalid JSON");
        }
        case od::json_type::null: {
            bool n = false;
            return (!doc.is_null().get(n) && n) || fail("invalid JSON");
        }
        default:
            return fail("invalid JSON");
    }
}

// The clean value this member's key had last, or else the clean-value memo's predicted pair, checked
// against the raw string at `begin` (its opening quote): a hit means process_string would find the pair in
// the memo and do nothing. Sets `end` past the string. The key's own value comes first because it answers
// whatever order members come in; the prediction still answers a key whose values take turns.
bool Walker::known_clean_string(size_t begin, size_t& end) {
    const std::string_view key =
        path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
    if (!key.empty() && (key_info_.url || key_info_.chain)) return false;  // URLs are never memoized
    auto& cache = scratch_->clean_values;
    const char* content = base_ + begin + 1;
    uint32_t slot = StringMemo<bool>::kNoSlot;
    KeyValueStats* stats = nullptr;
    if (!key.empty() && key_slot_ != StringMemo<KeyInfo>::kNoSlot) {
        stats = &scratch_->key_value_stats[key_slot_];
        // The key is compared again only when the memo was cleared since (its slot may hold another pair).
        if (stats->last_clean_generation == cache.generation()) {
            slot = cache.slot_if_raw_same_a(stats->last_clean_slot, content, base_ + size_);
        } else {
            slot = cache.slot_if_raw(stats->last_clean_slot, key, content, base_ + size_);
            if (slot != StringMemo<bool>::kNoSlot) stats->last_clean_generation = cache.generation();
        }
        if (slot != StringMemo<bool>::kNoSlot) ++scratch_->clean_by_key;
    }
    if (slot == StringMemo<bool>::kNoSlot) {
        slot = cache.predicted_raw(scratch_->last_clean_slot, key, content, base_ + size_);
        if (slot == StringMemo<bool>::kNoSlot) return false;
        if (stats != nullptr) {
            stats->last_clean_slot = slot;
            stats->last_clean_generation = cache.generation();
        }
    }
    scratch_->last_clean_slot = slot;
    end = begin + 1 + cache.b_size_at(slot) + 1;
    return true;
}

// A scalar member that walk_value would walk and find clean, recognised without the call: a string the
// clean-value memo holds (known_clean_string), a canonical UUID or ISO-8601 timestamp (never scanned), a
// number too short to be read as an identifier, true, false or null. `v` is consumed as walk_value would
// consume it (numbers are left to the iterator) and `end` set past it. None: walk the member (a string
// the memo missed is marked so that walk_value does not ask the memo again); Failed: fail() was called.
Walker::Shortcut Walker::clean_scalar_member(od::value& v, size_t& end) {
    const std::string_view tok = v.raw_json_token();
    if (tok.empty()) return Shortcut::None;
    const size_t begin = static_cast<size_t>(tok.data() - base_);
    const char first = tok[0];
    const bool shapes = scratch_->shape_shortcuts;
    if (first == '"') {
        const std::string_view key = path_.back().key;
        const bool url = !key.empty() && (key_info_.url || key_info_.chain);
        size_t shape_size = 0;
        if (shapes && !url) shape_size = raw_never_personal_shape(base_ + begin + 1, base_ + size_);
        if (shape_size != 0) {
            end = begin + shape_size + 2;
            ++scratch_->clean_by_shape;
        } else if (!known_clean_string(begin, end)) {
            clean_hint_missed_ = true;
            return Shortcut::None;
        }
        od::raw_json_string raw;
        if (v.get_raw_json_string().get(raw)) {
            fail("invalid JSON string");
            return Shortcut::Failed;
        }
        return Shortcut::Clean;
    }
    if (!shapes) return Shortcut::None;
    if (first == 't' || first == 'f') {
        bool b;
        if (v.get_bool().get(b)) {
            fail("invalid JSON");
            return Shortcut::Failed;
        }
        end = begin + (b ? 4 : 5);
    } else if (first == 'n') {
        bool n = false;
        if (v.is_null().get(n) || !n) {
            fail("invalid JSON");
            return Shortcut::Failed;
        }
        end = begin + 4;
    } else if (first == '-' || (first >= '0' && first <= '9')) {
        std::string_view number = tok;
        while (!number.empty() && is_ws(number.back())) number.remove_suffix(1);
        if (!number_too_short_for_identifier(number)) return Shortcut::None;
        if (!is_json_number(number)) {
            fail("invalid JSON number");
            return Shortcut::Failed;
        }
        end = begin + number.size();  // left unconsumed, as walk_value leaves it
    } else {
        return Shortcut::None;
    }
    ++scratch_->clean_by_shape;
    return Shortcut::Clean;
}

// Walks `v` (applying `d`), validating everything; begin/end get the value's byte range.
bool Walker::walk_value(od::value& v, const Decision& d, size_t depth, size_t& begin, size_t& end) {
    if (depth > profile_.max_depth) return fail("JSON nested too deeply");
    od::json_type type;
    if (v.type().get(type)) return fail("invalid JSON");
    const bool inert = d.kind != Decision::Kind::Walk || stopped();
    bool clean = false;  // becomes value_clean_ (one store: nested walks and process_* write it too)
    std::string_view tok = v.raw_json_token();
    begin = static_cast<size_t>(tok.data() - base_);
    std::string_view unescaped;
    bool is_string = false;
    switch (type) {
        case od::json_type::object: {
            od::object obj;
            if (v.get_object().get(obj)) return fail("invalid JSON");
            if (!walk_object_inner(obj, depth + 1, inert)) return false;
            end = value_end();
            break;
        }
        case od::json_type::array: {
            od::array arr;
            if (v.get_array().get(arr)) return fail("invalid JSON");
            if (!walk_array(arr, depth + 1, inert)) return false;
            end = value_end();
            break;
        }
        case od::json_type::string: {
            // Not asked twice: walk_object_impl asked the memo's predictions for this member already.
            if (!inert && clean_memo_usable_ && !compressed_item_ && !clean_hint_missed_ &&
                known_clean_string(begin, end)) {
                // A (key, value) pair the detectors found clean before, recognised in the raw text.
                od::raw_json_string raw;
                if (v.get_raw_json_string().get(raw)) return fail("invalid JSON string");
                clean = true;
                break;
            }
            end = begin + tok.size();
            while (end > begin && is_ws(base_[end - 1])) --end;
            // Stage 1 already validated UTF-8; without escapes or control characters the raw bytes
            // are the value and the string need not be copied out.
            unescaped = unescaped_in_place(base_ + begin + 1, base_ + size_);
            if (unescaped.data() == nullptr) {
                if (v.get_string().get(unescaped)) return fail("invalid JSON string");
            } else {
                // Consume it (without copying) so the iterator checks what follows the string.
                od::raw_json_string raw;
                if (v.get_raw_json_string().get(raw)) return fail("invalid JSON string");
            }
            is_string = true;
            if (!inert) {
                const std::string_view key =
                    path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
                if (compressed_item_ && !maybe_replay_field(unescaped, begin, end, depth)) return false;
                if (!replay_field_handled_) {
                    string_depth_ = depth;
                    process_string(unescaped, begin, end, key);
                    clean = value_clean_;
                }
                replay_field_handled_ = false;
            }
            clean_hint_missed_ = false;
            break;
        }
        case od::json_type::number: {
            while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
            if (!is_json_number(tok)) return fail("invalid JSON number");
            end = begin + tok.size();  // left unconsumed: the parent's iteration steps over it
            if (!inert && json_integer_may_be_identifier(tok)) {
                process_number(tok, begin, end);
                clean = value_clean_;
            } else if (!inert && tok.size() >= 4 &&
                       !(scratch_->shape_shortcuts && number_too_short_for_identifier(tok)) &&
                       json_float_integer_digits(tok, number_digits_)) {
                // An integer written with a zero fraction or an exponent is read as that integer.
                process_number(number_digits_, begin, end);
                clean = value_clean_;
            } else {
                clean = true;  // not identifier-shaped: never scanned
            }
            break;
        }
        case od::json_type::boolean: {
            bool b;
            if (v.get_bool().get(b)) return fail("invalid JSON");
            end = begin + (b ? 4 : 5);
            clean = true;
            break;
        }
        case od::json_type::null: {
            bool n = false;
            if (v.is_null().get(n) || !n) return fail("invalid JSON");
            end = begin + 4;
            clean = true;
            break;
        }
    }
    value_clean_ = clean;
    if (d.kind == Decision::Kind::Replace && !stopped()) {
        if (d.replace_computed) {
            const std::string_view raw(base_ + begin, end - begin);
            add_edit(begin, end, computed_replacement(*d.rule, raw, unescaped, is_string));
        } else {
            add_edit(begin, end, *d.replacement);
        }
    }
    return true;
}

bool Walker::walk_object_impl(od::object& obj, size_t depth, bool inert, bool envelope, uint32_t kind) {
    if (depth > profile_.max_depth) return fail("JSON nested too deeply");
    MemberTracker tracker;
    std::vector<std::pair<size_t, size_t>> ranges;
    const bool at_properties = in_event_ && rel_is({"properties"});
    const bool replay_item = !inert && in_event_ && is_replay_item_path();
    bool saved_cv = compressed_item_;
    if (replay_item) {
        compressed_item_ = false;
        od::value cv;
        auto found = obj.find_field_unordered("cv");
        std::string_view cvs;
        if (!found.get(cv) && !cv.get_string().get(cvs)) compressed_item_ = cvs == "2024-10";
        bool rewound = false;
        if (obj.reset().get(rewound)) return fail("invalid JSON");
    }
    // Per object, not per member: whether the allowlist applies to the members, and whether a scalar
    // member may be answered by its bytes without walk_value (clean_scalar_member; same depth limit).
    const Allowlist* member_allowlist = at_properties ? allowlist_ : nullptr;
    if (member_allowlist == nullptr && !inert && in_event_ && profile_.person_properties.enabled &&
        at_person_properties())
        member_allowlist = &profile_.person_properties.allowlist;
    const bool allowlist_here = member_allowlist != nullptr;
    // An observed event of a learning profile sees every member of `properties`: none may be passed over.
    const bool observe_here = at_properties && !inert && learn_observing_;
    const bool clean_scalars_here =
        !inert && clean_memo_usable_ && !compressed_item_ && depth + 1 <= profile_.max_depth && !observe_here;
    // Members that repeat the previous object of this kind byte for byte are passed over (object_trace.h);
    // not where an allowlist decides per key, nor inside a replay item or a dropped or replaced value.
    const bool traced = !inert && !envelope && !allowlist_here && !compressed_item_ && !no_traces_ &&
                        depth + 1 <= profile_.max_depth && !observe_here;
    TraceCursor trace(scratch_->traces, traced ? kind : ObjectTrace::kNoTag);
    size_t last_end = 0;
    for (auto field_result : obj) {
        if (field_result.error()) return fail("invalid JSON");
        // By reference: moving the field out of its result costs two store-forwarding stalls per member.
        od::field& field = field_result.value_unsafe();
        const char* key_raw = field.key().raw();
        const size_t key_begin = static_cast<size_t>(key_raw - 1 - base_);
        uint32_t key_position = 0;
        if (trace) {
            size_t end = 0;
            uint32_t slot = 0;
            if (trace.reusable_at(base_, size_, key_begin, end, slot) && !stopped()) {
                // Left unconsumed: the object iterator steps over the value.
                scratch_->last_key_slot = slot;
                trace.passed_over(key_begin, end, slot);
                tracker.member(key_begin, end, false, ranges);
                last_end = end;
                continue;
            }
            // Not at the cursor: the member its key had in the previous object, wherever it stood there.
            key_position = RawKeyIndex::position(key_raw);
            if (trace.reusable_by_key(base_, size_, key_begin, scratch_->key_index.slot_at(key_position), end,
                                      slot) &&
                !stopped()) {
                scratch_->last_key_slot = slot;
                trace.passed_over_by_key(key_begin, end, slot);
                tracker.member(key_begin, end, false, ranges);
                last_end = end;
                continue;
            }
        } else if (!inert) {
            key_position = RawKeyIndex::position(key_raw);
        }
        std::string_view key;
        const bool predicted = !inert && predicted_key(key_raw, key_position, key);
        bool in_place = true;
        if (!predicted) {
            key = unescaped_in_place(key_raw, base_ + size_);
            in_place = key.data() != nullptr;
            if (!in_place && field.unescaped_key().get(key)) return fail("invalid JSON key");
        }
        push_step(key, false);
        od::value v = field.value();
        Decision d;
        if (!inert && !predicted) load_key_info(path_.back(), in_place);
        if (inert || stopped()) {
            d.kind = Decision::Kind::Inert;
        } else if (envelope && key == "batch") {
            // The events of a batch envelope.
            od::array arr;
            if (v.get_array().get(arr)) return fail("invalid JSON");
            if (!walk_event_list(arr, depth + 1)) return false;
            tracker.member(key_begin, value_end(), false, ranges);
            path_.pop_back();
            continue;
        } else if (!key_info_.plain || allowlist_here) {
            decide(v, member_allowlist, d);
            if ((d.kind == Decision::Kind::Walk || d.kind == Decision::Kind::Inert) && key_info_.key_hits) {
                if (!process_key(key, key_raw, d)) return false;
            }
        }
        size_t vbegin = 0, vend = 0;
        clean_hint_missed_ = false;
        if (clean_scalars_here && d.kind == Decision::Kind::Walk && !stopped()) {
            // A scalar whose bytes prove it clean: what walk_value would do, without the call.
            const Shortcut shortcut = clean_scalar_member(v, vend);
            if (shortcut == Shortcut::Failed) return false;
            if (shortcut == Shortcut::Clean) {
                path_.pop_back();
                tracker.member(key_begin, vend, false, ranges);
                if (trace) trace.walked(key_begin, vend, key_slot_, key_info_.plain);
                last_end = vend;
                continue;
            }
        }
        value_drop_ = false;
        // The member's own key (a value that is an object or array walks other keys).
        const uint32_t member_slot = key_slot_;
        const bool member_plain = key_info_.plain;
        if (observe_here) [[unlikely]] {
            scratch_->tally.clear();
            scratch_->tallying = true;
        }
        const bool person_key = key_info_.rule_mask != 0;
        const bool key_hits = key_info_.key_hits;
        const bool ok = walk_value(v, d, depth + 1, vbegin, vend);
        path_.pop_back();
        if (observe_here) [[unlikely]] {
            scratch_->tallying = false;
            // A key the detectors flag (an email used as a key) is itself personal data: never stored.
            if (ok && !stopped() && !key_hits) observe_member(key, d, vbegin, vend, person_key);
        }
        if (!ok) return false;
        const bool drop = (d.kind == Decision::Kind::Drop || value_drop_) && !stopped();
        if (trace) {
            const bool reusable =
                value_clean_ && member_plain && d.kind == Decision::Kind::Walk && !value_drop_ && !stopped();
            trace.walked(key_begin, vend, member_slot, reusable);
        }
        value_drop_ = false;
        tracker.member(key_begin, vend, drop, ranges);
        last_end = vend;
    }
    if (trace) trace.finish(base_, last_end);
    compressed_item_ = saved_cv;
    drop_ranges_.swap(ranges);
    return finish_members(tracker);
}

bool Walker::walk_array(od::array& arr, size_t depth, bool inert) {
    if (depth > profile_.max_depth) return fail("JSON nested too deeply");
    MemberTracker tracker;
    std::vector<std::pair<size_t, size_t>> ranges;
    for (auto element : arr) {
        od::value v;
        if (element.get(v)) return fail("invalid JSON");
        push_step({}, true);
        Decision d;
        if (inert || stopped()) {
            d.kind = Decision::Kind::Inert;
        } else {
            key_info_ = scratch_->index_info;
            key_slot_ = StringMemo<KeyInfo>::kNoSlot;
            decide(v, nullptr, d);
        }
        size_t vbegin = 0, vend = 0;
        value_drop_ = false;
        const bool ok = walk_value(v, d, depth + 1, vbegin, vend);
        path_.pop_back();
        if (!ok) return false;
        const bool drop = (d.kind == Decision::Kind::Drop || value_drop_) && !stopped();
        value_drop_ = false;
        tracker.member(vbegin, vend, drop, ranges);
    }
    drop_ranges_.swap(ranges);
    return finish_members(tracker);
}

}  // namespace edgeguard::privacy::walk
