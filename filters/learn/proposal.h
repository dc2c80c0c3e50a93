// Turns what a profile observed (the JSON of /privacy/observed) into a proposed allowlist profile in
// conf/privacy.yaml syntax, and compares a proposal with what was observed (`edgeguard learn --diff`).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy::learn {

// One property key of one profile, summed over every event name it was seen with.
struct ObservedProperty {
    std::string key;
    uint64_t count = 0;
    uint64_t strings = 0, uuids = 0, timestamps = 0, person_key = 0;
    uint64_t distinct_estimate = 0;  // the largest per-event estimate (estimates cannot be summed)
    uint32_t min_length = UINT32_MAX, max_length = 0;
    std::vector<std::string> types;  // "string", "integer", "float", "bool", "null", "object", "array"
    std::map<std::string, uint64_t> detector_hits;
    std::map<std::string, uint64_t> enum_values;  // k-anonymous values only
    uint64_t enum_other = 0;                      // strings not among enum_values
    std::vector<std::string> events;
    bool has(std::string_view type) const;
    uint64_t hits() const;
};

struct ObservedProfile {
    std::string name;
    uint64_t events_total = 0;
    // Events whose properties were observed (the learn rate): every count and share is over these.
    uint64_t events_observed = 0;
    uint64_t paths_overflow = 0;
    std::vector<ObservedProperty> properties;  // by key
};

// Reads the observation JSON for `profile`. False with a reason when the JSON is malformed or the profile
// observed nothing (not learning, or no traffic yet).
bool read_observed(std::string_view json, std::string_view profile, ObservedProfile& out, std::string& error);

struct ProposalOptions {
    std::string source_profile;  // the profile that learnt (the proposal extends it when rules are given)
    std::string proposed_name;   // the new profile's name
    double min_share = 0.001;    // rarer properties are left out
    std::string rules_text;      // a rules file to add the profile to; empty: a standalone rules file
};

// The proposed rules file: typed properties with their evidence as comments, and every property left
// out with the reason. Never contains an observed value other than k-anonymous enum members.
bool write_proposal(const ObservedProfile& observed, const ProposalOptions& options, std::string& yaml,
                    std::string& error);

// What the allowlist of `profile` in `rules_yaml` would drop of what was observed, one line per property,
// with the share of events that carried it. False with a reason when the file or profile is unusable.
bool diff_proposal(const ObservedProfile& observed, const std::string& rules_yaml, std::string_view profile,
                   std::string& report, std::string& error);

}  // namespace edgeguard::privacy::learn
