// The walker's state and its steps, shared by the files that implement them:
//   walk_structure.cc  the one pass over the JSON (shapes, events, objects, arrays, values, decisions)
//   walk_rules.cc      what the profile says about a key or a value; audit, enforcement, edits
//   walk_strings.cc    detectors on keys and string values, URL scrubbing, string rewriting
//   walk_replay.cc     posthog-js cv "2024-10" replay fields (gzip-in-latin-1 strings walked as JSON)
//   walk_probe.cc      one value at a time without a JSON text (quiet_probe.h)
// filters/event_walker.cc is the entry point (walk_and_filter) and owns the per-thread Scratch.
#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/decode/padded_text.h"
#include "filters/event_walker.h"
#include "filters/rules_model.h"
#include "filters/string_memo.h"
#include "filters/walker/member_tracker.h"
#include "filters/walker/object_trace.h"
#include "filters/walker/raw_key_index.h"

namespace edgeguard::privacy::walk {

namespace od = simdjson::ondemand;

// Bodies above this size get a parser of their own so a worker does not keep a huge buffer forever.
constexpr size_t kScratchParserLimit = 8 * 1024 * 1024;
// A decompressed replay field may not grow beyond this many bytes.
constexpr uint64_t kMaxReplayFieldBytes = 64 * 1024 * 1024;

// A span of a string value to rewrite, in unescaped-text offsets.
struct SpanEdit {
    size_t begin;
    size_t end;
    std::string text;
};

// What the rules decided for one object member or array element before its value is walked.
struct Decision {
    enum class Kind { Walk, Inert, Drop, Replace } kind = Kind::Walk;
    const Rule* rule = nullptr;  // key rule acting on the whole value (Replace)
    // Replace with a fixed JSON text (the walker's ip_replacement_): a pointer, not a string, keeps the
    // per-member Decision trivially copyable.
    const std::string* replacement = nullptr;
    bool replace_computed = false;  // Replace with the rule's action on the value (hash/mask/redact)
};

// What the profile says about one object key, computed once per distinct key (keys repeat across events).
struct KeyInfo {
    uint64_t rule_mask = 0;  // key-rule paths whose last segment accepts the key
    // The part of rule_mask accepted only through a normalised form of the key (key_forms.h): such a match
    // leaves true/false/null alone (`has_phone: true`, `is_mobile: false` carry no personal data).
    uint64_t form_mask = 0;
    bool url = false;        // a URL-valued key: sensitive query parameters are redacted
    bool ip = false;         // $ip / ip / ip_address: the client IP policy may apply
    bool key_hits = false;   // the detectors find something in the key text itself
    bool chain = false;      // $elements_chain: hrefs inside are URLs
    // None of ip, rule_mask, key_hits: only an allowlist can make the member anything but Walk.
    bool plain = false;
};

// Levels of values encoded inside values (JSON in a string, base64 in JSON, ...) that are opened.
constexpr size_t kMaxEmbedLevels = 3;

// A string that is a JSON object or array once surrounding whitespace is set aside.
bool looks_like_json_text(std::string_view s);
// A string with a run of base64 alphabet bytes long enough for the walk to decode it (walk_encoded.cc).
bool may_hold_base64_run(std::string_view s);

// (key, value) pairs the detectors found nothing in are remembered per thread, so repeated device and app
// values are scanned once instead of once per event.
constexpr size_t kCleanValueMaxBytes = 64;
constexpr size_t kMaxCachedKeyBytes = 128;

// The path from the root to the value being walked: a vector used as a buffer, with its own depth, so a
// push is a bounds check and two stores (vector::emplace_back either kept its growth path inline or
// became a call per member). Shared by a replay field's nested walk, which continues on top of it.
class PathStack {
  public:
    void clear() { size_ = 0; }
    bool empty() const { return size_ == 0; }
    size_t size() const { return size_; }
    const PathStep* data() const { return data_; }
    const PathStep* begin() const { return data_; }
    const PathStep* end() const { return data_ + size_; }
    const PathStep& back() const { return data_[size_ - 1]; }
    [[gnu::always_inline]] void push(std::string_view key, bool is_index) {
        if (size_ == capacity_) [[unlikely]]
            grow();
        PathStep& step = data_[size_++];
        step.key = key;
        step.is_index = is_index;
    }
    void pop_back() { --size_; }

