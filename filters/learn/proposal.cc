#include "filters/learn/proposal.h"

#include <simdjson.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdio>

#include "filters/path_pattern.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy::learn {

bool ObservedProperty::has(std::string_view type) const {
    return std::find(types.begin(), types.end(), type) != types.end();
}

uint64_t ObservedProperty::hits() const {
    uint64_t n = 0;
    for (const auto& [name, count] : detector_hits) n += count;
    return n;
}

namespace {

namespace dom = simdjson::dom;

uint64_t u64(dom::object e, const char* field) {
    uint64_t v = 0;
    if (e[field].get(v)) v = 0;  // absent: 0
    return v;
}

void merge_property(dom::object p, ObservedProperty& out) {
    out.count += u64(p, "count");
    out.strings += u64(p, "strings");
    out.uuids += u64(p, "uuid");
    out.timestamps += u64(p, "timestamp");
    out.person_key += u64(p, "person_key");
    out.distinct_estimate = std::max(out.distinct_estimate, u64(p, "distinct_estimate"));
    if (u64(p, "strings") != 0) {
        out.min_length = std::min<uint32_t>(out.min_length, static_cast<uint32_t>(u64(p, "min_length")));
        out.max_length = std::max<uint32_t>(out.max_length, static_cast<uint32_t>(u64(p, "max_length")));
    }
    dom::array types;
    if (!p["types"].get(types))
        for (dom::element t : types) {
            std::string_view s;
            if (!t.get(s) && !out.has(s)) out.types.emplace_back(s);
        }
    dom::object hits;
    if (!p["detector_hits"].get(hits))
        for (auto [name, count] : hits) {
            uint64_t n = 0;
            if (count.get(n)) n = 0;
            out.detector_hits[std::string(name)] += n;
        }
    dom::object en;
    if (!p["enum"].get(en)) {
        dom::object values;
        if (!en["values"].get(values))
            for (auto [value, count] : values) {
                uint64_t n = 0;
                if (count.get(n)) n = 0;
                out.enum_values[std::string(value)] += n;
            }
        out.enum_other += u64(en, "other");
    }
    std::string_view event;
    if (!p["event"].get(event)) out.events.emplace_back(event);
}

std::string yaml_quoted(std::string_view s) {
    std::string out = "\"";
    append_json_escaped(out, s);
    out += '"';
    return out;
}

std::string percent(uint64_t part, uint64_t whole) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g%%", whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / whole);
    return buf;
}

std::string hits_text(const ObservedProperty& p) {
    std::string s;
    for (const auto& [name, count] : p.detector_hits)
        s += (s.empty() ? "" : ", ") + name + " " + std::to_string(count);
    return s;
}

// The allowlist type the evidence supports, and a note on how it was chosen.
std::string field_type(const ObservedProperty& p, std::string& note) {
    std::vector<std::string> kinds;
    for (const auto& t : p.types)
        if (t != "null") kinds.push_back(t);
    auto only = [&](std::initializer_list<const char*> allowed) {
        if (kinds.empty()) return false;
        for (const auto& k : kinds)
            if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return k == a; }))
                return false;
        return true;
    };
    if (only({"bool"})) return "bool";
    if (only({"integer"})) return "integer";
    if (only({"integer", "float"})) return "number";
    if (only({"string"})) {
        if (p.uuids == p.strings) return "uuid";
        if (p.timestamps == p.strings) return "timestamp";
        if (p.enum_other == 0 && !p.enum_values.empty()) {
            std::string list = "{enum: [";
            bool first = true;
            for (const auto& [value, count] : p.enum_values) {
                list += (first ? "" : ", ") + yaml_quoted(value);
                first = false;
            }
            return list + "]}";
        }
        note = "string, length " + std::to_string(p.min_length) + ".." + std::to_string(p.max_length);
        return "string";
    }
    if (kinds.empty())
        note = "only null seen";
    else if (kinds.size() > 1)
        note = "mixed types";
    return "any";
}

