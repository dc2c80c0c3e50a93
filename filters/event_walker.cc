#include "filters/event_walker.h"

#include <simdjson.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <cstring>
#include <memory>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "filters/decode/gzip.h"
#include "filters/decode/url_form.h"
#include "filters/detectors/json_number.h"
#include "filters/string_memo.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy {

namespace od = simdjson::ondemand;

namespace {

// Bodies above this size get a parser of their own so a worker does not keep a huge buffer forever.
constexpr size_t kScratchParserLimit = 8 * 1024 * 1024;
// A decompressed replay field may not grow beyond this many bytes.
constexpr uint64_t kMaxReplayFieldBytes = 64 * 1024 * 1024;

char lower_ascii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool is_ws(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

// A span of a string value to rewrite, in unescaped-text offsets.
struct SpanEdit {
    size_t begin;
    size_t end;
    std::string text;
};

// Turns "drop member i" into byte ranges without recording every member: a dropped member after a kept
// one takes the comma before it ([end of last kept, its end)); a run of dropped members at the start takes
// everything up to the next member's start, or up to its own end when it is the last one.
class MemberTracker {
public:
    // Call for every member in order; returns nothing, records deletions for dropped ones.
    void member(size_t begin, size_t end, bool drop, std::vector<std::pair<size_t, size_t>>& ranges) {
        if (leading_drop_) {
            ranges.emplace_back(leading_begin_, begin);  // the previous leading drop ends where this one begins
            leading_drop_ = false;
        }
        if (drop) {
            if (have_kept_) {
                ranges.emplace_back(last_kept_end_, end);
            } else {
                leading_drop_ = true;
                leading_begin_ = begin;
                leading_end_ = end;
            }
            any_drop_ = true;
        } else {
            have_kept_ = true;
            last_kept_end_ = end;
        }
    }
    void finish(std::vector<std::pair<size_t, size_t>>& ranges) {
        if (leading_drop_) ranges.emplace_back(leading_begin_, leading_end_);
    }
    bool any_drop() const { return any_drop_; }

private:
    bool have_kept_ = false;
    bool leading_drop_ = false;
    bool any_drop_ = false;
    size_t last_kept_end_ = 0;
    size_t leading_begin_ = 0;
    size_t leading_end_ = 0;
};

// What the rules decided for one object member or array element before its value is walked.
struct Decision {
    enum class Kind { Walk, Inert, Drop, Replace } kind = Kind::Walk;
    const Rule* rule = nullptr;     // key rule acting on the whole value (Replace)
    // Replace with a fixed JSON text (the walker's ip_replacement_): a pointer, not a string, keeps the
    // per-member Decision trivially copyable.
    const std::string* replacement = nullptr;
    bool replace_computed = false;  // Replace with the rule's action on the value (hash/mask/redact)
};

// What the profile says about one object key, computed once per distinct key (keys repeat across events).
struct KeyInfo {
    uint64_t rule_mask = 0;  // key-rule paths whose last segment accepts the key
    bool url = false;        // a URL-valued key: sensitive query parameters are redacted
    bool ip = false;         // $ip / ip / ip_address: the client IP policy may apply
    bool key_hits = false;   // the detectors find something in the key text itself
    bool chain = false;      // $elements_chain: hrefs inside are URLs
};

// (key, value) pairs the detectors found nothing in are remembered per thread, so repeated device and app
// values are scanned once instead of once per event.
constexpr size_t kCleanValueMaxBytes = 64;
constexpr size_t kMaxCachedKeyBytes = 128;

// Per-thread buffers reused across requests: no heap churn once warmed up.
struct Scratch {
    StringMemo<KeyInfo> key_infos{1024};
    StringMemo<bool> clean_values{4096};
    od::parser parser;
    std::string padded;
    std::vector<PathStep> path;
    std::vector<DetectorMatch> matches;
    std::vector<SpanEdit> spans;
    // The memo slots looked up last, in document order: their hints predict the next lookup.
    uint32_t last_key_slot = StringMemo<KeyInfo>::kNoSlot;
    KeyInfo index_info;  // of an array element, for the profile that owns key_infos
    uint32_t last_clean_slot = StringMemo<bool>::kNoSlot;
};

Scratch& thread_scratch() {
    thread_local Scratch scratch;
    return scratch;
}

// Shapes that are never personal data and that every event carries several of: canonical UUIDs
// ($session_id, uuid, $device_id) and ISO-8601 timestamps. Skipping them is exact, not a heuristic:
// neither shape can contain an email, a phone, a card, an IBAN, an IP or a token.
constexpr std::array<bool, 256> make_hex_table() {
    std::array<bool, 256> t{};
    for (int c = '0'; c <= '9'; ++c) t[c] = true;
    for (int c = 'a'; c <= 'f'; ++c) t[c] = true;
    for (int c = 'A'; c <= 'F'; ++c) t[c] = true;
    return t;
}
constexpr std::array<bool, 256> kHexDigit = make_hex_table();

// SWAR helpers over eight ASCII bytes (every byte < 0x80, so no addition below carries into the next byte).
constexpr uint64_t kOnes = 0x0101010101010101ull;
constexpr uint64_t kHigh = 0x8080808080808080ull;
// 0x80 in each byte that lies in [lo, hi].
constexpr uint64_t ascii_bytes_in_range(uint64_t w, uint8_t lo, uint8_t hi) {
    return (w + kOnes * (0x80 - lo)) & ~(w + kOnes * (0x7F - hi)) & kHigh;
}
// 0x80 in each byte equal to c.
constexpr uint64_t ascii_bytes_equal(uint64_t w, char c) {
    return ~((w ^ (kOnes * static_cast<uint8_t>(c))) + kOnes * 0x7F) & kHigh;
}
constexpr uint64_t ascii_hex_bytes(uint64_t w) {
    return ascii_bytes_in_range(w, '0', '9') | ascii_bytes_in_range(w | (kOnes * 0x20), 'a', 'f');
}

bool is_uuid(std::string_view s) {
    if (s.size() != 36) return false;
    if constexpr (std::endian::native == std::endian::little) {
        // Five overlapping words (offsets 0, 8, 16, 24, 28) instead of 36 byte steps: a UUID is one of
        // the most common strings of a batch (uuid, distinct_id, $session_id, $device_id, $window_id).
        uint64_t w[5];
        std::memcpy(&w[0], s.data(), 8);
        std::memcpy(&w[1], s.data() + 8, 8);
        std::memcpy(&w[2], s.data() + 16, 8);
        std::memcpy(&w[3], s.data() + 24, 8);
        std::memcpy(&w[4], s.data() + 28, 8);
        if ((w[0] | w[1] | w[2] | w[3] | w[4]) & kHigh) return false;
        // Dashes at 8 and 13 (bytes 0 and 5 of w[1]), 18 and 23 (bytes 2 and 7 of w[2]); hex everywhere else.
        constexpr uint64_t kDashes1 = 0x0000800000000080ull;
        constexpr uint64_t kDashes2 = 0x8000000000800000ull;
        const bool ok = ascii_hex_bytes(w[0]) == kHigh &&
                        ((ascii_hex_bytes(w[1]) & ~kDashes1) | (ascii_bytes_equal(w[1], '-') & kDashes1)) == kHigh &&
                        ((ascii_hex_bytes(w[2]) & ~kDashes2) | (ascii_bytes_equal(w[2], '-') & kDashes2)) == kHigh &&
                        ascii_hex_bytes(w[3]) == kHigh && ascii_hex_bytes(w[4]) == kHigh;
        return ok;
    }
    if (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-') return false;
    bool hex = true;
    for (size_t i = 0; i < 36; ++i) {
        const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        hex &= dash | kHexDigit[static_cast<unsigned char>(s[i])];
    }
    return hex;
}

// YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
bool is_iso_timestamp(std::string_view s) {
    auto digits = [&](size_t at, size_t n) {
        if (at + n > s.size()) return false;
        for (size_t i = at; i < at + n; ++i) {
            if (s[i] < '0' || s[i] > '9') return false;
        }
        return true;
    };
    if (s.size() < 20 || s.size() > 35) return false;
    if (!digits(0, 4) || s[4] != '-' || !digits(5, 2) || s[7] != '-' || !digits(8, 2) || s[10] != 'T' ||
        !digits(11, 2) || s[13] != ':' || !digits(14, 2) || s[16] != ':' || !digits(17, 2)) {
        return false;
    }
    size_t i = 19;
    if (i < s.size() && s[i] == '.') {
        ++i;
        const size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
        if (i == start || i - start > 9) return false;
    }
    if (i < s.size() && s[i] == 'Z') return i + 1 == s.size();
    return i + 6 == s.size() && (s[i] == '+' || s[i] == '-') && digits(i + 1, 2) && s[i + 3] == ':' && digits(i + 4, 2);
}

class Walker {
public:
    Walker(const Profile& profile, const CompiledRules& rules, const WalkOptions& options, WalkOutcome& out,
           std::vector<PathStep>& path)
        : profile_(profile), rules_(rules), options_(options), out_(out), path_(path) {}

    // Parses `json` with `parser` and walks it; edits are offsets into `json`.
    bool run(od::parser& parser, std::string& padded, std::string_view json, WalkShape shape, size_t depth) {
        padded.assign(json.data(), json.size());
        padded.append(simdjson::SIMDJSON_PADDING, '\0');
        base_ = padded.data();
        size_ = json.size();
        od::document doc;
        if (parser.iterate(padded.data(), json.size(), padded.size()).get(doc)) {
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

    size_t edits_made() const { return edits_made_; }

private:
    // ---- errors and audit -------------------------------------------------------------------------

    bool fail(std::string why) {
        if (out_.status == WalkOutcome::Status::Ok) {
            out_.status = WalkOutcome::Status::ParseError;
            out_.error = std::move(why);
        }
        return false;
    }

    bool stopped() const { return out_.status != WalkOutcome::Status::Ok; }

    std::string path_template() const {
        std::string t;
        for (const auto& step : path_) {
            if (step.is_index) {
                t += "[*]";
                continue;
            }
            if (!t.empty()) t.push_back('.');
            // Keys can carry data themselves (heatmap URLs): only well-formed short names are written.
            bool plain = !step.key.empty() && step.key.size() <= 64;
            for (char c : step.key) {
                plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                  c == '_' || c == '$' || c == '-');
            }
            t += plain ? std::string(step.key) : std::string("*");
        }
        return t;
    }

    void audit(std::string_view rule_id, std::string_view action) {
        const std::string path = path_template();
        for (auto& e : out_.audit) {
            if (e.rule_id == rule_id && e.action == action && e.path == path) {
                ++e.count;
                return;
            }
        }
        out_.audit.push_back(AuditEntry{std::string(rule_id), path, std::string(action), 1});
    }

    bool reporting(Mode rule_mode) const { return profile_.mode == Mode::Report || rule_mode == Mode::Report; }

    // Records a hit; returns true when the action must be carried out (enforce mode). A profile that
    // only inspects (webhooks) turns every enforced action into a rejection.
    bool enforce(std::string_view rule_id, Mode mode, ActionKind action) {
        if (reporting(mode)) {
            audit(rule_id, "report");
            out_.report_only_hits = true;
            return false;
        }
        if (profile_.inspect_only || action == ActionKind::Reject) {
            audit(rule_id, "reject");
            if (std::find(out_.reject_rule_ids.begin(), out_.reject_rule_ids.end(), rule_id) ==
                out_.reject_rule_ids.end()) {
                out_.reject_rule_ids.emplace_back(rule_id);
            }
            if (out_.status == WalkOutcome::Status::Ok) out_.status = WalkOutcome::Status::Rejected;
            return false;
        }
        audit(rule_id, action_name(action));
        return true;
    }

    void add_edit(size_t begin, size_t end, std::string text) {
        if (std::string_view(base_ + begin, end - begin) == text) return;  // a no-op keeps output byte-identical
        out_.edits.push_back(Edit{begin + offset_shift_, end + offset_shift_, std::move(text)});
        ++edits_made_;
    }

    // ---- scoping ----------------------------------------------------------------------------------

    // Written field by field: building a PathStep on the stack and copying it in stalls store forwarding.
    // Flattened: GCC otherwise keeps vector::emplace_back out of line, a call per member.
    [[gnu::flatten]] void push_step(std::string_view key, bool is_index) {
        PathStep& step = path_.emplace_back();
        step.key = key;
        step.is_index = is_index;
    }

    const PathStep* rel_path() const { return path_.data() + event_depth_; }
    size_t rel_size() const { return path_.size() - event_depth_; }

    bool event_matches(const std::vector<std::string>& globs) const {
        if (globs.empty()) return true;
        if (!in_event_) return false;
        for (const auto& g : globs) {
            if (glob_match(g, event_name_)) return true;
        }
        return false;
    }

    bool rel_is(std::initializer_list<std::string_view> keys) const {
        if (rel_size() != keys.size()) return false;
        size_t i = 0;
        for (auto k : keys) {
            const PathStep& s = rel_path()[i++];
            if (s.is_index || s.key != k) return false;
        }
        return true;
    }

    KeyInfo compute_key_info(const PathStep& step) const {
        KeyInfo info;
        const auto& paths = profile_.key_rule_paths;
        if (paths.size() > 64) {
            info.rule_mask = ~uint64_t{0};
        } else {
            for (size_t i = 0; i < paths.size(); ++i) {
                if (paths[i].pattern->last_step_matches(step)) info.rule_mask |= uint64_t{1} << i;
            }
        }
        if (!step.is_index) {
            for (const auto& k : profile_.url_keys) info.url = info.url || key_equals_lower(step.key, k);
            info.ip = step.key == "$ip" || step.key == "ip" || step.key == "ip_address";
            info.chain = step.key == "$elements_chain";
            if (profile_.has_detector_rules && !step.key.empty()) {
                auto& matches = scratch_->matches;
                matches.clear();
                profile_.detector_set->scan(step.key, DetectorContext{}, matches);
                info.key_hits = !matches.empty();
            }
        }
        return info;
    }

    // Object keys are answered from a per-thread cache instead of re-running key regexes per event.
    // Sets key_info_ (copied memory to memory: returning it by value stalled store forwarding per member).
    void load_key_info(const PathStep& step) {
        auto& cache = scratch_->key_infos;
        if (cache.owner != profile_.unique_id) {
            cache.clear();
            cache.owner = profile_.unique_id;
            scratch_->index_info = compute_key_info(PathStep{{}, true});  // the same for every array element
        }
        if (step.is_index) {
            key_info_ = scratch_->index_info;
            return;
        }
        if (step.key.size() > kMaxCachedKeyBytes) {
            key_info_ = compute_key_info(step);
            return;
        }
        const uint32_t previous = scratch_->last_key_slot;
        uint32_t slot = cache.predicted_slot(previous, step.key, {});
        if (slot == StringMemo<KeyInfo>::kNoSlot) {
            const uint64_t hash = fast_string_hash(step.key);
            slot = cache.find_slot(step.key, {}, hash);
            if (slot == StringMemo<KeyInfo>::kNoSlot) slot = cache.insert(step.key, {}, hash, compute_key_info(step));
            cache.link(previous, slot);
        }
        scratch_->last_key_slot = slot;
        key_info_ = cache.value_at(slot);
    }

    const Rule* key_rule_here() const {
        const auto& paths = profile_.key_rule_paths;
        uint64_t mask = key_info_.rule_mask;
        for (size_t i = 0; mask != 0 && i < paths.size(); ++i) {
            if (i < 64 && !(mask & (uint64_t{1} << i))) continue;
            if (i < 64) mask &= ~(uint64_t{1} << i);
            const Rule& rule = *paths[i].rule;
            if (!event_matches(rule.events)) continue;
            if (paths[i].pattern->matches(rel_path(), rel_size())) return &rule;
        }
        return nullptr;
    }

    const Rule* detector_rule_for(std::string_view detector, bool on_key) const {
        for (const auto& rule : profile_.rules) {
            if (rule.is_key_rule() || (on_key && !rule.scan_keys) || !event_matches(rule.events)) continue;
            if (std::find(rule.detectors.begin(), rule.detectors.end(), detector) == rule.detectors.end()) continue;
            if (!rule.paths.empty()) {
                bool in_scope = false;
                for (const auto& pat : rule.paths) in_scope = in_scope || pat->matches(rel_path(), rel_size());
                if (!in_scope) continue;
            }
            return &rule;
        }
        return nullptr;
    }

    const Allowlist* allowlist_for_event() const {
        for (const auto& a : profile_.allowlists) {
            for (const auto& g : a.events) {
                if (glob_match(g, event_name_)) return &a;
            }
        }
        return nullptr;
    }

    // ---- shapes -----------------------------------------------------------------------------------

    bool walk_request_root(od::value& root, size_t depth) {
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

    bool walk_event_list(od::array& arr, size_t depth) {
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

    bool walk_event(od::object& obj, size_t depth) {
        if (depth > profile_.max_depth) return fail("JSON nested too deeply");
        const bool saved_in_event = in_event_;
        const std::string_view saved_name = event_name_;
        const size_t saved_depth = event_depth_;
        const Allowlist* saved_allowlist = allowlist_;
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
        allowlist_ = profile_.allowlists.empty() ? nullptr : allowlist_for_event();
        const bool ok = walk_object(obj, depth, false);
        in_event_ = saved_in_event;
        event_name_ = saved_name;
        event_depth_ = saved_depth;
        allowlist_ = saved_allowlist;
        return ok;
    }

    // ---- generic walk -----------------------------------------------------------------------------



    size_t obj_begin(od::value& v) {
        std::string_view tok = v.raw_json_token();
        return static_cast<size_t>(tok.data() - base_);
    }

    // Offset just past the value consumed last: the iterator stands on the next token.
    size_t value_end() {
        const char* loc = nullptr;
        size_t pos = size_;
        if (!doc_->current_location().get(loc)) pos = static_cast<size_t>(loc - base_);
        while (pos > 0 && is_ws(base_[pos - 1])) --pos;
        return pos;
    }

    // Deletes the byte ranges of dropped members (merged, so adjacent drops become one edit).
    bool finish_members(MemberTracker& tracker) {
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

    // Decides what happens to the value at the current path before walking it.
    // Fills `d` in place (it starts as Walk): returning a Decision by value made the caller reload it with
    // one wide load over narrower stores, a store-forwarding stall on every member.
    [[gnu::always_inline]] void decide(od::value& v, bool top_of_properties, Decision& d) {
        if (path_.empty()) return;
        // 1. Client IP policy on $ip (and the flags/legacy ip fields).
        if (options_.ip_policy != IpPolicy::Forward && in_event_ && key_info_.ip &&
            (rel_is({"properties", "$ip"}) || rel_is({"$ip"}) || rel_is({"ip"}) || rel_is({"ip_address"}))) {
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
                    audit("client_ip_policy", options_.ip_policy == IpPolicy::Drop ? "drop" : "truncate_ip");
                }
                d.kind = Decision::Kind::Replace;
                ip_replacement_.assign("\"").append(text).push_back('"');
                d.replacement = &ip_replacement_;
                return;
            }
        }
        // 2. Key rules by path.
        if (const Rule* rule = key_info_.rule_mask != 0 ? key_rule_here() : nullptr) {
            if (enforce(rule->id, rule->mode, rule->action.kind)) {
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
        // 3. The event's property allowlist.
        if (top_of_properties && allowlist_ != nullptr) {
            const std::string_view key = path_.back().key;
            const AllowedProperty* listed = nullptr;
            for (const auto& p : allowlist_->properties) {
                if (glob_match(p.name_glob, key)) {
                    listed = &p;
                    break;
                }
            }
            if (listed != nullptr && !listed->type.scanned()) {
                if (!type_ok(v, listed->type)) listed = nullptr;  // a mistyped value is not what was allowed
                else d.kind = Decision::Kind::Inert;
            }
            if (listed == nullptr) {
                const ActionKind action = allowlist_->reject_unlisted ? ActionKind::Reject : ActionKind::Drop;
                if (enforce(allowlist_->id, allowlist_->mode, action)) d.kind = Decision::Kind::Drop;
                return;
            }
        }
        return;
    }

    bool type_ok(od::value& v, const FieldType& type) {
        od::json_type t;
        if (v.type().get(t)) return false;
        std::string_view tok = v.raw_json_token();
        while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
        switch (type.kind) {
            case FieldType::Kind::String:
            case FieldType::Kind::Any: return true;
            case FieldType::Kind::Bool: return t == od::json_type::boolean;
            case FieldType::Kind::Number: return t == od::json_type::number;
            case FieldType::Kind::Integer:
                return t == od::json_type::number && tok.find_first_of(".eE") == std::string_view::npos;
            default: break;
        }
        if (t != od::json_type::string || tok.size() < 2) return false;
        const std::string_view s = tok.substr(1, tok.size() - 2);  // escapes make it fail, as they should
        switch (type.kind) {
            case FieldType::Kind::Enum:
                return std::find(type.enum_values.begin(), type.enum_values.end(), s) != type.enum_values.end();
            case FieldType::Kind::Uuid: {
                if (s.size() != 36) return false;
                for (size_t i = 0; i < 36; ++i) {
                    const char c = s[i];
                    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                    if (dash ? c != '-' : !std::isxdigit(static_cast<unsigned char>(c))) return false;
                }
                return true;
            }
            case FieldType::Kind::Timestamp: {
                // ISO-8601 date-time: digits and the separators of one, nothing else.
                if (s.size() < 10 || s.size() > 40) return false;
                for (char c : s) {
                    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '-' || c == ':' || c == 'T' ||
                          c == 'Z' || c == '.' || c == '+' || c == ' ')) {
                        return false;
                    }
                }
                return s[4] == '-';
            }
            default: return false;
        }
    }

    // The replacement JSON text a key rule's action makes of the whole value.
    std::string computed_replacement(const Rule& rule, std::string_view raw, std::string_view unescaped,
                                     bool is_string) {
        std::string out = "\"";
        switch (rule.action.kind) {
            case ActionKind::Hash: {
                const std::string_view basis = is_string ? unescaped : raw;
                if (is_string && looks_like_hash_token(unescaped, rules_.hash_key->id())) return std::string(raw);
                out += rules_.hash_key->token(basis);
                break;
            }
            case ActionKind::Mask: append_json_escaped(out, mask_text(is_string ? unescaped : raw, rule.action.keep_last)); break;
            case ActionKind::TruncateIp: {
                std::string t = is_string ? truncate_ip(unescaped, profile_.ip) : std::string();
                out += t.empty() ? redact_placeholder(rule.id) : t;
                break;
            }
            default: out += redact_placeholder(rule.id); break;
        }
        out.push_back('"');
        return out;
    }

    // The text of a JSON string starting right after its opening quote, when it has no escapes; a null
    // view otherwise (the caller unescapes).
    std::string_view unescaped_in_place(const char* content) const {
        // Control characters are left to simdjson's unescaper, which rejects them.
        const char* limit = base_ + size_;
        const char* p = content;
#if defined(__SSE2__)
        static_assert(simdjson::SIMDJSON_PADDING >= 16, "the scan reads up to 15 bytes past the text");
        // Sixteen bytes at a time (SSE2 is part of x86-64). Reading past `limit` is safe and exact: run()
        // put SIMDJSON_PADDING zero bytes after the text, and a zero byte is flagged (< 0x20), so the scan
        // stops at `limit` at the latest and answers "not in place" there, as the byte loop did.
        const __m128i quote = _mm_set1_epi8('"');
        const __m128i backslash = _mm_set1_epi8('\\');
        const __m128i below_space = _mm_set1_epi8(0x1F);
        for (;; p += 16) {
            const __m128i w = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
            const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(w, below_space), w);
            const __m128i flagged =
                _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, quote), _mm_cmpeq_epi8(w, backslash)), control);
            const auto mask = static_cast<uint32_t>(_mm_movemask_epi8(flagged));
            if (mask != 0) {
                p += std::countr_zero(mask);
                if (p < limit && *p == '"') return std::string_view(content, static_cast<size_t>(p - content));
                return {};
            }
        }
#endif
        if constexpr (std::endian::native == std::endian::little) {
            // Eight bytes at a time: the lowest byte flagged as '"', '\\' or < 0x20 is the first such byte
            // (the borrow of these tests only runs upwards, so it can only add flags above a real one).
            constexpr uint64_t kOnes = 0x0101010101010101ull;
            constexpr uint64_t kHigh = 0x8080808080808080ull;
            for (; p + 8 <= limit; p += 8) {
                uint64_t w;
                std::memcpy(&w, p, 8);
                const uint64_t quote = w ^ (kOnes * '"');
                const uint64_t backslash = w ^ (kOnes * '\\');
                const uint64_t flagged = (((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) |
                                          ((w - kOnes * 0x20) & ~w)) &
                                         kHigh;
                if (flagged != 0) {
                    p += std::countr_zero(flagged) / 8;
                    if (*p == '"') return std::string_view(content, static_cast<size_t>(p - content));
                    return {};
                }
            }
        }
        for (; p < limit; ++p) {
            const unsigned char c = static_cast<unsigned char>(*p);
            if (c == '"') return std::string_view(content, static_cast<size_t>(p - content));
            if (c == '\\' || c < 0x20) return {};
        }
        return {};
    }

    bool walk_root_scalar(od::document& doc) {
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
            default: return fail("invalid JSON");
        }
    }

    // Walks `v` (applying `d`), validating everything; begin/end get the value's byte range.
    bool walk_value(od::value& v, const Decision& d, size_t depth, size_t& begin, size_t& end) {
        if (depth > profile_.max_depth) return fail("JSON nested too deeply");
        od::json_type type;
        if (v.type().get(type)) return fail("invalid JSON");
        const bool inert = d.kind != Decision::Kind::Walk || stopped();
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
                end = begin + tok.size();
                while (end > begin && is_ws(base_[end - 1])) --end;
                // Stage 1 already validated UTF-8; without escapes or control characters the raw bytes
                // are the value and the string need not be copied out.
                unescaped = unescaped_in_place(base_ + begin + 1);
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
                    if (!maybe_replay_field(unescaped, begin, end, depth)) return false;
                    if (!replay_field_handled_) process_string(unescaped, begin, end, key);
                    replay_field_handled_ = false;
                }
                break;
            }
            case od::json_type::number: {
                while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
                if (!is_json_number(tok)) return fail("invalid JSON number");
                end = begin + tok.size();  // left unconsumed: the parent's iteration steps over it
                if (!inert && json_integer_may_be_identifier(tok)) process_number(tok, begin, end);
                break;
            }
            case od::json_type::boolean: {
                bool b;
                if (v.get_bool().get(b)) return fail("invalid JSON");
                end = begin + (b ? 4 : 5);
                break;
            }
            case od::json_type::null: {
                bool n = false;
                if (v.is_null().get(n) || !n) return fail("invalid JSON");
                end = begin + 4;
                break;
            }
        }
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

    bool walk_object(od::object& obj, size_t depth, bool envelope) {
        return walk_object_impl(obj, depth, false, envelope);
    }
    bool walk_object_inner(od::object& obj, size_t depth, bool inert) {
        return walk_object_impl(obj, depth, inert, false);
    }

    bool walk_object_impl(od::object& obj, size_t depth, bool inert, bool envelope) {
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
        for (auto field_result : obj) {
            if (field_result.error()) return fail("invalid JSON");
            // By reference: moving the field out of its result costs two store-forwarding stalls per member.
            od::field& field = field_result.value_unsafe();
            const char* key_raw = field.key().raw();
            std::string_view key = unescaped_in_place(key_raw);
            if (key.data() == nullptr && field.unescaped_key().get(key)) return fail("invalid JSON key");
            const size_t key_begin = static_cast<size_t>(key_raw - 1 - base_);
            push_step(key, false);
            od::value v = field.value();
            Decision d;
            if (!inert) load_key_info(path_.back());
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
            } else {
                decide(v, at_properties, d);
                if ((d.kind == Decision::Kind::Walk || d.kind == Decision::Kind::Inert) && key_info_.key_hits) {
                    if (!process_key(key, key_raw, d)) return false;
                }
            }
            size_t vbegin = 0, vend = 0;
            value_drop_ = false;
            const bool ok = walk_value(v, d, depth + 1, vbegin, vend);
            path_.pop_back();
            if (!ok) return false;
            const bool drop = (d.kind == Decision::Kind::Drop || value_drop_) && !stopped();
            value_drop_ = false;
            tracker.member(key_begin, vend, drop, ranges);
        }
        compressed_item_ = saved_cv;
        drop_ranges_.swap(ranges);
        return finish_members(tracker);
    }

    bool walk_array(od::array& arr, size_t depth, bool inert) {
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
                load_key_info(path_.back());
                decide(v, false, d);
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

    // ---- strings ----------------------------------------------------------------------------------

    // Detectors on an object key (heatmap URLs are keys). May turn `d` into a Drop.
    bool process_key(std::string_view key, const char* key_raw, Decision& d) {
        if (!profile_.has_detector_rules) return true;
        auto& matches = scratch_->matches;
        matches.clear();
        profile_.detector_set->scan(key, DetectorContext{}, matches);
        if (matches.empty()) return true;
        // The raw key runs to the next unescaped quote.
        const char* p = key_raw;
        while (*p != '"') p += (*p == '\\') ? 2 : 1;
        const size_t raw_begin = static_cast<size_t>(key_raw - 1 - base_);
        const size_t raw_end = static_cast<size_t>(p + 1 - base_);
        bool drop = false;
        rewrite_string(key, raw_begin, raw_end, matches, /*on_key=*/true, drop);
        if (drop) d.kind = Decision::Kind::Drop;
        return true;
    }

    void process_string(std::string_view s, size_t raw_begin, size_t raw_end, std::string_view key) {
        auto& matches = scratch_->matches;
        matches.clear();
        const bool url = !key.empty() && (key_info_.url || key_info_.chain);
        if (profile_.has_detector_rules && !s.empty() && !is_uuid(s) && !is_iso_timestamp(s)) {
            StringMemo<bool>* cache = nullptr;
            uint64_t hash = 0;
            if (!url && s.size() <= kCleanValueMaxBytes && key.size() <= kMaxCachedKeyBytes) {
                cache = &scratch_->clean_values;
                if (cache->owner != profile_.unique_id) {
                    cache->clear();
                    cache->owner = profile_.unique_id;
                }
                const uint32_t previous = scratch_->last_clean_slot;
                uint32_t slot = cache->predicted_slot(previous, key, s);
                if (slot == StringMemo<bool>::kNoSlot) {
                    hash = fast_string_hash(key, s);
                    slot = cache->find_slot(key, s, hash);
                    if (slot != StringMemo<bool>::kNoSlot) cache->link(previous, slot);
                }
                if (slot != StringMemo<bool>::kNoSlot) {
                    scratch_->last_clean_slot = slot;
                    return;
                }
            }
            DetectorContext ctx;
            ctx.key = key;
            profile_.detector_set->scan(s, ctx, matches);
            if (matches.empty() && cache != nullptr) {
                const uint32_t slot = cache->insert(key, s, hash, true);
                cache->link(scratch_->last_clean_slot, slot);
                scratch_->last_clean_slot = slot;
                return;
            }
        }
        if (matches.empty() && !url) return;
        bool drop = false;
        rewrite_string(s, raw_begin, raw_end, matches, /*on_key=*/false, drop, url);
        // A drop hit removes the whole member (or array element) that holds this string.
        if (drop) value_drop_ = true;
    }

    // A JSON integer shaped like an identifier (json_integer_may_be_identifier) is scanned as the digits it
    // is written with, through the same rules as a string: a hit makes the value a JSON string (placeholder,
    // mask, h1: token of the digits, so a numeric distinct_id hashes like the same digits sent as a string),
    // a drop removes the member, report mode only counts.
    void process_number(std::string_view token, size_t raw_begin, size_t raw_end) {
        if (!profile_.has_detector_rules) return;
        auto& matches = scratch_->matches;
        matches.clear();
        DetectorContext ctx;
        ctx.key = path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
        profile_.detector_set->scan(token, ctx, matches);
        if (matches.empty()) return;
        bool drop = false;
        rewrite_string(token, raw_begin, raw_end, matches, /*on_key=*/false, drop);
        if (drop) value_drop_ = true;
    }

    // Sensitive query/fragment parameters of a URL-valued string.
    // $elements_chain: every attr__href="..." / href="..." value is a URL.
    void scrub_chain(std::string_view s, std::vector<SpanEdit>& spans) {
        for (size_t at = s.find("href=\""); at != std::string_view::npos; at = s.find("href=\"", at + 1)) {
            const size_t begin = at + 6;
            const size_t end = s.find('"', begin);
            if (end == std::string_view::npos) break;
            scrub_url(s.substr(begin, end - begin), spans, begin);
        }
    }

    void scrub_url(std::string_view s, std::vector<SpanEdit>& spans, size_t offset = 0) {
        const size_t q = s.find_first_of("?#");
        if (q == std::string_view::npos) return;
        size_t i = q + 1;
        while (i <= s.size()) {
            size_t end = s.find_first_of("&#;", i);
            if (end == std::string_view::npos) end = s.size();
            const std::string_view pair = s.substr(i, end - i);
            const size_t eq = pair.find('=');
            if (eq != std::string_view::npos && eq + 1 < pair.size() && pair.substr(eq + 1) != "redacted") {
                std::string name = percent_decode(pair.substr(0, eq));
                for (char& c : name) c = lower_ascii(c);
                if (std::find(profile_.sensitive_query_keys.begin(), profile_.sensitive_query_keys.end(), name) !=
                    profile_.sensitive_query_keys.end()) {
                    if (enforce("url_sensitive_query_key", Mode::Enforce, ActionKind::Redact)) {
                        spans.push_back(SpanEdit{offset + i + eq + 1, offset + end, "redacted"});
                    }
                }
            }
            if (end >= s.size()) break;
            i = end + 1;
        }
    }

    void rewrite_string(std::string_view s, size_t raw_begin, size_t raw_end,
                        const std::vector<DetectorMatch>& matches, bool on_key, bool& drop, bool url = false) {
        auto& spans = scratch_->spans;
        spans.clear();
        if (url) {
            if (key_info_.chain) scrub_chain(s, spans);
            else scrub_url(s, spans);
        }
        bool hash_whole = false;
        const Rule* hash_rule = nullptr;
        for (const auto& m : matches) {
            const Rule* rule = detector_rule_for(m.detector, on_key);
            if (rule == nullptr) continue;
            bool overlaps = false;
            for (const auto& sp : spans) overlaps = overlaps || (m.begin < sp.end && sp.begin < m.end);
            if (overlaps || is_our_output(s, m.begin, m.end)) continue;
            if (rule->action.kind == ActionKind::Hash && looks_like_hash_token(s, rules_.hash_key->id())) continue;
            if (rule->action.kind == ActionKind::TruncateIp) {
                // Already truncated: not a hit (keeps filtering idempotent).
                const std::string t = truncate_ip(s.substr(m.begin, m.end - m.begin), profile_.ip);
                if (!t.empty() && t == s.substr(m.begin, m.end - m.begin)) continue;
            }
            if (!enforce(rule->id, rule->mode, rule->action.kind)) continue;
            const std::string_view hit = s.substr(m.begin, m.end - m.begin);
            switch (rule->action.kind) {
                case ActionKind::Drop: drop = true; break;
                case ActionKind::Hash:
                    hash_whole = true;
                    hash_rule = rule;
                    break;
                case ActionKind::Mask: spans.push_back(SpanEdit{m.begin, m.end, mask_text(hit, rule->action.keep_last)}); break;
                case ActionKind::TruncateIp: {
                    std::string t = truncate_ip(hit, profile_.ip);
                    spans.push_back(SpanEdit{m.begin, m.end, t.empty() ? redact_placeholder(m.detector) : t});
                    break;
                }
                default: spans.push_back(SpanEdit{m.begin, m.end, redact_placeholder(m.detector)}); break;
            }
        }
        if (stopped()) return;
        if (drop && !on_key) return;
        if (drop) return;  // the caller removes the whole member
        if (hash_whole) {
            std::string out = "\"";
            out += rules_.hash_key->token(s);
            out.push_back('"');
            (void)hash_rule;
            add_edit(raw_begin, raw_end, std::move(out));
            return;
        }
        if (spans.empty()) return;
        std::sort(spans.begin(), spans.end(), [](const SpanEdit& a, const SpanEdit& b) { return a.begin < b.begin; });
        // A number token has no quotes: it is always rewritten whole, as a string.
        const bool quoted = base_[raw_begin] == '"';
        if (quoted && raw_end - raw_begin - 2 == s.size()) {
            // No escapes in the original: splice each span in place, the rest of the string stays byte-identical.
            for (const auto& sp : spans) {
                std::string escaped;
                append_json_escaped(escaped, sp.text);
                add_edit(raw_begin + 1 + sp.begin, raw_begin + 1 + sp.end, std::move(escaped));
            }
            return;
        }
        std::string rebuilt = "\"";
        size_t pos = 0;
        for (const auto& sp : spans) {
            append_json_escaped(rebuilt, s.substr(pos, sp.begin - pos));
            append_json_escaped(rebuilt, sp.text);
            pos = sp.end;
        }
        append_json_escaped(rebuilt, s.substr(pos));
        rebuilt.push_back('"');
        add_edit(raw_begin, raw_end, std::move(rebuilt));
    }

    // True when the span lies within text an action wrote earlier ("[redacted:...]", a masked run, a hash
    // token): matching it again would make filtering the output change it again.
    bool is_our_output(std::string_view s, size_t begin, size_t end) const {
        const std::string_view hit = s.substr(begin, end - begin);
        if (hit.find("****") != std::string_view::npos) return true;
        if (rules_.hash_key && hit.find(rules_.hash_key->id() + ":") != std::string_view::npos) {
            for (size_t at = s.find(rules_.hash_key->id() + ":"); at != std::string_view::npos;
                 at = s.find(rules_.hash_key->id() + ":", at + 1)) {
                if (looks_like_hash_token(s.substr(at, rules_.hash_key->id().size() + 44), rules_.hash_key->id()) &&
                    begin <= at + rules_.hash_key->id().size() + 44 && at <= end) {
                    return true;
                }
            }
        }
        for (size_t at = s.find("[redacted:"); at != std::string_view::npos; at = s.find("[redacted:", at + 1)) {
            const size_t close = s.find(']', at);
            if (close == std::string_view::npos) break;
            // The hit overlaps a placeholder and adds nothing outside it but separators.
            if (begin <= close && at < end) {
                bool only_placeholder = true;
                for (size_t i = begin; i < end; ++i) {
                    if (i >= at && i <= close) continue;
                    const char c = s[i];
                    if (std::isalnum(static_cast<unsigned char>(c)) || static_cast<unsigned char>(c) >= 0x80) {
                        only_placeholder = false;
                        break;
                    }
                }
                if (only_placeholder) return true;
            }
        }
        return s.substr(begin, end - begin) == "redacted";
    }

    // ---- replay -----------------------------------------------------------------------------------

    // properties.$snapshot_data[*] or properties.$snapshot_data (a single object).
    bool is_replay_item_path() const {
        const size_t n = rel_size();
        const PathStep* p = rel_path();
        if (n == 3) return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data" && p[2].is_index;
        if (n == 2) return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data";
        return false;
    }

    // posthog-js cv "2024-10": `data` (FullSnapshot) or data.texts/attributes/adds/removes hold gzip bytes
    // as a latin-1 string. Inflate, walk the inner JSON, and re-encode it when something changed.
    bool maybe_replay_field(std::string_view s, size_t raw_begin, size_t raw_end, size_t depth) {
        replay_field_handled_ = false;
        if (!compressed_item_ || path_.empty() || path_.back().is_index) return true;
        const std::string_view key = path_.back().key;
        const size_t n = rel_size();
        const PathStep* p = rel_path();
        const bool direct_data = key == "data" && (is_replay_item_path_at(n - 1));
        const bool mutation_field = (key == "texts" || key == "attributes" || key == "adds" || key == "removes") &&
                                    n >= 2 && !p[n - 2].is_index && p[n - 2].key == "data" &&
                                    is_replay_item_path_at(n - 2);
        if (!direct_data && !mutation_field) return true;
        std::string bytes;
        if (!utf8_to_latin1(s, bytes)) return fail("compressed replay field is not a latin-1 string");
        if (!has_gzip_magic(bytes)) return fail("compressed replay field is not gzip");
        auto inflated = gzip_inflate(bytes, kMaxReplayFieldBytes);
        if (auto* err = std::get_if<DecodeError>(&inflated)) return fail("compressed replay field: " + err->message);
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
                if (e.rule_id == a.rule_id && e.path == a.path && e.action == a.action) {
                    e.count += a.count;
                    merged = true;
                }
            }
            if (!merged) out_.audit.push_back(a);
        }
        out_.report_only_hits = out_.report_only_hits || inner_out.report_only_hits;
        if (inner_out.status == WalkOutcome::Status::Rejected) {
            for (auto& id : inner_out.reject_rule_ids) {
                if (std::find(out_.reject_rule_ids.begin(), out_.reject_rule_ids.end(), id) == out_.reject_rule_ids.end()) {
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

    bool is_replay_item_path_at(size_t len) const {
        const PathStep* p = rel_path();
        if (len == 3) return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data" && p[2].is_index;
        if (len == 2) return !p[0].is_index && p[0].key == "properties" && !p[1].is_index && p[1].key == "$snapshot_data";
        return false;
    }

    bool run_nested(od::parser& parser, std::string& padded, std::string_view json, size_t depth) {
        return run(parser, padded, json, WalkShape::AnyValue, depth);
    }

public:
    Scratch* scratch_ = nullptr;

private:
    const Profile& profile_;
    const CompiledRules& rules_;
    const WalkOptions& options_;
    WalkOutcome& out_;
    std::vector<PathStep>& path_;
    od::document* doc_ = nullptr;
    const char* base_ = nullptr;
    size_t size_ = 0;
    size_t offset_shift_ = 0;
    size_t edits_made_ = 0;
    bool in_event_ = false;
    std::string_view event_name_;
    size_t event_depth_ = 0;
    const Allowlist* allowlist_ = nullptr;
    bool compressed_item_ = false;
    bool replay_field_handled_ = false;
    std::string ip_replacement_;  // the text a Decision::replacement points to
    KeyInfo key_info_;  // of the member or element being decided and walked
    std::vector<std::pair<size_t, size_t>> drop_ranges_;  // hand-over from a container walk to finish_members
    bool value_drop_ = false;  // a detector with action `drop` hit the string just walked
};

}  // namespace

WalkOutcome walk_and_filter(const Profile& profile, const CompiledRules& rules, std::string_view json,
                            const WalkOptions& options) {
    WalkOutcome out;
    Scratch& scratch = thread_scratch();
    scratch.path.clear();
    Walker walker(profile, rules, options, out, scratch.path);
    walker.scratch_ = &scratch;
    bool ok;
    if (json.size() > kScratchParserLimit) {
        od::parser parser;
        std::string padded;
        ok = walker.run(parser, padded, json, WalkShape::Request, 0);
    } else {
        ok = walker.run(scratch.parser, scratch.padded, json, WalkShape::Request, 0);
    }
    if (!ok && out.status == WalkOutcome::Status::Ok) {
        out.status = WalkOutcome::Status::ParseError;
        out.error = "invalid JSON";
    }
    std::sort(out.edits.begin(), out.edits.end(), [](const Edit& a, const Edit& b) { return a.begin < b.begin; });
    // Disjointness: an edit inside an earlier one is dropped (the outer edit already replaced it).
    std::vector<Edit> disjoint;
    disjoint.reserve(out.edits.size());
    for (auto& e : out.edits) {
        if (!disjoint.empty() && e.begin < disjoint.back().end) continue;
        disjoint.push_back(std::move(e));
    }
    out.edits = std::move(disjoint);
    return out;
}

std::string apply_edits(std::string_view text, const std::vector<Edit>& edits) {
    size_t total = text.size();
    for (const auto& e : edits) total = total - (e.end - e.begin) + e.text.size();
    std::string out;
    out.reserve(total);
    size_t pos = 0;
    for (const auto& e : edits) {
        out.append(text.substr(pos, e.begin - pos));
        out.append(e.text);
        pos = e.end;
    }
    out.append(text.substr(pos));
    return out;
}

}  // namespace edgeguard::privacy
