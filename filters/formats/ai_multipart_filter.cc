#include "filters/formats/ai_multipart_filter.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>

#include "filters/decode/gzip.h"
#include "filters/decode/multipart.h"
#include "filters/decode/payload_decoder.h"
#include "filters/event_walker.h"
#include "filters/formats/walk_merge.h"
#include "filters/value_actions.h"

namespace edgeguard::privacy {

namespace {

// capture's own cap on the `event` part (MAX_EVENT_SIZE in rust/capture/src/ai_endpoint.rs).
constexpr size_t kMaxEventPartBytes = 32 * 1024;
constexpr size_t kMaxParts = 128;
constexpr std::string_view kBlobPrefix = "event.properties.";

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// One part as the document the walker sees: the event itself, or an event wrapper holding the part's bytes
// as what they become (`properties`, or one property). The part's bytes sit at [value_begin, value_end).
struct WalkedPart {
    enum class Role { Event, Properties, JsonBlob, TextBlob } role = Role::Event;
    std::string wrapper;
    size_t member_begin = 0;  // where the key of the member holding the part starts
    size_t value_begin = 0;
    size_t value_end = 0;
};

simdjson::dom::parser& json_checker() {
    thread_local simdjson::dom::parser parser;
    return parser;
}

// One complete JSON value, nothing after it: a blob pasted into a wrapper must not be able to close it
// and add members of its own.
bool is_one_json_value(std::string_view bytes, bool need_object) {
    simdjson::dom::element root;
    if (json_checker().parse(bytes.data(), bytes.size(), true).get(root)) return false;
    return !need_object || root.is_object();
}

void open_wrapper(WalkedPart& w, std::string_view event_name, bool single_property, std::string_view property) {
    w.wrapper.assign("{\"event\":\"");
    append_json_escaped(w.wrapper, event_name);
    w.wrapper.append("\",");
    w.member_begin = w.wrapper.size();
    w.wrapper.append("\"properties\":");
    if (single_property) {
        w.wrapper.append("{");
        w.member_begin = w.wrapper.size();
        w.wrapper.append("\"");
        append_json_escaped(w.wrapper, property);
        w.wrapper.append("\":");
    }
    w.value_begin = w.wrapper.size();
}

void close_wrapper(WalkedPart& w, bool single_property) {
    w.value_end = w.wrapper.size();
    w.wrapper.append(single_property ? "}}" : "}");
}

// The string a JSON string token stands for.
bool unescape_token(std::string_view token, std::string& out) {
    simdjson::dom::element root;
    if (json_checker().parse(token.data(), token.size(), true).get(root)) return false;
    std::string_view s;
    if (root.get_string().get(s)) return false;
    out.assign(s);
    return true;
}

}  // namespace

FilterOutput filter_ai_multipart(const Profile& profile, const CompiledRules& rules, const FilterInput& in) {
    DecodeLimits limits = DecodeLimits::for_wire_limit(in.wire_limit);
    limits.max_ratio = profile.max_compression_ratio;
    if (in.body.empty()) return rejected_output(400, "empty_payload", "empty request body");

    // capture inflates the whole body when Content-Encoding says gzip; nothing else is decoded there.
    std::string inflated;
    std::string_view body = in.body;
    const std::string encoding = lower(trim(in.content_encoding));
    if (encoding == "gzip") {
        auto result = gzip_inflate(in.body, limits.output_cap(in.body.size()));
        if (auto* err = std::get_if<DecodeError>(&result)) return rejected_output(err->status, err->code, err->message);
        inflated = std::move(std::get<std::string>(result));
        body = inflated;
    } else if (!encoding.empty() && encoding != "identity") {
        return rejected_output(415, "unsupported_content_encoding", "Content-Encoding must be gzip or absent");
    }

    auto boundary = multipart_boundary(in.content_type);
    if (auto* err = std::get_if<DecodeError>(&boundary)) return rejected_output(err->status, err->code, err->message);
    MultipartLimits mp;
    mp.max_parts = kMaxParts;
    mp.max_part_bytes = limits.max_decoded_bytes;
    mp.max_total_bytes = limits.max_decoded_bytes;
    auto split = decode_multipart(body, std::get<std::string_view>(boundary), mp);
    if (auto* err = std::get_if<DecodeError>(&split)) return rejected_output(err->status, err->code, err->message);
    const MultipartBody& parts = std::get<MultipartBody>(split);

    // The part names capture accepts, in its order: `event` first, then its properties and blobs.
    if (parts.parts.front().name != "event") {
        return rejected_output(400, "request_parsing_error", "the first multipart part must be `event`");
    }
    const std::string_view event_part = parts.parts.front().body;
    if (event_part.size() > kMaxEventPartBytes) {
        return rejected_output(413, "payload_too_large", "the `event` part is over 32 KiB");
    }
    simdjson::dom::element event_root;
    if (json_checker().parse(event_part.data(), event_part.size(), true).get(event_root) || !event_root.is_object()) {
        return rejected_output(400, "request_parsing_error", "the `event` part must be a JSON object");
    }
    std::string event_name;
    {
        std::string_view name;
        if (!event_root["event"].get_string().get(name)) event_name.assign(name);
    }
    const bool embedded_properties = !event_root["properties"].error();

    WalkOptions options;
    options.ip_policy = in.ip_policy;
    WalkOutcome merged;
    std::vector<PartReplacement> replacements(parts.parts.size());
    bool changed = false;
    WalkedPart w;
    for (size_t i = 0; i < parts.parts.size(); ++i) {
        const MultipartPart& part = parts.parts[i];
        const std::string ce = lower(trim(part.content_encoding));
        if (!ce.empty() && ce != "identity") {
            return rejected_output(415, "unsupported_content_encoding", "a multipart part has a Content-Encoding");
        }
        if (i == 0) {
            w.role = WalkedPart::Role::Event;
        } else if (part.name == "event.properties") {
            if (embedded_properties) {
                return rejected_output(400, "request_parsing_error",
                                       "`event` has properties and an `event.properties` part");
            }
            if (!is_one_json_value(part.body, true)) {
                return rejected_output(400, "request_parsing_error", "`event.properties` must be a JSON object");
            }
            w.role = WalkedPart::Role::Properties;
            open_wrapper(w, event_name, false, {});
            w.wrapper.append(part.body);
            close_wrapper(w, false);
        } else if (part.name.substr(0, kBlobPrefix.size()) == kBlobPrefix) {
            const std::string_view property = part.name.substr(kBlobPrefix.size());
            if (property.empty() || property.find('.') != std::string_view::npos) {
                return rejected_output(400, "request_parsing_error", "blob parts name one top-level property");
            }
            if (part.body.empty()) return rejected_output(400, "request_parsing_error", "an empty blob part");
            const std::string type = lower(trim(part.content_type));
            const bool json = type == "application/json" || type.rfind("application/json;", 0) == 0;
            const bool text = type == "text/plain" || type.rfind("text/plain;", 0) == 0;
            const bool octets = type == "application/octet-stream";
            if (!json && !text && !octets) {
                return rejected_output(400, "request_parsing_error",
                                       "blob parts must be application/json, text/plain or application/octet-stream");
            }
            const bool as_json = (json || octets) && is_one_json_value(part.body, false);
            if (json && !as_json) return rejected_output(400, "request_parsing_error", "a JSON blob part is not JSON");
            if (!as_json && !simdjson::validate_utf8(part.body.data(), part.body.size())) {
                // Bytes that are neither JSON nor text cannot be inspected, so they are not forwarded.
                return rejected_output(415, "uninspectable_blob", "a binary blob part cannot be inspected");
            }
            open_wrapper(w, event_name, true, property);
            if (as_json) {
                w.role = WalkedPart::Role::JsonBlob;
                w.wrapper.append(part.body);
            } else {
                w.role = WalkedPart::Role::TextBlob;
                w.wrapper.push_back('"');
                append_json_escaped(w.wrapper, part.body);
                w.wrapper.push_back('"');
            }
            close_wrapper(w, true);
        } else {
            return rejected_output(400, "request_parsing_error", "unknown multipart part name");
        }

        const std::string_view doc = w.role == WalkedPart::Role::Event ? event_part : std::string_view(w.wrapper);
        WalkOutcome walked = walk_and_filter(profile, rules, doc, options);
        std::vector<Edit> edits = std::move(walked.edits);
        merge_walk(merged, std::move(walked));
        if (merged.status == WalkOutcome::Status::ParseError) {
            return rejected_output(400, "request_parsing_error", "invalid payload: " + merged.error);
        }
        if (merged.status == WalkOutcome::Status::Rejected || edits.empty()) continue;
        if (w.role == WalkedPart::Role::Event) {
            replacements[i] = {PartReplacement::Kind::Replace, apply_edits(event_part, edits)};
            changed = true;
            continue;
        }
        // Edits are either inside the part's bytes or remove the member that holds them.
        std::vector<Edit> inside;
        bool removed = false;
        for (auto& e : edits) {
            if (e.begin >= w.value_begin && e.end <= w.value_end) {
                inside.push_back(Edit{e.begin - w.value_begin, e.end - w.value_begin, std::move(e.text)});
            } else if (e.begin <= w.member_begin && e.end >= w.value_end) {
                removed = true;
            } else {
                return rejected_output(400, "request_parsing_error", "a part's edit does not fit the part");
            }
        }
        changed = true;
        const std::string_view value(w.wrapper.data() + w.value_begin, w.value_end - w.value_begin);
        if (removed) {
            // A dropped property: its blob goes; dropped properties as a whole leave an empty object.
            replacements[i] = w.role == WalkedPart::Role::Properties
                                  ? PartReplacement{PartReplacement::Kind::Replace, "{}"}
                                  : PartReplacement{PartReplacement::Kind::Remove, {}};
        } else if (w.role == WalkedPart::Role::TextBlob) {
            std::string text;
            if (!unescape_token(apply_edits(value, inside), text)) {
                return rejected_output(400, "request_parsing_error", "a rewritten text blob is not a string");
            }
            replacements[i] = {PartReplacement::Kind::Replace, std::move(text)};
        } else {
            replacements[i] = {PartReplacement::Kind::Replace, apply_edits(value, inside)};
        }
    }

    FilterOutput out = output_for_walk(std::move(merged));
    if (out.verdict == FilterOutput::Verdict::Rejected || !changed) return out;
    auto rebuilt = reencode_multipart(body, parts, replacements);
    if (auto* err = std::get_if<DecodeError>(&rebuilt)) return rejected_output(err->status, err->code, err->message);
    out.verdict = FilterOutput::Verdict::Rewritten;
    out.body = std::move(std::get<std::string>(rebuilt));
    out.content_type.assign(in.content_type);  // same boundary; the body is no longer gzip
    out.query.assign(in.query);
    for (const auto& a : out.audit) {
        if (a.action != "report") out.rule_ids.push_back(a.rule_id);
    }
    return out;
}

}  // namespace edgeguard::privacy
