// The concrete RuleSet: decode (filters/decode), walk and filter (event_walker), splice, answer.
#pragma once

#include <memory>

#include "filters/filter_api.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

class CompiledRuleSet final : public RuleSet {
public:
    explicit CompiledRuleSet(std::shared_ptr<const CompiledRules> rules) : rules_(std::move(rules)) {}

    bool has_profile(std::string_view name) const override;
    std::vector<std::string> profile_names() const override;
    FilterOutput apply(std::string_view profile, const FilterInput& in) const override;

    const CompiledRules& rules() const { return *rules_; }

private:
    const Profile* find(std::string_view name) const;
    std::shared_ptr<const CompiledRules> rules_;
};

}  // namespace edgeguard::privacy
