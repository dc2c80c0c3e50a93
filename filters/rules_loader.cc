#include "filters/rules_loader.h"

#include "filters/key_forms.h"
#include "filters/person_properties.h"

#include <yaml-cpp/yaml.h>

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <initializer_list>
#include <map>
#include <set>
#include <cstdio>
#include <tuple>

namespace edgeguard::privacy {

std::string_view action_name(ActionKind kind) {
    switch (kind) {
        case ActionKind::Reject: return "reject";
        case ActionKind::Drop: return "drop";
        case ActionKind::Redact: return "redact";
        case ActionKind::Mask: return "mask";
        case ActionKind::Hash: return "hash";
        case ActionKind::TruncateIp: return "truncate_ip";
    }
    return "redact";
}

namespace {

const std::vector<std::string> kDefaultUrlKeys = {
    "$current_url", "$referrer", "$pathname", "$initial_current_url", "$initial_referrer",
    "$initial_pathname", "$session_entry_url", "$session_entry_referrer", "$session_entry_pathname",
    "$prev_pageview_pathname", "$external_click_url", "href", "$href", "attr__href", "$el_href", "url",
    "$referring_domain", "$session_entry_referrer", "$initial_referring_domain"};
const std::vector<std::string> kDefaultSensitiveQueryKeys = {
    "email", "e-mail", "e_mail", "mail", "phone", "tel", "token", "access_token", "refresh_token", "id_token",
    "code", "password", "pass", "pwd", "secret", "key", "api_key", "apikey", "session", "sessionid", "auth",
    "otp", "signature", "sig", "jwt", "ssn", "card", "iban", "name", "first_name", "last_name", "address"};

struct CustomDetectorSpec {
    std::string id;
    std::string pattern;
    std::string validator;
};

class Loader {
public:
    Loader(std::string path, std::vector<RuleError>& errors, const RuleLoadOptions& options)
        : path_(std::move(path)), errors_(errors), options_(options) {}

    std::shared_ptr<const CompiledRules> run(const std::string& text) {
        YAML::Node root;
        try {
            root = YAML::Load(text);
        } catch (const YAML::Exception& e) {
            error(e.mark, "YAML syntax: " + e.msg);
            return nullptr;
        }
        if (!root.IsMap()) {
            error(root.Mark(), "the rules file must be a mapping with `profiles`");
            return nullptr;
        }
        // Key rules also compare NFKC and look-alike forms of keys: without them a rule for `email` would
        // let `ＥＭＡＩＬ` or `еmail` through, so rules are not loaded at all.
        if (const std::string why = key_forms_unavailable(); !why.empty()) {
            error(root.Mark(), "key forms unavailable: " + why);
            return nullptr;
        }
        try {
            check_keys(root, {"version", "hash_key", "custom_detectors", "profiles"});
            if (auto v = root["version"]) {
                if (scalar_int(v, "version") != 1) error(v.Mark(), "unsupported version (expected 1)");
            }
            if (auto cd = root["custom_detectors"]) read_custom_detectors(cd);
            auto profiles = root["profiles"];
            if (!profiles || !profiles.IsMap() || profiles.size() == 0) {
                error(profiles ? profiles.Mark() : root.Mark(), "`profiles` must be a non-empty mapping");
                return nullptr;
            }
            for (auto it = profiles.begin(); it != profiles.end(); ++it) {
                read_profile(it->first.as<std::string>(), it->first.Mark(), it->second);
            }
            if (needs_hash_key_) {
                auto hk = root["hash_key"];
                if (!hk) {
                    error(root.Mark(), "a rule uses `hash` but no `hash_key` is configured");
                } else {
                    read_hash_key(hk);
                }
            } else if (auto hk = root["hash_key"]) {
                read_hash_key(hk);
            }
        } catch (const YAML::Exception& e) {
            error(e.mark, e.msg);
        }
        if (has_errors()) return nullptr;
        compile_detector_sets();
        if (has_errors()) return nullptr;
        run_rule_tests();
        if (has_errors()) return nullptr;
        return rules_;
    }

private:
    bool has_errors() const {
        return std::any_of(errors_.begin(), errors_.end(), [](const RuleError& e) { return !e.warning; });
    }