  private:
    [[gnu::noinline]] void grow() {
        steps_.resize(steps_.size() * 2 + 64);
        data_ = steps_.data();
        capacity_ = steps_.size();
    }
    std::vector<PathStep> steps_;
    PathStep* data_ = nullptr;
    size_t size_ = 0;
    size_t capacity_ = 0;
};

struct KeyValueStats {
    uint16_t inserts = 0;  // values inserted into the clean-value memo (found in it by neither lookup)
    uint16_t hits = 0;     // values found by the memo's hash lookup
    // The clean-value memo slot of the value this key had last: members in another order than the event
    // before (so the slot that followed the previous lookup is the wrong guess) still find a repeated value
    // without hashing it.
    uint32_t last_clean_slot = StringMemo<bool>::kNoSlot;
    // The clean-value memo's generation when known_clean_string last recorded last_clean_slot: while the
    // memo is still in it, every slot recorded since holds this key (process_string records only slots
    // found or inserted for it), so only the value is compared. 0: none (generations start at 1).
    uint32_t last_clean_generation = 0;
};

// Per-thread buffers reused across requests: no heap churn once warmed up.
struct Scratch {
    StringMemo<KeyInfo> key_infos{1024};  // key_value_stats has one entry per slot
    StringMemo<bool> clean_values{4096};
    od::parser parser;
    std::string padded;
    PathStack path;
    std::vector<DetectorMatch> matches;
    std::vector<SpanEdit> spans;
    std::vector<std::string> key_forms;  // compute_key_info's scratch
    // The memo slots looked up last, in document order: their hints predict the next lookup.
    uint32_t last_key_slot = StringMemo<KeyInfo>::kNoSlot;
    // Key slots by their raw keys' first bytes, for members that come in an order of their own.
    RawKeyIndex key_index;
    KeyInfo index_info;  // of an array element, for the profile that owns key_infos
    uint32_t last_clean_slot = StringMemo<bool>::kNoSlot;
    uint64_t clean_by_key = 0;  // values known clean by their key's last value (tests check that it ran)
    // Off (tests compare the two; the output must not differ): scalar members whose bytes alone prove them
    // clean (UUIDs, timestamps, short numbers, literals) take walk_value's general path.
    bool shape_shortcuts = true;
    uint64_t clean_by_shape = 0;  // members the shape shortcuts answered (tests check that they ran)
    // Off (tests compare the two): a short string the clean-value memo does not know is scanned even when no
    // detector's gate opens on it (process_string).
    bool quiet_shortcuts = true;
    uint64_t clean_by_quiet = 0;  // strings the gates alone answered (tests check that they ran)
    // Per key slot: how its string values fared in the clean-value memo. Values of a key that are new
    // every time (order references, build numbers) cost a hash, a probe and an insertion each, more than
    // the detector scan they save, so such keys stop using the memo (see process_string).
    std::vector<KeyValueStats> key_value_stats = std::vector<KeyValueStats>(1024);
    // The previous object of each kind, so repeated members are passed over (object_trace.h).
    ObjectTraces traces;
    // Values encoded inside strings (walk_encoded.cc): one parser and buffer per nesting level, and the
    // decoded text of base64 runs.
    od::parser embedded_parsers[kMaxEmbedLevels];
    std::string embedded_padded[kMaxEmbedLevels];
    std::string decoded_runs[kMaxEmbedLevels];
    // Detector hits inside the property being observed for `learn` (walk_learn.cc), nested walks included.
    learn::DetectorTally tally;
    bool tallying = false;
    // The client-hash key derived from the rules' hash key, for the profile learn_seed_owner names.
    uint64_t learn_seed_owner = 0;
    std::string learn_seed;
    // The request's decoded text (a gzip body inflated straight into it), walked where it lies.
    PaddedText decoded;
};

Scratch& thread_scratch();

class Walker {
  public:
    Walker(const Profile& profile, const CompiledRules& rules, const WalkOptions& options, WalkOutcome& out,
           PathStack& path)
        : profile_(profile),
          rules_(rules),
          options_(options),
          out_(out),
          path_(path),
          clean_memo_usable_(profile.has_detector_rules) {}

    // Parses `json` with `parser` and walks it; edits are offsets into `json`.
    bool run(od::parser& parser, std::string& padded, std::string_view json, WalkShape shape, size_t depth);
    // The same without the copy: `json` is followed by simdjson::SIMDJSON_PADDING zero bytes.
    bool run_in_place(od::parser& parser, std::string_view json, WalkShape shape, size_t depth);

    size_t edits_made() const { return edits_made_; }

    // Empties the per-thread memos of scratch_ when they hold another profile's answers. Call once per
    // request before run(), after setting scratch_.
    void prepare_memos();

