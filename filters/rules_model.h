// The compiled form of conf/privacy.yaml: profiles, rules, allowlists. Built once by the loader
// (rules_loader.cc), immutable afterwards and shared by every worker thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/detectors/registry.h"
#include "filters/hmac_key.h"
#include "filters/path_pattern.h"

namespace edgeguard::privacy {

enum class Mode { Enforce, Report };

enum class ActionKind { Reject, Drop, Redact, Mask, Hash, TruncateIp };
std::string_view action_name(ActionKind kind);

struct Action {
    ActionKind kind = ActionKind::Redact;
    int keep_last = 4;  // mask: characters kept at the end of the matched span
};

struct IpTruncation {
    int v4_prefix = 24;
    int v6_prefix = 48;
};

// A rule either targets values by path (key rule: acts on the whole value at a matching path) or by
// content (detector rule: acts on the spans its detectors find, optionally only under `paths`).
struct Rule {
    std::string id;
    Mode mode = Mode::Enforce;
    Action action;
    std::vector<std::shared_ptr<const PathPattern>> paths;  // key rule: required; detector rule: scope
    std::vector<std::string> detectors;                     // detector ids; empty for key rules
    std::vector<std::string> events;                        // event-name globs; empty = every event
    bool scan_keys = true;                                  // detector rule: also scan object keys
    bool is_key_rule() const { return detectors.empty(); }
};

// How a listed property is checked instead of (or before) scanning it.
struct FieldType {
    enum class Kind { String, Any, Enum, Uuid, Number, Integer, Bool, Timestamp } kind = Kind::String;
    std::vector<std::string> enum_values;
    // Typed fields (everything but String/Any) are validated and NOT scanned by detectors.
    bool scanned() const { return kind == Kind::String || kind == Kind::Any; }
};

struct AllowedProperty {
    std::string name_glob;  // property key or glob, matched case-sensitively (PostHog keys are)
    FieldType type;
};

struct Allowlist {
    std::string id;
    std::vector<std::string> events;  // event-name globs
    std::vector<AllowedProperty> properties;
    bool reject_unlisted = false;  // default: unlisted properties are dropped
    Mode mode = Mode::Enforce;
};

// Person and group properties — `$set`, `$set_once` (top level and in properties), `/flags`
// person_properties and group_properties (per group type), `$group_set` — describe people, so they are
// allowlist-first: PostHog's own device, geo and initial properties (person_properties.cc) and the keys the
// profile lists pass, and are still scanned; any other key is dropped (or, `unlisted: reject`, the request
// refused). `unlisted: pass` turns this off.
struct PersonProperties {
    bool enabled = true;
    Allowlist allowlist;  // id "person_properties"; `events` unused
};

// One path of one key rule, flattened in rule order so a bitmask can name "which key-rule paths could end
// at this key".
struct KeyRulePath {
    const Rule* rule = nullptr;
    const PathPattern* pattern = nullptr;
};

struct Profile {
    std::string name;
    uint64_t unique_id = 0;  // distinguishes profiles across reloads (per-thread caches key on it)
    Mode mode = Mode::Enforce;
    bool pass_undecodable = false;  // on_undecodable: pass (warned about at load)
    bool inspect_only = false;      // webhooks: never rewrite, reject on any hit
    bool learn = false;             // observe property shapes for `edgeguard learn` (filters/learn/)
    // Events per second and worker whose properties are observed when learning (the rest are only counted),
    // so observation costs a bounded share of a core; 0: every event.
    uint32_t learn_events_per_second = 1000;
    IpTruncation ip;
    std::vector<Rule> rules;
    std::vector<Allowlist> allowlists;
    PersonProperties person_properties;
    // `NaN`, `Infinity`, `-Infinity` (and `+` forms) accepted as JSON numbers and forwarded unchanged, as the
    // feature-flags service's json5 parser accepts them; everywhere else they are invalid JSON.
    bool non_finite_numbers = false;
    // Keys whose string values are URLs: sensitive query keys are redacted there.
    std::vector<std::string> url_keys;             // lower-case
    std::vector<std::string> sensitive_query_keys;  // lower-case
    uint32_t max_depth = 64;
    // Decoded/wire size ratio above which a compressed body counts as a bomb (413), once the decoded size
    // passes 1 MiB. 0 = no ratio cap (the decoded-size cap, 5x the route's wire limit, still bounds memory).
    // Capture only logs ratios over 20, so a batch of near-identical events refused here is data lost.
    double max_compression_ratio = 100.0;

    // Compiled: one DetectorSet over every detector the detector rules name.
    std::shared_ptr<const DetectorSet> detector_set;
    bool has_detector_rules = false;
    std::vector<KeyRulePath> key_rule_paths;  // compiled from `rules` (order preserved)
};

struct CompiledRules {
    std::vector<std::shared_ptr<const Profile>> profiles;
    std::shared_ptr<const HmacKey> hash_key;  // null when no rule hashes
};

}  // namespace edgeguard::privacy