    void error(const YAML::Mark& mark, std::string message, bool warning = false) {
        RuleError e;
        e.file = path_;
        e.line = mark.line >= 0 ? mark.line + 1 : 0;
        e.col = mark.column >= 0 ? mark.column + 1 : 0;
        e.message = std::move(message);
        e.warning = warning;
        errors_.push_back(std::move(e));
    }

    void check_keys(const YAML::Node& map, std::initializer_list<std::string_view> allowed) {
        if (!map.IsMap()) return;
        for (auto it = map.begin(); it != map.end(); ++it) {
            const auto key = it->first.as<std::string>();
            if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
                std::string list;
                for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
                error(it->first.Mark(), "unknown key `" + key + "` (expected one of: " + list + ")");
            }
        }
    }

    std::string scalar(const YAML::Node& n, std::string_view what) {
        if (!n.IsScalar()) {
            error(n.Mark(), std::string(what) + " must be a scalar");
            return {};
        }
        return n.as<std::string>();
    }

    long scalar_int(const YAML::Node& n, std::string_view what) {
        try {
            if (n.IsScalar()) return n.as<long>();
        } catch (const YAML::Exception&) {
        }
        error(n.Mark(), std::string(what) + " must be an integer");
        return -1;
    }

    bool scalar_bool(const YAML::Node& n, std::string_view what) {
        try {
            if (n.IsScalar()) return n.as<bool>();
        } catch (const YAML::Exception&) {
        }
        error(n.Mark(), std::string(what) + " must be true or false");
        return false;
    }

    std::vector<std::string> string_list(const YAML::Node& n, std::string_view what) {
        std::vector<std::string> out;
        if (n.IsScalar()) {
            out.push_back(n.as<std::string>());
            return out;
        }
        if (!n.IsSequence()) {
            error(n.Mark(), std::string(what) + " must be a string or a list of strings");
            return out;
        }
        for (const auto& item : n) {
            if (!item.IsScalar()) {
                error(item.Mark(), std::string(what) + " items must be strings");
                continue;
            }
            out.push_back(item.as<std::string>());
        }
        return out;
    }

    Mode read_mode(const YAML::Node& n) {
        const auto v = scalar(n, "mode");
        if (v == "enforce") return Mode::Enforce;
        if (v == "report") return Mode::Report;
        error(n.Mark(), "mode must be `enforce` or `report`");
        return Mode::Enforce;
    }

    void read_custom_detectors(const YAML::Node& n) {
        if (!n.IsSequence()) {
            error(n.Mark(), "`custom_detectors` must be a list");
            return;
        }
        for (const auto& item : n) {
            if (!item.IsMap()) {
                error(item.Mark(), "a custom detector must be a mapping with id and pattern");
                continue;
            }
            check_keys(item, {"id", "pattern", "validator"});
            CustomDetectorSpec spec;
            if (!item["id"] || !item["pattern"]) {
                error(item.Mark(), "a custom detector needs `id` and `pattern`");
                continue;
            }
            spec.id = scalar(item["id"], "id");
            spec.pattern = scalar(item["pattern"], "pattern");
            if (item["validator"]) spec.validator = scalar(item["validator"], "validator");
            std::string err;
            if (!make_regex_detector(spec.id, spec.pattern, spec.validator, &err)) {
                error(item["pattern"].Mark(), "custom detector `" + spec.id + "`: " + err);
                continue;
            }
            std::string builtin_err;
            if (make_builtin_detector(spec.id, &builtin_err)) {
                error(item["id"].Mark(), "custom detector id `" + spec.id + "` shadows a built-in detector");
                continue;
            }
            custom_[spec.id] = {spec, item.Mark()};
        }
    }