// Why a property is not proposed; empty when it is.
std::string left_out_reason(const ObservedProperty& p, uint64_t events_observed, double min_share) {
    if (p.hits() != 0) return "detector hits (" + hits_text(p) + ")";
    if (p.person_key != 0) return "a key rule names it as personal data";
    if (p.key.find_first_of("*?[") != std::string::npos) return "the key holds glob characters";
    const double share = events_observed == 0 ? 0.0 : static_cast<double>(p.count) / events_observed;
    if (share < min_share) return "rare: " + percent(p.count, events_observed) + " of events";
    return {};
}

// Said only when the learn rate left events unobserved: the counts are over the observed ones.
std::string observed_part(const ObservedProfile& observed) {
    if (observed.events_observed == observed.events_total) return {};
    return " (properties observed on " + std::to_string(observed.events_observed) + " of them)";
}

// Inserts `block` at the end of the top-level `profiles:` mapping of `rules`.
bool insert_into_profiles(const std::string& rules, const std::string& block, std::string& out) {
    size_t pos = 0;
    size_t profiles_line = std::string::npos;
    while (pos < rules.size()) {
        const size_t eol = std::min(rules.find('\n', pos), rules.size());
        const std::string_view line(rules.data() + pos, eol - pos);
        if (profiles_line == std::string::npos) {
            if (line.rfind("profiles:", 0) == 0) profiles_line = pos;
        } else if (!line.empty() && line[0] != ' ' && line[0] != '#' && line[0] != '\t') {
            out = rules.substr(0, pos) + block + rules.substr(pos);
            return true;
        }
        pos = eol + 1;
    }
    if (profiles_line == std::string::npos) return false;
    out = rules;
    if (!out.empty() && out.back() != '\n') out += '\n';
    out += block;
    return true;
}

}  // namespace

bool read_observed(std::string_view json, std::string_view profile, ObservedProfile& out,
                   std::string& error) {
    dom::parser parser;
    dom::element root;
    if (parser.parse(json.data(), json.size()).get(root)) {
        error = "the observation is not valid JSON";
        return false;
    }
    dom::object p;
    if (root["profiles"][profile].get(p)) {
        error = "profile `" + std::string(profile) +
                "` observed nothing: set `learn: true` on it in the rules and send it traffic";
        return false;
    }
    out.name = std::string(profile);
    out.events_total = u64(p, "events_total");
    uint64_t observed = 0;
    out.events_observed = p["events_observed"].get(observed) ? out.events_total : observed;
    out.paths_overflow = u64(p, "paths_overflow");
    std::map<std::string, ObservedProperty> by_key;
    dom::array props;
    if (!p["properties"].get(props))
        for (dom::element e : props) {
            dom::object o;
            std::string_view key;
            if (e.get(o) || o["key"].get(key)) continue;
            ObservedProperty& prop = by_key[std::string(key)];
            prop.key = std::string(key);
            merge_property(o, prop);
        }
    for (auto& [key, prop] : by_key) out.properties.push_back(std::move(prop));
    return true;
}

