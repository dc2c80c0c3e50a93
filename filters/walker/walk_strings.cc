// Detectors on object keys and string values (with the per-thread memo of clean values), URL query
// scrubbing, and the rewrite of a string from its detector hits.
#include "filters/walker/walker.h"

#include <algorithm>
#include <cctype>

#include "filters/decode/url_form.h"
#include "filters/value_actions.h"
#include "filters/walker/value_shapes.h"

namespace edgeguard::privacy::walk {

// Detectors on an object key (heatmap URLs are keys). May turn `d` into a Drop.
bool Walker::process_key(std::string_view key, const char* key_raw, Decision& d) {
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

void Walker::process_string(std::string_view s, size_t raw_begin, size_t raw_end, std::string_view key) {
    auto& matches = scratch_->matches;
    matches.clear();
    value_clean_ = false;
    const bool url = !key.empty() && (key_info_.url || key_info_.chain);
    if (profile_.has_detector_rules && !s.empty() && !is_uuid(s) && !is_iso_timestamp(s)) {
        StringMemo<bool>* cache = nullptr;
        uint64_t hash = 0;
        KeyValueStats* stats = key.empty() || key_slot_ == StringMemo<KeyInfo>::kNoSlot
                                   ? nullptr
                                   : &scratch_->key_value_stats[key_slot_];
        // A key whose values were new kUniqueAfter times and found by hash lookup less than one time in
        // eight stops using the memo. kUniqueAfter spans several requests (a batch holds up to ~100 events),
        // so a body sent again (a retry, or a benchmark replaying one body) finds what the first one
        // inserted before its keys could be judged.
        constexpr uint16_t kUniqueAfter = 256;
        const bool values_repeat =
            stats == nullptr || stats->inserts < kUniqueAfter || stats->hits * 8 >= stats->inserts;
        if (values_repeat && !url && s.size() <= kCleanValueMaxBytes && key.size() <= kMaxCachedKeyBytes) {
            cache = &scratch_->clean_values;
            const uint32_t previous = scratch_->last_clean_slot;
            // A string without escapes that known_clean_string's raw comparison missed is not in the
            // predicted slot either.
            const bool hint_tried = clean_hint_missed_ && raw_end - raw_begin - 2 == s.size();
            uint32_t slot = hint_tried ? StringMemo<bool>::kNoSlot : cache->predicted_slot(previous, key, s);
            if (slot == StringMemo<bool>::kNoSlot) {
                hash = fast_string_hash(key, s);
                slot = cache->find_slot(key, s, hash);
                if (slot != StringMemo<bool>::kNoSlot) {
                    cache->link(previous, slot);
                    if (stats != nullptr && stats->hits < UINT16_MAX) ++stats->hits;
                }
            }
            if (slot != StringMemo<bool>::kNoSlot) {
                scratch_->last_clean_slot = slot;
                if (stats != nullptr) stats->last_clean_slot = slot;
                value_clean_ = true;  // the memo holds only pairs the detectors found nothing in
                return;
            }
        }
        DetectorContext ctx;
        ctx.key = key;
        // A short value on which no detector's gate opens is clean whatever it is, without the scan: most
        // values the memo does not know (order references, build numbers, versions) are such. Not a URL, a
        // JSON document or a base64 run, which are read further than the detectors. `quiet` goes before the
        // base64 test: it refuses a long string at once, which the scan path then searches for runs anyway.
        if (!url && scratch_->quiet_shortcuts && !looks_like_json_text(s) &&
            profile_.detector_set->quiet(s, ctx) && !may_hold_base64_run(s)) {
            ++scratch_->clean_by_quiet;
            encoded_spans_.clear();
        } else {
            // A JSON document inside the string is walked like an object (walk_encoded.cc).
            if (maybe_embedded_json(s, raw_begin, raw_end)) return;
            profile_.detector_set->scan(s, ctx, matches);
            // Base64 runs that decode to text are scanned as that text.
            inspect_base64_runs(s, matches);
            if (stopped()) {
                encoded_spans_.clear();
                return;
            }
        }
        if (!encoded_spans_.empty()) cache = nullptr;  // decided by a walk, which depends on the path
        if (matches.empty() && encoded_spans_.empty() && cache != nullptr) {
            // Escapes only ever shrink a string: equal sizes mean the raw text is `s` itself.
            const bool raw = raw_end - raw_begin - 2 == s.size();
            const uint32_t slot = cache->insert(key, s, hash, true, raw);
            if (stats != nullptr && stats->inserts < UINT16_MAX) ++stats->inserts;
            cache->link(scratch_->last_clean_slot, slot);
            scratch_->last_clean_slot = slot;
            if (stats != nullptr) stats->last_clean_slot = slot;
            value_clean_ = true;
            return;
        }
    }
    if (matches.empty() && encoded_spans_.empty() && !url) {
        value_clean_ = true;
        return;
    }
    bool drop = false;
    rewrite_string(s, raw_begin, raw_end, matches, /*on_key=*/false, drop, url);
    // A drop hit removes the whole member (or array element) that holds this string.
    if (drop) value_drop_ = true;
}

// A JSON integer shaped like an identifier (json_integer_may_be_identifier) is scanned as the digits it is
// written with, through the same rules as a string: a hit makes the value a JSON string (placeholder, mask,
// h1: token of the digits, so a numeric distinct_id hashes like the same digits sent as a string), a drop
// removes the member, report mode only counts.
void Walker::process_number(std::string_view token, size_t raw_begin, size_t raw_end) {
    value_clean_ = !profile_.has_detector_rules;
    if (!profile_.has_detector_rules) return;
    auto& matches = scratch_->matches;
    matches.clear();
    DetectorContext ctx;
    ctx.key = path_.empty() || path_.back().is_index ? std::string_view() : path_.back().key;
    profile_.detector_set->scan(token, ctx, matches);
    value_clean_ = matches.empty();
    if (matches.empty()) return;
    bool drop = false;
    rewrite_string(token, raw_begin, raw_end, matches, /*on_key=*/false, drop);
    if (drop) value_drop_ = true;
}

// Sensitive query/fragment parameters of a URL-valued string.
// $elements_chain: every attr__href="..." / href="..." value is a URL.
void Walker::scrub_chain(std::string_view s, std::vector<SpanEdit>& spans) {
    for (size_t at = s.find("href=\""); at != std::string_view::npos; at = s.find("href=\"", at + 1)) {
        const size_t begin = at + 6;
        const size_t end = s.find('"', begin);
        if (end == std::string_view::npos) break;
        scrub_url(s.substr(begin, end - begin), spans, begin);
    }
}

void Walker::scrub_url(std::string_view s, std::vector<SpanEdit>& spans, size_t offset) {
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
                if (enforce("url_sensitive_query_key", Mode::Enforce, ActionKind::Redact, "sensitive_query_key")) {
                    spans.push_back(SpanEdit{offset + i + eq + 1, offset + end, "redacted"});
                }
            }
        }
        if (end >= s.size()) break;
        i = end + 1;
    }
}