    void read_hash_key(const YAML::Node& n) {
        if (!n.IsMap()) {
            error(n.Mark(), "`hash_key` must be a mapping with id and env and/or file");
            return;
        }
        check_keys(n, {"id", "env", "file", "create_if_missing"});
        const std::string id = n["id"] ? scalar(n["id"], "id") : "h1";
        const std::string env = n["env"] ? scalar(n["env"], "env") : "";
        std::string file = n["file"] ? scalar(n["file"], "file") : "";
        const bool create = n["create_if_missing"] ? scalar_bool(n["create_if_missing"], "create_if_missing") : false;
        // A relative key file lives next to the rules file.
        if (!file.empty() && file.front() != '/') {
            const size_t slash = path_.rfind('/');
            if (slash != std::string::npos) file = path_.substr(0, slash + 1) + file;
        }
        if (id.empty() || !std::all_of(id.begin(), id.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
            })) {
            error(n.Mark(), "hash_key id must be lower-case letters and digits (it becomes the token prefix)");
            return;
        }
        if (env.empty() && file.empty()) {
            error(n.Mark(), "hash_key needs `env` or `file`: the key is never written in this file");
            return;
        }
        if (!needs_hash_key_) return;  // configured but unused: do not insist the secret is present
        std::string err;
        const char* env_value = env.empty() ? nullptr : std::getenv(env.c_str());
        const bool from_env = env_value != nullptr && *env_value != '\0';
        if (create && !options_.create_missing_hash_key && !from_env && !file.empty() &&
            ::access(file.c_str(), F_OK) != 0) {
            error(n.Mark(), "hash key file '" + file + "' does not exist yet: `edgeguard serve` creates it on "
                              "first start (create_if_missing); to create it now: edgeguard keygen --out " + file, true);
            rules_->hash_key = HmacKey::random(id);
            return;
        }
        rules_->hash_key = HmacKey::load(id, env, file, create, &err);
        if (!rules_->hash_key) error(n.Mark(), err);
    }

    Action read_action(const YAML::Node& rule, const YAML::Node& n) {
        Action a;
        const auto v = scalar(n, "action");
        if (v == "reject") a.kind = ActionKind::Reject;
        else if (v == "drop") a.kind = ActionKind::Drop;
        else if (v == "redact") a.kind = ActionKind::Redact;
        else if (v == "mask") a.kind = ActionKind::Mask;
        else if (v == "hash") a.kind = ActionKind::Hash;
        else if (v == "truncate_ip") a.kind = ActionKind::TruncateIp;
        else error(n.Mark(), "unknown action `" + v + "` (reject, drop, redact, mask, hash, truncate_ip)");
        if (auto k = rule["keep_last"]) {
            if (a.kind != ActionKind::Mask) error(k.Mark(), "`keep_last` only applies to `mask`");
            const long keep = scalar_int(k, "keep_last");
            if (keep < 0 || keep > 64) error(k.Mark(), "keep_last must be between 0 and 64");
            a.keep_last = static_cast<int>(keep);
        }
        if (a.kind == ActionKind::Hash) needs_hash_key_ = true;
        return a;
    }

    FieldType read_field_type(const YAML::Node& n) {
        FieldType t;
        if (n.IsMap()) {
            check_keys(n, {"enum", "type"});
            if (auto e = n["enum"]) {
                t.kind = FieldType::Kind::Enum;
                t.enum_values = string_list(e, "enum");
                return t;
            }
            if (auto ty = n["type"]) return read_field_type(ty);
            error(n.Mark(), "a property type mapping needs `enum` or `type`");
            return t;
        }
        const auto v = scalar(n, "property type");
        static const std::map<std::string, FieldType::Kind, std::less<>> kinds = {
            {"string", FieldType::Kind::String}, {"any", FieldType::Kind::Any},
            {"uuid", FieldType::Kind::Uuid},     {"number", FieldType::Kind::Number},
            {"integer", FieldType::Kind::Integer}, {"bool", FieldType::Kind::Bool},
            {"timestamp", FieldType::Kind::Timestamp}};
        auto it = kinds.find(v);
        if (it == kinds.end()) {
            error(n.Mark(), "unknown property type `" + v +
                                "` (string, any, uuid, number, integer, bool, timestamp, or {enum: [...]})");
        } else {
            t.kind = it->second;
        }
        return t;
    }

    void read_allowlist(Profile& p, const YAML::Node& n) {
        if (!n.IsMap()) {
            error(n.Mark(), "an allowlist must be a mapping");
            return;
        }
        check_keys(n, {"id", "events", "properties", "unlisted", "mode"});
        Allowlist a;
        a.id = n["id"] ? scalar(n["id"], "id") : "allowlist";
        if (!n["events"]) error(n.Mark(), "allowlist `" + a.id + "` needs `events` (names or globs)");
        else a.events = string_list(n["events"], "events");
        if (auto u = n["unlisted"]) {
            const auto v = scalar(u, "unlisted");
            if (v == "reject") a.reject_unlisted = true;
            else if (v != "drop") error(u.Mark(), "unlisted must be `drop` or `reject`");
        }
        if (auto m = n["mode"]) a.mode = read_mode(m);
        auto props = n["properties"];
        if (!props || !(props.IsMap() || props.IsSequence())) {
            error(n.Mark(), "allowlist `" + a.id + "` needs `properties` (a mapping name: type, or a list)");
            return;
        }
        read_allowed_properties(props, a.properties);
        p.allowlists.push_back(std::move(a));
    }

