// Shared by tests/unit/filter_*_test.cc: load the test rules, run one body, check JSON validity.
#pragma once

#include <gtest/gtest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "filters/filter_api.h"

namespace edgeguard::privacy::testing {

inline std::string source_path(const std::string& rel) { return std::string(EDGEGUARD_SOURCE_DIR) + "/" + rel; }
inline std::string shared_dir() { return EDGEGUARD_SHARED_DIR; }

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline void set_test_hash_keys() {
    ::setenv("EDGEGUARD_TEST_HASH_KEY", "test-key-0123456789abcdef-not-secret", 1);
    ::setenv("EDGEGUARD_HASH_KEY", "test-key-0123456789abcdef-not-secret", 1);
}

inline std::shared_ptr<const RuleSet> load_rules_file(const std::string& path) {
    set_test_hash_keys();
    std::vector<RuleError> errors;
    auto rules = RuleSet::load(path, errors);
    for (const auto& e : errors) {
        if (!e.warning) ADD_FAILURE() << e.file << ":" << e.line << ":" << e.col << ": " << e.message;
    }
    return rules;
}

inline std::shared_ptr<const RuleSet> test_rules() {
    return load_rules_file(source_path("tests/fixtures/privacy/test_rules.yaml"));
}

inline std::shared_ptr<const RuleSet> default_rules() { return load_rules_file(source_path("conf/privacy.yaml")); }

inline FilterOutput run(const RuleSet& rules, std::string_view profile, std::string_view body,
                        std::string_view content_type = "application/json", std::string_view content_encoding = "",
                        std::string_view query = "", std::string_view path = "/batch/",
                        IpPolicy policy = IpPolicy::Forward) {
    FilterInput in;
    in.method = "POST";
    in.path = path;
    in.query = query;
    in.content_type = content_type;
    in.content_encoding = content_encoding;
    in.body = body;
    in.client_ip = "81.23.45.67";
    in.ip_policy = policy;
    return rules.apply(profile, in);
}

inline bool valid_json(std::string_view text) {
    simdjson::dom::parser parser;
    simdjson::padded_string padded(text);
    simdjson::dom::element doc;
    return parser.parse(padded).get(doc) == simdjson::SUCCESS;
}

inline const char* verdict_name(FilterOutput::Verdict v) {
    switch (v) {
        case FilterOutput::Verdict::Unchanged: return "Unchanged";
        case FilterOutput::Verdict::Rewritten: return "Rewritten";
        case FilterOutput::Verdict::Rejected: return "Rejected";
    }
    return "?";
}

}  // namespace edgeguard::privacy::testing