bool write_proposal(const ObservedProfile& observed, const ProposalOptions& options, std::string& yaml,
                    std::string& error) {
    char share[32];
    std::snprintf(share, sizeof share, "%g", options.min_share * 100.0);
    std::string block = "  # Proposed by `edgeguard learn` from " + std::to_string(observed.events_total) +
                        " events of profile `" + observed.name + "`" + observed_part(observed) +
                        " (properties on fewer than " + share + "% of events left out).\n";
    block +=
        "  # Each line's comment is its evidence: events carrying it, share, distinct values (estimate),\n"
        "  # detector hits. Try it with `mode: report` first; `edgeguard learn --diff` shows what it "
        "drops.\n";
    if (observed.paths_overflow != 0)
        block += "  # " + std::to_string(observed.paths_overflow) +
                 " observations did not fit the observation cap: rarer properties may be missing.\n";
    block += "  " + options.proposed_name + ":\n";
    if (!options.rules_text.empty()) block += "    extends: " + options.source_profile + "\n";
    block +=
        "    allowlists:\n      - id: learnt-properties\n        events: [\"*\"]\n        unlisted: drop\n"
        "        properties:\n";
    std::string left_out;
    size_t listed = 0;
    for (const auto& p : observed.properties) {
        const std::string reason = left_out_reason(p, observed.events_observed, options.min_share);
        if (!reason.empty()) {
            // Only the key and the reason: never a value.
            left_out += "          # left out " + yaml_quoted(p.key) + ": " + reason + "\n";
            continue;
        }
        std::string note;
        const std::string type = field_type(p, note);
        block += "          # " + std::to_string(p.count) + " events (" +
                 percent(p.count, observed.events_observed) + "), ~" + std::to_string(p.distinct_estimate) +
                 " distinct, no detector hits" + (note.empty() ? "" : ", " + note) + "\n";
        block += "          " + yaml_quoted(p.key) + ": " + type + "\n";
        ++listed;
    }
    block += left_out;
    if (listed == 0) {
        error = "no property qualifies for the proposal (all rare, personal or unseen)";
        return false;
    }
    if (options.rules_text.empty()) {
        yaml = "# A proposed allowlist profile (conf/privacy.yaml syntax).\nversion: 1\nprofiles:\n" + block;
        return true;
    }
    if (!insert_into_profiles(options.rules_text, block, yaml)) {
        error = "the rules file has no top-level `profiles:` mapping";
        return false;
    }
    return true;
}

bool diff_proposal(const ObservedProfile& observed, const std::string& rules_yaml, std::string_view profile,
                   std::string& report, std::string& error) {
    struct Listed {
        std::string glob;
        std::string type;
    };
    std::vector<Listed> listed;
    try {
        YAML::Node root = YAML::Load(rules_yaml);
        YAML::Node p = root["profiles"][std::string(profile)];
        if (!p || !p["allowlists"]) {
            error = "profile `" + std::string(profile) + "` has no allowlists in the proposal";
            return false;
        }
        for (const auto& list : p["allowlists"])
            for (const auto& prop : list["properties"]) {
                Listed l{prop.first.as<std::string>(), "string"};
                if (prop.second.IsScalar())
                    l.type = prop.second.as<std::string>();
                else if (prop.second["enum"])
                    l.type = "enum";
                else if (prop.second["type"])
                    l.type = prop.second["type"].as<std::string>();
                listed.push_back(std::move(l));
            }
    } catch (const YAML::Exception& e) {
        error = std::string("the proposal is not valid YAML: ") + e.what();
        return false;
    }
    report = "profile `" + observed.name + "`: " + std::to_string(observed.events_total) + " events" +
             observed_part(observed) + "\n";
    size_t dropped = 0;
    uint64_t widest = 0;
    for (const auto& p : observed.properties) {
        auto it = std::find_if(listed.begin(), listed.end(),
                               [&](const Listed& l) { return glob_match(l.glob, p.key); });
        std::string why;
        if (it == listed.end()) {
            why = "not listed";
        } else if (it->type == "enum" && p.enum_other != 0) {
            why = "enum: " + std::to_string(p.enum_other) + " values outside the list";
        } else if ((it->type == "integer" && (p.has("float") || p.has("string") || p.has("bool"))) ||
                   (it->type == "number" && (p.has("string") || p.has("bool"))) ||
                   (it->type == "bool" && (p.has("string") || p.has("integer"))) ||
                   (it->type == "uuid" && p.uuids != p.strings)) {
            why = "some values are not " + it->type;
        } else {
            continue;
        }
        ++dropped;
        widest = std::max(widest, p.count);
        report += "  drop " + yaml_quoted(p.key) + " on " + percent(p.count, observed.events_observed) +
                  " of events (" + std::to_string(p.count) + "): " + why +
                  (p.hits() != 0 ? "; detector hits: " + hits_text(p) : "") + "\n";
    }
    report += std::to_string(dropped) + " of " + std::to_string(observed.properties.size()) +
              " observed properties would be dropped; at least " + percent(widest, observed.events_observed) +
              " of events would lose a property\n";
    return true;
}

}  // namespace edgeguard::privacy::learn