    // `properties:` of an allowlist: a mapping name: type, or a list of names (type string).
    void read_allowed_properties(const YAML::Node& props, std::vector<AllowedProperty>& into) {
        if (props.IsSequence()) {
            for (const auto& item : props) into.push_back({scalar(item, "property"), FieldType{}});
        } else {
            for (auto it = props.begin(); it != props.end(); ++it) {
                into.push_back({it->first.as<std::string>(), read_field_type(it->second)});
            }
        }
    }

    // person_properties: {unlisted: drop|reject|pass, mode, properties} — added to what the profile has
    // (PostHog's own properties, and the parent's when it extends one).
    void read_person_properties(Profile& p, const YAML::Node& n) {
        if (!n.IsMap()) {
            error(n.Mark(), "`person_properties` must be a mapping");
            return;
        }
        check_keys(n, {"unlisted", "mode", "properties", "description"});
        PersonProperties& pp = p.person_properties;
        if (auto u = n["unlisted"]) {
            const auto v = scalar(u, "unlisted");
            if (v == "drop") {
                pp.enabled = true;
                pp.allowlist.reject_unlisted = false;
            } else if (v == "reject") {
                pp.enabled = true;
                pp.allowlist.reject_unlisted = true;
            } else if (v == "pass") {
                pp.enabled = false;
                error(u.Mark(),
                      "profile `" + p.name + "` forwards person properties it does not know (unlisted: pass)", true);
            } else {
                error(u.Mark(), "unlisted must be `drop`, `reject` or `pass`");
            }
        }
        if (auto m = n["mode"]) pp.allowlist.mode = read_mode(m);
        if (auto props = n["properties"]) {
            if (!(props.IsMap() || props.IsSequence()))
                error(props.Mark(), "`properties` must be a mapping name: type, or a list");
            else
                read_allowed_properties(props, pp.allowlist.properties);
        }
    }

    void read_rule(Profile& p, const YAML::Node& n) {
        if (!n.IsMap()) {
            error(n.Mark(), "a rule must be a mapping");
            return;
        }
        check_keys(n, {"id", "paths", "path", "detectors", "detector", "action", "keep_last", "mode", "events",
                       "scan_keys", "must_match", "must_not_match", "description"});
        Rule r;
        if (!n["id"]) {
            error(n.Mark(), "every rule needs an `id` (it names the rule in audits and rejections)");
            return;
        }
        r.id = scalar(n["id"], "id");
        for (const auto& existing : p.rules) {
            if (existing.id == r.id) error(n["id"].Mark(), "duplicate rule id `" + r.id + "` in this profile");
        }
        if (!n["action"]) {
            error(n.Mark(), "rule `" + r.id + "` needs an `action`");
            return;
        }
        r.action = read_action(n, n["action"]);
        if (auto m = n["mode"]) r.mode = read_mode(m);
        if (auto e = n["events"]) r.events = string_list(e, "events");
        if (auto s = n["scan_keys"]) r.scan_keys = scalar_bool(s, "scan_keys");
        for (const char* key : {"paths", "path"}) {
            if (auto ps = n[key]) {
                for (const auto& text : string_list(ps, key)) {
                    std::string err;
                    int col = 0;
                    auto pat = PathPattern::parse(text, &err, &col);
                    if (!pat) error(ps.Mark(), err);
                    else r.paths.push_back(std::move(pat));
                }
            }
        }
        for (const char* key : {"detectors", "detector"}) {
            if (auto ds = n[key]) {
                for (const auto& id : string_list(ds, key)) {
                    std::string err;
                    if (!custom_.count(id) && !make_builtin_detector(id, &err)) {
                        error(ds.Mark(), "rule `" + r.id + "`: " + err);
                    } else {
                        r.detectors.push_back(id);
                    }
                }
            }
        }
        if (r.detectors.empty() && r.paths.empty()) {
            error(n.Mark(), "rule `" + r.id + "` needs `paths` (key rule) or `detectors` (value rule)");
            return;
        }
        if (r.action.kind == ActionKind::TruncateIp && !r.detectors.empty() &&
            (r.detectors.size() != 1 || r.detectors[0] != "ip")) {
            error(n["action"].Mark(), "truncate_ip only applies to the `ip` detector or to key rules");
        }
        if (auto mm = n["must_match"]) tests_.push_back({p.name, r.id, true, string_list(mm, "must_match"), mm.Mark()});
        if (auto mn = n["must_not_match"]) {
            tests_.push_back({p.name, r.id, false, string_list(mn, "must_not_match"), mn.Mark()});
        }
        p.rules.push_back(std::move(r));
    }