    Scratch* scratch_ = nullptr;

    // ---- one value at a time, without a JSON text (walk_probe.cc; used through QuietProbe) ------------
    bool probe_begin_event(std::string_view name);
    bool probe_key(std::string_view key);
    bool probe_index();
    void probe_pop() { path_.pop_back(); }
    bool probe_container() const;
    bool probe_string(std::string_view s);
    bool probe_integer(std::string_view digits);

  private:
    bool probe_quiet() const;
    bool probe_decision() const;
    size_t probe_depth() const { return 1 + 2 * rel_size(); }
    std::string probe_text_;  // the value being probed as the JSON token the document would hold

    // ---- errors, audit, edits (walk_rules.cc) ------------------------------------------------------
    bool fail(std::string why);
    std::string path_template() const;
    bool key_shows_data(std::string_view key) const;
    void audit(std::string_view rule_id, std::string_view action, std::string_view matched_by);
    bool stopped() const { return out_.status != WalkOutcome::Status::Ok; }
    bool reporting(Mode rule_mode) const {
        return profile_.mode == Mode::Report || rule_mode == Mode::Report;
    }
    bool enforce(std::string_view rule_id, Mode mode, ActionKind action, std::string_view matched_by);
    void add_edit(size_t begin, size_t end, std::string text);

    // ---- scoping and rules (walk_rules.cc) ---------------------------------------------------------
    const PathStep* rel_path() const { return path_.data() + event_depth_; }
    size_t rel_size() const { return path_.size() - event_depth_; }
    bool rel_is(std::initializer_list<std::string_view> keys) const {
        if (rel_size() != keys.size()) return false;
        size_t i = 0;
        for (auto k : keys) {
            const PathStep& s = rel_path()[i++];
            if (s.is_index || s.key != k) return false;
        }
        return true;
    }
    bool event_matches(const std::vector<std::string>& globs) const;
    KeyInfo compute_key_info(const PathStep& step) const;
    // The audit's matched_by for a key rule's pattern ("key:<pattern>") or a detector ("detector:<id>"), built
    // in a reused buffer: only hits pay for it.
    std::string_view key_match_name(const PathPattern* pattern);
    std::string_view detector_match_name(std::string_view detector);
    std::string match_name_;
    // `literal_value`: the value is true, false or null; `pattern` (when given) receives the matching pattern.
    const Rule* key_rule_here(bool literal_value, const PathPattern** pattern = nullptr) const;
    const Rule* detector_rule_for(std::string_view detector, bool on_key) const;
    const Allowlist* allowlist_for_event() const;
    bool type_ok(od::value& v, const FieldType& type);
    std::string computed_replacement(const Rule& rule, std::string_view raw, std::string_view unescaped,
                                     bool is_string);

    // ---- the structural walk (walk_structure.cc) ---------------------------------------------------
    // Per-member steps, defined inline in walk_structure.cc (their only user).
    void push_step(std::string_view key, bool is_index) { path_.push(key, is_index); }
    inline void load_key_info(const PathStep& step, bool in_place);
    void load_key_info_out_of_line(const PathStep& step);  // for walk_probe.cc
    [[gnu::always_inline]] inline bool predicted_key(const char* key_raw, uint32_t position, std::string_view& key);
    [[gnu::always_inline]] inline bool known_clean_string(size_t begin, size_t& end);
    enum class Shortcut { None, Clean, Failed };
    [[gnu::noinline]] Shortcut clean_scalar_member(od::value& v, size_t& end);
    [[gnu::always_inline]] inline void decide(od::value& v, const Allowlist* allowlist, Decision& d);
    void decide_by_key(od::value& v, Decision& d);
    bool client_ip_member() const;
    void decide_by_allowlist(od::value& v, const Allowlist& allowlist, Decision& d);
    // The object being entered holds person or group properties (rules_model.h, PersonProperties).
    bool at_person_properties() const;
    bool walk_request_root(od::value& root, size_t depth);
    bool walk_event_list(od::array& arr, size_t depth);
    bool walk_event(od::object& obj, size_t depth);
    size_t obj_begin(od::value& v);
    size_t value_end();
    bool finish_members(MemberTracker& tracker);
    bool walk_root_scalar(od::document& doc);
    bool walk_value(od::value& v, const Decision& d, size_t depth, size_t& begin, size_t& end);
    bool walk_object(od::object& obj, size_t depth, bool envelope) {
        return walk_object_impl(obj, depth, false, envelope, ObjectTrace::kNoTag);
    }
    // An object that is a value: objects under the same key share a trace (object_trace.h).
    bool walk_object_inner(od::object& obj, size_t depth, bool inert) {
        const uint32_t kind = path_.empty() || path_.back().is_index ? ObjectTrace::kNoTag : key_slot_;
        return walk_object_impl(obj, depth, inert, false, kind);
    }
    bool walk_object_impl(od::object& obj, size_t depth, bool inert, bool envelope, uint32_t kind);
    bool walk_array(od::array& arr, size_t depth, bool inert);

