// What the profile says about a key or a value, and how a hit is recorded: audit entries, enforcement
// (report mode, inspect-only profiles, rejections) and edits.
#include "filters/walker/walker.h"

#include <algorithm>
#include <cctype>

#include "filters/key_forms.h"
#include "filters/value_actions.h"
#include "filters/walker/value_shapes.h"

namespace edgeguard::privacy::walk {

bool Walker::fail(std::string why) {
    if (out_.status == WalkOutcome::Status::Ok) {
        out_.status = WalkOutcome::Status::ParseError;
        out_.error = std::move(why);
    }
    return false;
}

// Whether a detector (built-in, or one of the profile's) reports anything in an object key.
bool Walker::key_shows_data(std::string_view key) const {
    static const DetectorSet kBuiltins = DetectorSet::builtin();
    thread_local std::vector<DetectorMatch> matches;
    matches.clear();
    kBuiltins.scan(key, DetectorContext{}, matches);
    if (matches.empty() && profile_.detector_set) profile_.detector_set->scan(key, DetectorContext{}, matches);
    return !matches.empty();
}

std::string Walker::path_template() const {
    std::string t;
    for (const auto& step : path_) {
        if (step.is_index) {
            t += "[*]";
            continue;
        }
        if (!t.empty()) t.push_back('.');
        // Keys can carry data themselves (heatmap URLs, a card number or phone used as a key): only
        // well-formed short names that no detector reports are written.
        bool plain = !step.key.empty() && step.key.size() <= 64;
        bool digits = false;
        for (char c : step.key) {
            plain = plain && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                              c == '_' || c == '$' || c == '-');
            digits = digits || (c >= '0' && c <= '9');
        }
        // Every built-in detector that can report a plain name (cards, phones, INN, SNILS, IBAN, secrets)
        // needs a digit in it.
        if (plain && digits) plain = !key_shows_data(step.key);
        t += plain ? std::string(step.key) : std::string("*");
    }
    return t;
}

void Walker::audit(std::string_view rule_id, std::string_view action) {
    const std::string path = path_template();
    for (auto& e : out_.audit) {
        if (e.rule_id == rule_id && e.action == action && e.path == path) {
            ++e.count;
            return;
        }
    }
    out_.audit.push_back(AuditEntry{std::string(rule_id), path, std::string(action), 1});
}