    void read_profile(const std::string& name, const YAML::Mark& mark, const YAML::Node& n) {
        if (!n.IsMap()) {
            error(n.Mark(), "profile `" + name + "` must be a mapping");
            return;
        }
        check_keys(n, {"extends", "mode", "on_undecodable", "inspect_only", "ip_truncation", "max_depth",
                       "max_compression_ratio", "url_keys", "sensitive_query_keys", "allowlists",
                       "person_properties", "non_finite_numbers", "rules", "description", "learn",
                       "learn_events_per_second"});
        auto p = std::make_shared<Profile>();
        p->url_keys = kDefaultUrlKeys;
        p->person_properties = default_person_properties();
        p->sensitive_query_keys = kDefaultSensitiveQueryKeys;
        if (auto ext = n["extends"]) {
            const auto parent = scalar(ext, "extends");
            auto it = std::find_if(rules_->profiles.begin(), rules_->profiles.end(),
                                   [&](const auto& q) { return q->name == parent; });
            if (it == rules_->profiles.end()) {
                error(ext.Mark(), "profile `" + parent + "` must be defined above `" + name + "` to extend it");
            } else {
                *p = **it;
                p->detector_set.reset();
                // The child's samples must also hold for the inherited rules.
                std::vector<RuleTest> inherited;
                for (const auto& t : tests_) {
                    if (t.profile == parent) {
                        auto copy = t;
                        copy.profile = name;
                        inherited.push_back(std::move(copy));
                    }
                }
                tests_.insert(tests_.end(), inherited.begin(), inherited.end());
            }
        }
        p->name = name;
        if (std::any_of(rules_->profiles.begin(), rules_->profiles.end(),
                        [&](const auto& q) { return q->name == name; })) {
            error(mark, "duplicate profile `" + name + "`");
        }
        if (auto m = n["mode"]) p->mode = read_mode(m);
        if (auto u = n["on_undecodable"]) {
            const auto v = scalar(u, "on_undecodable");
            if (v == "pass") {
                p->pass_undecodable = true;
                error(u.Mark(),
                      "profile `" + name + "` forwards undecodable bodies uninspected (on_undecodable: pass)", true);
            } else if (v == "reject") {
                p->pass_undecodable = false;
            } else {
                error(u.Mark(), "on_undecodable must be `reject` or `pass`");
            }
        }
        if (auto io = n["inspect_only"]) p->inspect_only = scalar_bool(io, "inspect_only");
        // Never inherited: a profile proposed by `edgeguard learn` extends the one that learnt it.
        p->learn = false;
        if (auto l = n["learn"]) p->learn = scalar_bool(l, "learn");
        p->learn_events_per_second = Profile{}.learn_events_per_second;
        if (auto r = n["learn_events_per_second"]) {
            const long v = scalar_int(r, "learn_events_per_second");
            if (v < 0 || v > 1000000)
                error(r.Mark(), "learn_events_per_second must be 0..1000000 (0: every event)");
            else
                p->learn_events_per_second = static_cast<uint32_t>(v);
        }
        if (auto ip = n["ip_truncation"]) {
            check_keys(ip, {"v4_prefix", "v6_prefix"});
            if (auto v4 = ip["v4_prefix"]) {
                const long v = scalar_int(v4, "v4_prefix");
                if (v < 0 || v > 32) error(v4.Mark(), "v4_prefix must be 0..32");
                p->ip.v4_prefix = static_cast<int>(v);
            }
            if (auto v6 = ip["v6_prefix"]) {
                const long v = scalar_int(v6, "v6_prefix");
                if (v < 0 || v > 128) error(v6.Mark(), "v6_prefix must be 0..128");
                p->ip.v6_prefix = static_cast<int>(v);
            }
        }
        if (auto d = n["max_depth"]) {
            const long v = scalar_int(d, "max_depth");
            if (v < 4 || v > 512) error(d.Mark(), "max_depth must be 4..512");
            p->max_depth = static_cast<uint32_t>(v);
        }
        if (auto r = n["max_compression_ratio"]) {
            // `off` (or 0) leaves only the decoded-size cap; below 10 would refuse ordinary gzip batches.
            if (r.IsScalar() && (r.Scalar() == "off" || r.Scalar() == "0")) {
                p->max_compression_ratio = 0;
            } else {
                const long v = scalar_int(r, "max_compression_ratio");
                if (v < 10 || v > 100000) error(r.Mark(), "max_compression_ratio must be `off` or 10..100000");
                else p->max_compression_ratio = static_cast<double>(v);
            }
        }
        auto lower_list = [&](const YAML::Node& node, std::string_view what) {
            auto list = string_list(node, what);
            for (auto& s : list) std::transform(s.begin(), s.end(), s.begin(), ::tolower);
            return list;
        };
        if (auto uk = n["url_keys"]) p->url_keys = lower_list(uk, "url_keys");
        if (auto sq = n["sensitive_query_keys"]) p->sensitive_query_keys = lower_list(sq, "sensitive_query_keys");
        if (auto al = n["allowlists"]) {
            if (!al.IsSequence()) error(al.Mark(), "`allowlists` must be a list");
            else for (const auto& a : al) read_allowlist(*p, a);
        }
        if (auto pp = n["person_properties"]) read_person_properties(*p, pp);
        if (auto nf = n["non_finite_numbers"]) {
            const auto v = scalar(nf, "non_finite_numbers");
            if (v == "accept") p->non_finite_numbers = true;
            else if (v == "reject") p->non_finite_numbers = false;
            else error(nf.Mark(), "non_finite_numbers must be `accept` or `reject`");
        }
        if (auto rs = n["rules"]) {
            if (!rs.IsSequence()) error(rs.Mark(), "`rules` must be a list");
            else for (const auto& r : rs) read_rule(*p, r);
        }
        rules_->profiles.push_back(std::move(p));
    }

