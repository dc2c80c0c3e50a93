// Reads conf/privacy.yaml into CompiledRules. Every problem becomes a RuleError with a 1-based line and
// column from yaml-cpp's marks; unknown keys are errors so a typo never silently disables a rule.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "filters/filter_api.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

// Null when `errors` gained any non-warning entry. Runs every rule's must_match/must_not_match samples.
std::shared_ptr<const CompiledRules> load_rules(const std::string& yaml_text, const std::string& path,
                                                std::vector<RuleError>& errors, const RuleLoadOptions& options = {});

}  // namespace edgeguard::privacy
