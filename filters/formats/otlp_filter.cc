#include "filters/formats/otlp_filter.h"

#include <algorithm>
#include <cctype>

#include "filters/decode/gzip.h"
#include "filters/decode/payload_decoder.h"
#include "filters/event_walker.h"
#include "filters/formats/walk_merge.h"
#include "filters/otlp/otlp_formats.h"
#include "filters/walker/quiet_probe.h"

namespace edgeguard::privacy {

namespace {

std::string media_type(std::string_view header) {
    header = header.substr(0, header.find(';'));
    while (!header.empty() && (header.front() == ' ' || header.front() == '\t')) header.remove_prefix(1);
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t')) header.remove_suffix(1);
    std::string out(header);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

// Per thread: the readers keep their parsed messages, buffers and the inspection document between requests.
struct OtlpScratch {
    std::unique_ptr<otlp::ProtobufExportReader> protobuf = otlp::make_protobuf_reader();
    std::unique_ptr<otlp::ExportReader> json = otlp::make_json_reader();
    otlp::InspectionDoc doc;
    otlp::QuietRecords records;
    std::vector<otlp::SlotChange> changes;
};

OtlpScratch& scratch() {
    thread_local OtlpScratch s;
    return s;
}

}  // namespace

FilterOutput filter_otlp(const Profile& profile, const CompiledRules& rules, const FilterInput& in, PayloadKind kind,
                         OtlpInspection inspection) {
    if (in.body.empty()) return rejected_output(400, "empty_payload", "empty request body");
    const std::string type = media_type(in.content_type);
    const bool protobuf = type == "application/x-protobuf" || type == "application/protobuf";
    if (!protobuf && type != "application/json") {
        return rejected_output(415, "unsupported_content_type",
                               "OTLP bodies must be application/x-protobuf or application/json");
    }
    std::string inflated;
    std::string_view body = in.body;
    const std::string encoding = media_type(in.content_encoding);
    if (encoding == "gzip") {
        DecodeLimits limits = DecodeLimits::for_wire_limit(in.wire_limit);
        limits.max_ratio = profile.max_compression_ratio;
        auto result = gzip_inflate(in.body, limits.output_cap(in.body.size()));
        if (auto* err = std::get_if<DecodeError>(&result)) return rejected_output(err->status, err->code, err->message);
        inflated = std::move(std::get<std::string>(result));
        body = inflated;
    } else if (!encoding.empty() && encoding != "identity") {
        return rejected_output(415, "unsupported_content_encoding", "Content-Encoding must be gzip or absent");
    }

    OtlpScratch& s = scratch();
    otlp::ExportReader& reader = protobuf ? static_cast<otlp::ExportReader&>(*s.protobuf) : *s.json;
    WalkOptions options;
    options.ip_policy = in.ip_policy;
    std::string error;
    if (protobuf) {
        bool records_known = false;
        if (inspection == OtlpInspection::QuietFirst) {
            walk::QuietProbe probe(profile, rules, options);
            if (otlp::protobuf_quiet_pass(body, kind, probe, s.records)) return output_for_walk(WalkOutcome{});
            records_known = s.records.complete;
        }
        // An unreadable protobuf export is a decoding failure, not invalid JSON: its own code keeps the
        // edgeguard_privacy_requests_total{verdict} of the two apart.
        if (!s.protobuf->parse(body, kind, error)) return rejected_output(400, "invalid_protobuf", "invalid payload: " + error);
        // Only the records the walker acts on are read into the document.
        s.protobuf->build(s.doc, records_known ? &s.records.loud : nullptr);
    } else if (!reader.read(body, kind, s.doc, error)) {
        return rejected_output(400, "request_parsing_error", "invalid payload: " + error);
    }

    WalkOutcome walked = walk_and_filter(profile, rules, s.doc.text(), options);
    if (walked.status == WalkOutcome::Status::ParseError) {
        return rejected_output(400, "request_parsing_error", "invalid payload: " + walked.error);
    }
    std::vector<Edit> edits = std::move(walked.edits);
    FilterOutput out = output_for_walk(std::move(walked));
    if (out.verdict == FilterOutput::Verdict::Rejected || edits.empty()) return out;

    s.changes.clear();
    if (!s.doc.resolve(edits, s.changes)) {
        // Never forward what could not be rewritten as the rules asked.
        return rejected_output(400, "request_parsing_error", "the export could not be rewritten");
    }
    std::string rewritten;
    if (!reader.write(s.doc, s.changes, rewritten)) {
        return rejected_output(400, "request_parsing_error", "the export could not be re-encoded");
    }
    out.verdict = FilterOutput::Verdict::Rewritten;
    out.body = std::move(rewritten);
    out.content_type.assign(in.content_type);
    out.query.assign(in.query);
    for (const auto& a : out.audit) {
        if (a.action != "report") out.rule_ids.push_back(a.rule_id);
    }
    return out;
}

}  // namespace edgeguard::privacy