    std::unique_ptr<Detector> make_detector(const std::string& id) {
        std::string err;
        auto c = custom_.find(id);
        if (c != custom_.end()) {
            return make_regex_detector(c->second.first.id, c->second.first.pattern, c->second.first.validator, &err);
        }
        return make_builtin_detector(id, &err);
    }

    void compile_detector_sets() {
        for (auto& shared : rules_->profiles) {
            auto& p = const_cast<Profile&>(*shared);
            std::vector<std::string> ids;
            for (const auto& r : p.rules) {
                for (const auto& d : r.detectors) {
                    if (std::find(ids.begin(), ids.end(), d) == ids.end()) ids.push_back(d);
                }
            }
            std::vector<std::unique_ptr<Detector>> detectors;
            for (const auto& id : ids) {
                auto det = make_detector(id);
                if (!det) {
                    error(YAML::Mark(), "detector `" + id + "` could not be built");
                    continue;
                }
                detectors.push_back(std::move(det));
            }
            p.has_detector_rules = !detectors.empty();
            static std::atomic<uint64_t> next_profile_id{1};
            p.unique_id = next_profile_id.fetch_add(1, std::memory_order_relaxed);
            p.key_rule_paths.clear();
            for (const auto& r : p.rules) {
                if (!r.is_key_rule()) continue;
                for (const auto& pat : r.paths) p.key_rule_paths.push_back(KeyRulePath{&r, pat.get()});
            }
            p.detector_set = std::make_shared<DetectorSet>(std::move(detectors));
        }
    }

    void run_rule_tests();

    struct RuleTest {
        std::string profile;
        std::string rule_id;
        bool must_match = true;
        std::vector<std::string> samples;
        YAML::Mark mark;
    };