    // ---- strings (walk_strings.cc) -----------------------------------------------------------------
    bool process_key(std::string_view key, const char* key_raw, Decision& d);
    void process_string(std::string_view s, size_t raw_begin, size_t raw_end, std::string_view key);
    void process_number(std::string_view token, size_t raw_begin, size_t raw_end);
    void scrub_chain(std::string_view s, std::vector<SpanEdit>& spans);
    void scrub_url(std::string_view s, std::vector<SpanEdit>& spans, size_t offset = 0);
    void rewrite_string(std::string_view s, size_t raw_begin, size_t raw_end,
                        const std::vector<DetectorMatch>& matches, bool on_key, bool& drop, bool url = false);
    bool is_our_output(std::string_view s, size_t begin, size_t end) const;

    // ---- values encoded inside strings (walk_encoded.cc) ------------------------------------------
    bool walk_embedded(std::string_view inner, size_t depth, WalkOutcome& inner_out);
    bool maybe_embedded_json(std::string_view s, size_t raw_begin, size_t raw_end);
    std::string_view decoded_hit(std::string_view decoded, std::string& rule_id);
    template <typename Fn>
    void for_each_base64_run(std::string_view s, Fn&& fn);
    void inspect_base64_runs(std::string_view s, std::vector<DetectorMatch>& matches);

    // ---- observation for `edgeguard learn` (walk_learn.cc) -------------------------------------------
    bool learn_event(od::object& obj);
    void observe_member(std::string_view key, const Decision& d, size_t vbegin, size_t vend, bool person_key);
    uint32_t learn_client();

    // ---- replay (walk_replay.cc) -------------------------------------------------------------------
    bool is_replay_item_path() const;
    bool maybe_replay_field(std::string_view s, size_t raw_begin, size_t raw_end, size_t depth);
    bool is_replay_item_path_at(size_t len) const;
    bool run_nested(od::parser& parser, std::string& padded, std::string_view json, size_t depth);

    const Profile& profile_;
    const CompiledRules& rules_;
    const WalkOptions& options_;
    WalkOutcome& out_;
    PathStack& path_;
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
    std::string number_digits_;   // the integer a float token is equal to (json_float_integer_digits)
    KeyInfo key_info_;            // of the member or element being decided and walked
    uint32_t key_slot_ =
        StringMemo<KeyInfo>::kNoSlot;  // key_info_'s memo slot (none for elements, long keys)
    uint32_t key_index_position_ = 0;  // the RawKeyIndex entry of the key predicted_key last missed
    std::vector<std::pair<size_t, size_t>> drop_ranges_;  // hand-over from a container walk to finish_members
    bool value_drop_ = false;  // a detector with action `drop` hit the string just walked
    // The scalar just walked had no detector hit at all and is not a URL: with a plain key, the member had
    // no effect and is reusable by its bytes (object_trace.h). Set by walk_value and process_*.
    bool value_clean_ = false;
    bool clean_memo_usable_ = false;  // the profile runs detectors, so clean (key, value) pairs are memoized
    // known_clean_string just missed on the string member being walked: its predictions are not tried again
    // (walk_value, process_string). Only ever saves a repeated comparison; cleared once the string is walked.
    bool clean_hint_missed_ = false;
    uint8_t embed_level_ = 0;         // how many encodings this walk is inside of (walk_encoded.cc)
    bool no_traces_ = false;          // a walk of an encoded value: object traces stay with the outer walk
    size_t string_depth_ = 0;         // the depth of the string value being processed
    std::vector<SpanEdit> encoded_spans_;  // base64 runs holding a JSON document that the rules changed
    bool learn_observing_ = false;         // the event's properties are observed (within the learn rate)
    std::string_view learn_client_id_;     // the event's distinct_id (or the client address), learning only
    uint32_t learn_client_hash_ = 0;
    bool learn_client_hashed_ = false;
};

}  // namespace edgeguard::privacy::walk
