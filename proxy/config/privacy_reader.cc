// ConfigLoader: reads `privacy:` and the rules file it names.
#include "proxy/config/config_loader.h"

namespace edgeguard {

void ConfigLoader::read_privacy(const YAML::Node& n) {
    r_.read_map(n, "privacy",
                {{"rules",
                  [&](const YAML::Node& v) {
                      auto file = r_.string(v, "privacy.rules");
                      if (!file) return;
                      cfg_.privacy_rules_file = config_files::resolve_path(dir_, *file);
                      privacy_rules_node_.reset(v);
                  },
                  true}});
}

// Returns the rules file bytes (for the config hash).
std::string ConfigLoader::load_privacy() {
    const std::string why = config_files::unreadable_reason(cfg_.privacy_rules_file);
    if (!why.empty()) {
        r_.error(privacy_rules_node_, "privacy.rules: file '" + cfg_.privacy_rules_file + "' " + why);
        return "";
    }
    auto bytes = config_files::read_file(cfg_.privacy_rules_file);
    if (!bytes) {
        r_.error(privacy_rules_node_, "privacy.rules: cannot read '" + cfg_.privacy_rules_file + "'");
        return "";
    }
    std::vector<privacy::RuleError> rule_errors;
    privacy::RuleLoadOptions rule_options;
    rule_options.create_missing_hash_key = options_.create_missing_hash_key;
    auto rules = privacy::RuleSet::load_text(*bytes, cfg_.privacy_rules_file, rule_errors, rule_options);
    for (const privacy::RuleError& e : rule_errors) {
        ConfigError ce{e.file.empty() ? cfg_.privacy_rules_file : e.file, e.line, e.col, e.message};
        (e.warning ? r_.warnings() : r_.errors()).push_back(std::move(ce));
    }
    if (!rules) {
        bool any_error = false;
        for (const auto& e : rule_errors) any_error = any_error || !e.warning;
        if (!any_error)
            r_.error(privacy_rules_node_,
                     "privacy.rules: '" + cfg_.privacy_rules_file + "' did not load");
    }
    cfg_.privacy = rules;
    return *bytes;
}

}  // namespace edgeguard