    std::string path_;
    std::vector<RuleError>& errors_;
    std::shared_ptr<CompiledRules> rules_ = std::make_shared<CompiledRules>();
    std::map<std::string, std::pair<CustomDetectorSpec, YAML::Mark>> custom_;
    std::vector<RuleTest> tests_;
    bool needs_hash_key_ = false;
    RuleLoadOptions options_;
};

// A sample as it appears in a message: quoted, control bytes escaped, long ones cut.
std::string quoted_sample(const std::string& sample) {
    std::string out = "\"";
    for (size_t i = 0; i < sample.size() && i < 80; ++i) {
        const auto c = static_cast<unsigned char>(sample[i]);
        if (c == '"' || c == '\\') out.push_back('\\');
        if (c < 0x20 || c == 0x7f) {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out.push_back(static_cast<char>(c));
        }
    }
    if (sample.size() > 80) out += "...";
    return out + "\"";
}

void Loader::run_rule_tests() {
    std::vector<DetectorMatch> matches;
    // A profile that extends another runs the inherited rule's samples again; a failure is one mistake in
    // one place of the file, reported once.
    std::set<std::tuple<int, int, std::string>> reported;
    for (const auto& t : tests_) {
        auto pit = std::find_if(rules_->profiles.begin(), rules_->profiles.end(),
                                [&](const auto& p) { return p->name == t.profile; });
        if (pit == rules_->profiles.end()) continue;
        const Profile& p = **pit;
        auto rit = std::find_if(p.rules.begin(), p.rules.end(), [&](const Rule& r) { return r.id == t.rule_id; });
        if (rit == p.rules.end()) continue;
        const Rule& rule = *rit;
        for (const auto& sample : t.samples) {
            bool hit = false;
            if (rule.is_key_rule()) {
                // Key-rule samples are paths: split on '.' (quoted segments kept whole) and '[*]'.
                std::vector<std::string> parts;
                std::vector<PathStep> steps;
                std::string cur;
                bool quoted = false;
                for (size_t i = 0; i <= sample.size(); ++i) {
                    const char c = i < sample.size() ? sample[i] : '.';
                    if (c == '"') {
                        quoted = !quoted;
                    } else if (!quoted && c == '.') {
                        if (!cur.empty()) parts.push_back(cur);
                        cur.clear();
                    } else if (!quoted && c == '[') {
                        if (!cur.empty()) parts.push_back(cur);
                        cur.clear();
                        parts.push_back("[*]");
                        const size_t close = sample.find(']', i);
                        i = close == std::string::npos ? sample.size() : close;
                    } else {
                        cur.push_back(c);
                    }
                }
                for (const auto& part : parts) {
                    steps.push_back(part == "[*]" ? PathStep{{}, true} : PathStep{part, false});
                }
                // As the walker does: the key itself, or one of its normalised forms (key_forms.h).
                std::vector<std::string> forms;
                if (!steps.empty() && !steps.back().is_index) append_key_forms(steps.back().key, forms);
                for (const auto& pat : rule.paths) {
                    hit = hit || pat->matches(steps.data(), steps.size());
                    for (const auto& form : forms) {
                        hit = hit || (pat->last_step_matches(PathStep{form, false}) &&
                                      pat->matches_given_last(steps.data(), steps.size()));
                    }
                }
            } else {
                matches.clear();
                p.detector_set->scan(sample, DetectorContext{}, matches);
                for (const auto& m : matches) {
                    if (std::find(rule.detectors.begin(), rule.detectors.end(), m.detector) != rule.detectors.end()) {
                        hit = true;
                    }
                }
            }
            if (hit != t.must_match && reported.emplace(t.mark.line, t.mark.column, sample).second) {
                error(t.mark, "profile `" + t.profile + "` rule `" + t.rule_id + "`: " +
                                  (t.must_match ? "must_match" : "must_not_match") + " sample " +
                                  quoted_sample(sample) +
                                  (t.must_match ? " does not match" : " matches"));
            }
        }
    }
}

}  // namespace

std::shared_ptr<const CompiledRules> load_rules(const std::string& yaml_text, const std::string& path,
                                                std::vector<RuleError>& errors, const RuleLoadOptions& options) {
    Loader loader(path, errors, options);
    return loader.run(yaml_text);
}

}  // namespace edgeguard::privacy
