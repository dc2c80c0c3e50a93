#include "filters/rule_set_impl.h"

#include <fstream>
#include <sstream>

#include "filters/decode/payload_decoder.h"
#include "filters/decode/url_form.h"
#include "filters/event_walker.h"
#include "filters/formats/ai_multipart_filter.h"
#include "filters/formats/otlp_filter.h"
#include "filters/formats/payload_kind.h"
#include "filters/json_non_finite.h"
#include "filters/rules_loader.h"

namespace edgeguard::privacy {

namespace {

FilterOutput rejected(int status, std::string code, std::string error) {
    FilterOutput out;
    out.verdict = FilterOutput::Verdict::Rejected;
    out.status = status;
    out.code = std::move(code);
    out.error = std::move(error);
    return out;
}

}  // namespace

std::shared_ptr<const RuleSet> RuleSet::load(const std::string& path, std::vector<RuleError>& errors,
                                             const RuleLoadOptions& options) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        errors.push_back(RuleError{path, 0, 0, "cannot read the rules file", false});
        return nullptr;
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    return load_text(buffer.str(), path, errors, options);
}

std::shared_ptr<const RuleSet> RuleSet::load_text(const std::string& yaml, const std::string& path,
                                                  std::vector<RuleError>& errors, const RuleLoadOptions& options) {
    try {
        auto compiled = load_rules(yaml, path, errors, options);
        if (!compiled) return nullptr;
        return std::make_shared<CompiledRuleSet>(std::move(compiled));
    } catch (const std::exception& e) {
        errors.push_back(RuleError{path, 0, 0, std::string("rules could not be loaded: ") + e.what(), false});
        return nullptr;
    }
}

const Profile* CompiledRuleSet::find(std::string_view name) const {
    for (const auto& p : rules_->profiles) {
        if (p->name == name) return p.get();
    }
    return nullptr;
}

bool CompiledRuleSet::has_profile(std::string_view name) const { return find(name) != nullptr; }

std::vector<std::string> CompiledRuleSet::profile_names() const {
    std::vector<std::string> names;
    for (const auto& p : rules_->profiles) names.push_back(p->name);
    return names;
}

FilterOutput CompiledRuleSet::apply(std::string_view profile_name, const FilterInput& in) const {
    const Profile* profile = find(profile_name);
    if (profile == nullptr) {
        return rejected(500, "privacy_profile_missing", "the route names a privacy profile that is not loaded");
    }
    const PayloadKind kind = payload_kind_for_path(in.path);
    if (kind != PayloadKind::PostHogJson) {
        FilterOutput out;
        try {
            out = kind == PayloadKind::AiMultipart ? filter_ai_multipart(*profile, *rules_, in)
                                                   : filter_otlp(*profile, *rules_, in, kind);
        } catch (const std::exception&) {
            out = rejected(400, "request_decoding_error", "the payload could not be decoded");
        }
        // A body these formats could not read (anything but a rule's verdict) is forwarded only when the
        // profile says so.
        if (out.verdict == FilterOutput::Verdict::Rejected && out.status != 422 && profile->pass_undecodable) {
            FilterOutput pass;
            pass.audit.push_back(AuditEntry{"on_undecodable", "", "pass", 1});
            return pass;
        }
        return out;
    }
    auto undecodable = [&](int status, std::string code, std::string message) {
        if (profile->pass_undecodable) {
            FilterOutput out;
            out.audit.push_back(AuditEntry{"on_undecodable", "", "pass", 1, ""});
            return out;
        }
        return rejected(status, std::move(code), std::move(message));
    };
    // A gzip body is inflated into this thread's padded buffer and walked there (no copy); the buffer is
    // freed after a request that made it larger than the walker keeps.
    struct ReleaseLarge {
        ~ReleaseLarge() { release_decode_buffer_if_large(); }
    } release_large;
    DecodeOutcome decoded;
    try {
        DecodeLimits limits = DecodeLimits::for_wire_limit(in.wire_limit);
        limits.max_ratio = profile->max_compression_ratio;
        decoded = decode_payload(in, limits, &thread_decode_buffer());
    } catch (const std::exception&) {
        return undecodable(400, "request_decoding_error", "the payload could not be decoded");
    }
    if (auto* err = std::get_if<DecodeError>(&decoded)) return undecodable(err->status, err->code, err->message);
    const DecodedPayload& payload = std::get<DecodedPayload>(decoded);

    WalkOptions options;
    options.ip_policy = in.ip_policy;
    if (profile->learn && in.observations != nullptr) [[unlikely]] {
        options.observe = in.observations->profile(profile->name);
        if (options.observe != nullptr) options.observe->begin_request(profile->learn_events_per_second);
        options.client_key = rules_->hash_key != nullptr ? rules_->hash_key.get() : &in.observations->client_key();
        options.client_ip = in.client_ip;
    }
    WalkOutcome walked;
    // NaN / Infinity where the profile accepts them (the flags service does): walked as same-length numbers,
    // forwarded as they were.
    std::string finite;
    std::string_view to_walk = payload.json();
    if (profile->non_finite_numbers && mask_non_finite_numbers(to_walk, finite)) to_walk = finite;
    options.padded_input = payload.padded && to_walk.data() == payload.json().data();
    try {
        walked = walk_and_filter(*profile, *rules_, to_walk, options);
    } catch (const std::exception&) {
        return undecodable(400, "request_parsing_error", "the payload could not be inspected");
    }
    if (walked.status == WalkOutcome::Status::ParseError) {
        return undecodable(400, "request_parsing_error", "invalid payload: " + walked.error);
    }
    if (walked.status == WalkOutcome::Status::Rejected) {
        std::string ids;
        for (const auto& id : walked.reject_rule_ids) ids += (ids.empty() ? "" : ", ") + id;
        // 422, not 5xx: SDKs retry 5xx and network errors only, so a rejected batch is not resent forever.
        FilterOutput out = rejected(422, "privacy_rule_rejected", "rejected by privacy rule(s): " + ids);
        out.rule_ids = std::move(walked.reject_rule_ids);
        out.audit = std::move(walked.audit);
        out.report_only_hits = walked.report_only_hits;
        return out;
    }
    FilterOutput out;
    out.audit = std::move(walked.audit);
    out.report_only_hits = walked.report_only_hits;
    if (walked.edits.empty()) return out;  // Unchanged: forwarded byte-identical in its original encoding

    out.verdict = FilterOutput::Verdict::Rewritten;
    out.body = apply_edits(payload.json(), walked.edits);
    for (const auto& a : out.audit) {
        if (a.action != "report") out.rule_ids.push_back(a.rule_id);
    }
    // The body is now plain JSON: the query must not claim it is compressed or carry the old payload.
    std::string query = query_without_keys(in.query, {"data", "compression"});
    out.query_changed = query != in.query;
    out.query = std::move(query);
    return out;
}

}  // namespace edgeguard::privacy
