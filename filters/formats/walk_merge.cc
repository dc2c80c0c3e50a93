#include "filters/formats/walk_merge.h"

#include <algorithm>

namespace edgeguard::privacy {

FilterOutput rejected_output(int status, std::string code, std::string error) {
    FilterOutput out;
    out.verdict = FilterOutput::Verdict::Rejected;
    out.status = status;
    out.code = std::move(code);
    out.error = std::move(error);
    return out;
}

void merge_walk(WalkOutcome& into, WalkOutcome&& part) {
    for (auto& a : part.audit) {
        auto same = std::find_if(into.audit.begin(), into.audit.end(), [&](const AuditEntry& e) {
            return e.rule_id == a.rule_id && e.path == a.path && e.action == a.action;
        });
        if (same != into.audit.end()) same->count += a.count;
        else into.audit.push_back(std::move(a));
    }
    for (auto& id : part.reject_rule_ids) {
        if (std::find(into.reject_rule_ids.begin(), into.reject_rule_ids.end(), id) == into.reject_rule_ids.end())
            into.reject_rule_ids.push_back(std::move(id));
    }
    into.report_only_hits = into.report_only_hits || part.report_only_hits;
    if (into.status == WalkOutcome::Status::Ok && part.status != WalkOutcome::Status::Ok) {
        into.status = part.status;
        into.error = std::move(part.error);
    }
}

FilterOutput output_for_walk(WalkOutcome&& merged) {
    if (merged.status == WalkOutcome::Status::Rejected) {
        std::string ids;
        for (const auto& id : merged.reject_rule_ids) ids += (ids.empty() ? "" : ", ") + id;
        // 422, not 5xx: SDKs retry 5xx and network errors only, so a refused body is not resent forever.
        FilterOutput out = rejected_output(422, "privacy_rule_rejected", "rejected by privacy rule(s): " + ids);
        out.rule_ids = std::move(merged.reject_rule_ids);
        out.audit = std::move(merged.audit);
        out.report_only_hits = merged.report_only_hits;
        return out;
    }
    FilterOutput out;
    out.audit = std::move(merged.audit);
    out.report_only_hits = merged.report_only_hits;
    return out;
}

}  // namespace edgeguard::privacy
