// libFuzzer target for the OTLP filter (filters/formats/otlp_filter.h, filters/otlp/): protobuf and JSON
// exports of logs, traces and metrics through RuleSet::apply with the `otel` profile of conf/privacy.yaml.
//
// Input: byte 0 picks the signal (logs, traces, metrics) and the encoding (protobuf or JSON); the rest is the
// body. Invariants (abort on violation):
//  - a verdict is a known one; a rejection carries 400/413/415/422 and a code;
//  - a rewritten export keeps its Content-Type, is read again without a decoding error, and filtering it
//    again changes nothing (placeholders, hashes and truncated addresses are never matched again);
//  - a protobuf export gets the same answer (verdict, status, code, body, audit) from the quiet pass as from
//    the inspection document alone (OtlpInspection in filters/formats/otlp_filter.h).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/filter_api.h"
#include "filters/formats/otlp_filter.h"
#include "filters/rule_set_impl.h"
#include "tests/fuzz/shipped_rules.h"

namespace edgeguard::fuzz::otlp {

using namespace edgeguard::privacy;

void require(bool condition, const char* what) { fuzz::require(condition, "otlp_fuzz", what); }

const std::shared_ptr<const RuleSet>& rules() { return fuzz::shipped_rules(); }

void initialize() { fuzz::load_shipped_rules(); }

// filter_otlp's answer with the quiet pass first or with the document alone; "throws" when it throws.
std::string answer(const FilterInput& in, PayloadKind kind, OtlpInspection inspection) {
    const auto& compiled = dynamic_cast<const CompiledRuleSet&>(*rules()).rules();
    const Profile* otel = nullptr;
    for (const auto& p : compiled.profiles) {
        if (p->name == "otel") otel = p.get();
    }
    require(otel != nullptr, "the shipped rules have the otel profile");
    try {
        const FilterOutput o = filter_otlp(*otel, compiled, in, kind, inspection);
        std::string s = std::to_string(static_cast<int>(o.verdict)) + " " + std::to_string(o.status) + " " + o.code +
                        " " + std::to_string(o.report_only_hits) + " " + o.body + " " + o.content_type;
        for (const auto& a : o.audit) s += "|" + a.rule_id + " " + a.path + " " + a.action + " " + std::to_string(a.count);
        for (const auto& id : o.rule_ids) s += "|" + id;
        return s;
    } catch (const std::exception&) {
        return "throws";
    }
}

int one_input(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    static constexpr const char* kPaths[] = {"/i/v1/logs", "/i/v1/traces", "/i/v1/metrics"};
    const uint8_t mode = data[0];
    FilterInput in;
    in.method = "POST";
    in.path = kPaths[mode % 3];
    in.content_type = (mode & 8) ? "application/json" : "application/x-protobuf";
    in.body = std::string_view(reinterpret_cast<const char*>(data + 1), size - 1);
    in.client_ip = "81.2.69.160";
    in.wire_limit = 1024 * 1024;
    const FilterOutput out = rules()->apply("otel", in);
    if (!(mode & 8)) {
        static constexpr PayloadKind kKinds[] = {PayloadKind::OtlpLogs, PayloadKind::OtlpTraces, PayloadKind::OtlpMetrics};
        require(answer(in, kKinds[mode % 3], OtlpInspection::QuietFirst) ==
                    answer(in, kKinds[mode % 3], OtlpInspection::DocumentOnly),
                "the quiet pass answers as the inspection document does");
    }
    using Verdict = FilterOutput::Verdict;
    if (out.verdict == Verdict::Rejected) {
        require(out.status == 400 || out.status == 413 || out.status == 415 || out.status == 422,
                "a rejection has a client status");
        require(!out.code.empty(), "a rejection has a code");
        return 0;
    }
    if (out.verdict != Verdict::Rewritten) return 0;
    require(out.content_type == in.content_type, "a rewritten export keeps its Content-Type");
    FilterInput second_in = in;
    second_in.body = out.body;
    const FilterOutput second = rules()->apply("otel", second_in);
    require(!(second.verdict == Verdict::Rejected && second.status != 422), "a rewritten export reads again");
    require(second.verdict == Verdict::Unchanged, "filtering twice equals filtering once");
    return 0;
}

}  // namespace edgeguard::fuzz::otlp

#ifndef EDGEGUARD_FUZZ_NO_MAIN
extern "C" int LLVMFuzzerInitialize(int*, char***) {
    edgeguard::fuzz::otlp::initialize();
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    return edgeguard::fuzz::otlp::one_input(data, size);
}
#endif