void Walker::rewrite_string(std::string_view s, size_t raw_begin, size_t raw_end,
                            const std::vector<DetectorMatch>& matches, bool on_key, bool& drop, bool url) {
    if (scratch_->tallying) [[unlikely]] {
        for (const auto& m : matches) scratch_->tally.add(m.detector);
    }
    auto& spans = scratch_->spans;
    spans.clear();
    if (!on_key) {
        spans.insert(spans.end(), encoded_spans_.begin(), encoded_spans_.end());
        encoded_spans_.clear();
    }
    if (url) {
        if (key_info_.chain)
            scrub_chain(s, spans);
        else
            scrub_url(s, spans);
    }
    bool hash_whole = false;
    const Rule* hash_rule = nullptr;
    for (const auto& m : matches) {
        const Rule* rule = detector_rule_for(m.detector, on_key);
        if (rule == nullptr) continue;
        bool overlaps = false;
        for (const auto& sp : spans) overlaps = overlaps || (m.begin < sp.end && sp.begin < m.end);
        if (overlaps || is_our_output(s, m.begin, m.end)) continue;
        if (rule->action.kind == ActionKind::Hash && looks_like_hash_token(s, rules_.hash_key->id()))
            continue;
        if (rule->action.kind == ActionKind::TruncateIp) {
            // Already truncated: not a hit (keeps filtering idempotent).
            const std::string t = truncate_ip(s.substr(m.begin, m.end - m.begin), profile_.ip);
            if (!t.empty() && t == s.substr(m.begin, m.end - m.begin)) continue;
        }
        if (!enforce(rule->id, rule->mode, rule->action.kind, detector_match_name(m.detector))) continue;
        const std::string_view hit = s.substr(m.begin, m.end - m.begin);
        switch (rule->action.kind) {
            case ActionKind::Drop:
                drop = true;
                break;
            case ActionKind::Hash:
                hash_whole = true;
                hash_rule = rule;
                break;
            case ActionKind::Mask:
                spans.push_back(SpanEdit{m.begin, m.end, mask_text(hit, rule->action.keep_last)});
                break;
            case ActionKind::TruncateIp: {
                std::string t = truncate_ip(hit, profile_.ip);
                spans.push_back(SpanEdit{m.begin, m.end, t.empty() ? redact_placeholder(m.detector) : t});
                break;
            }
            default:
                spans.push_back(SpanEdit{m.begin, m.end, redact_placeholder(m.detector)});
                break;
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
    std::sort(spans.begin(), spans.end(),
              [](const SpanEdit& a, const SpanEdit& b) { return a.begin < b.begin; });
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
bool Walker::is_our_output(std::string_view s, size_t begin, size_t end) const {
    const std::string_view hit = s.substr(begin, end - begin);
    if (hit.find("****") != std::string_view::npos) return true;
    if (rules_.hash_key && hit.find(rules_.hash_key->id() + ":") != std::string_view::npos) {
        for (size_t at = s.find(rules_.hash_key->id() + ":"); at != std::string_view::npos;
             at = s.find(rules_.hash_key->id() + ":", at + 1)) {
            if (looks_like_hash_token(s.substr(at, rules_.hash_key->id().size() + 44),
                                      rules_.hash_key->id()) &&
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

}  // namespace edgeguard::privacy::walk