// Records a hit; returns true when the action must be carried out (enforce mode). A profile that
// only inspects (webhooks) turns every enforced action into a rejection.
bool Walker::enforce(std::string_view rule_id, Mode mode, ActionKind action) {
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

void Walker::add_edit(size_t begin, size_t end, std::string text) {
    if (std::string_view(base_ + begin, end - begin) == text) return;  // a no-op keeps output byte-identical
    out_.edits.push_back(Edit{begin + offset_shift_, end + offset_shift_, std::move(text)});
    ++edits_made_;
}

bool Walker::event_matches(const std::vector<std::string>& globs) const {
    if (globs.empty()) return true;
    if (!in_event_) return false;
    for (const auto& g : globs) {
        if (glob_match(g, event_name_)) return true;
    }
    return false;
}

KeyInfo Walker::compute_key_info(const PathStep& step) const {
    KeyInfo info;
    const auto& paths = profile_.key_rule_paths;
    if (paths.size() > 64) {
        info.rule_mask = ~uint64_t{0};
    } else {
        for (size_t i = 0; i < paths.size(); ++i) {
            if (paths[i].pattern->last_step_matches(step)) info.rule_mask |= uint64_t{1} << i;
        }
    }
    // Normalised forms of the key (NFKC, tokens, confusable skeletons) meet the rules written for plain
    // words (not the client-IP keys: `ip_address` is governed by the IP policy, not an `address` rule).
    if (!step.is_index && !paths.empty() && paths.size() <= 64) {
        auto& forms = scratch_->key_forms;
        forms.clear();
        append_key_forms(step.key, forms);
        for (const auto& form : forms) {
            const PathStep as_key{form, false};
            for (size_t i = 0; i < paths.size(); ++i) {
                const uint64_t bit = uint64_t{1} << i;
                if (!(info.rule_mask & bit) && paths[i].pattern->last_step_matches(as_key)) info.form_mask |= bit;
            }
        }
        info.rule_mask |= info.form_mask;
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
    info.plain = !info.ip && info.rule_mask == 0 && !info.key_hits;
    return info;
}

// `literal_value`: the value is true, false or null, which a match through a key form leaves alone.
const Rule* Walker::key_rule_here(bool literal_value) const {
    const auto& paths = profile_.key_rule_paths;
    uint64_t mask = key_info_.rule_mask;
    for (size_t i = 0; mask != 0 && i < paths.size(); ++i) {
        if (i < 64 && !(mask & (uint64_t{1} << i))) continue;
        if (i < 64) mask &= ~(uint64_t{1} << i);
        const Rule& rule = *paths[i].rule;
        if (!event_matches(rule.events)) continue;
        if (i < 64 && (key_info_.form_mask & (uint64_t{1} << i))) {
            if (!literal_value && paths[i].pattern->matches_given_last(rel_path(), rel_size())) return &rule;
            continue;
        }
        if (paths[i].pattern->matches(rel_path(), rel_size())) return &rule;
    }
    return nullptr;
}

const Rule* Walker::detector_rule_for(std::string_view detector, bool on_key) const {
    for (const auto& rule : profile_.rules) {
        if (rule.is_key_rule() || (on_key && !rule.scan_keys) || !event_matches(rule.events)) continue;
        if (std::find(rule.detectors.begin(), rule.detectors.end(), detector) == rule.detectors.end())
            continue;
        if (!rule.paths.empty()) {
            bool in_scope = false;
            for (const auto& pat : rule.paths) in_scope = in_scope || pat->matches(rel_path(), rel_size());
            if (!in_scope) continue;
        }
        return &rule;
    }
    return nullptr;
}

const Allowlist* Walker::allowlist_for_event() const {
    for (const auto& a : profile_.allowlists) {
        for (const auto& g : a.events) {
            if (glob_match(g, event_name_)) return &a;
        }
    }
    return nullptr;
}

bool Walker::type_ok(od::value& v, const FieldType& type) {
    od::json_type t;
    if (v.type().get(t)) return false;
    std::string_view tok = v.raw_json_token();
    while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
    switch (type.kind) {
        case FieldType::Kind::String:
        case FieldType::Kind::Any:
            return true;
        case FieldType::Kind::Bool:
            return t == od::json_type::boolean;
        case FieldType::Kind::Number:
            return t == od::json_type::number;
        case FieldType::Kind::Integer:
            return t == od::json_type::number && tok.find_first_of(".eE") == std::string_view::npos;
        default:
            break;
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
        default:
            return false;
    }
}

// The replacement JSON text a key rule's action makes of the whole value.
std::string Walker::computed_replacement(const Rule& rule, std::string_view raw, std::string_view unescaped,
                                         bool is_string) {
    std::string out = "\"";
    switch (rule.action.kind) {
        case ActionKind::Hash: {
            const std::string_view basis = is_string ? unescaped : raw;
            if (is_string && looks_like_hash_token(unescaped, rules_.hash_key->id())) return std::string(raw);
            out += rules_.hash_key->token(basis);
            break;
        }
        case ActionKind::Mask:
            append_json_escaped(out, mask_text(is_string ? unescaped : raw, rule.action.keep_last));
            break;
        case ActionKind::TruncateIp: {
            std::string t = is_string ? truncate_ip(unescaped, profile_.ip) : std::string();
            out += t.empty() ? redact_placeholder(rule.id) : t;
            break;
        }
        default:
            out += redact_placeholder(rule.id);
            break;
    }
    out.push_back('"');
    return out;
}

}  // namespace edgeguard::privacy::walk
