#include "filters/decode/payload_decoder.h"

#include <simdjson.h>

#include <algorithm>
#include <cctype>

#include "filters/decode/base64.h"
#include "filters/decode/gzip.h"
#include "filters/decode/lz_string.h"
#include "filters/decode/url_form.h"

namespace edgeguard::privacy {
namespace {

enum class Hint { None, Gzip, LzString, Base64 };

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

// "application/x-www-form-urlencoded; charset=UTF-8" -> "application/x-www-form-urlencoded".
std::string_view media_type(std::string_view content_type) {
    return trim(content_type.substr(0, content_type.find(';')));
}

bool is_form_type(std::string_view content_type) {
    return iequals(media_type(content_type), "application/x-www-form-urlencoded");
}

bool starts_with(std::string_view s, std::string_view prefix) {
    return s.substr(0, prefix.size()) == prefix;
}

// A path or a path family: "/e" matches "/e" and "/e/..." but not "/engage".
bool path_in_family(std::string_view path, std::string_view family) {
    return starts_with(path, family) && (path.size() == family.size() || path[family.size()] == '/');
}

// capture's path_is_legacy_endpoint: /e, /capture, /engage, /track (and below).
bool is_legacy_path(std::string_view path) {
    return path_in_family(path, "/e") || starts_with(path, "/capture") || starts_with(path, "/engage") ||
           starts_with(path, "/track");
}

// Query/form `compression` values, case-insensitive as in capture; unknown values mean "no hint".
Hint hint_from_value(std::string_view raw) {
    const std::string value = percent_decode(raw);
    if (iequals(value, "gzip") || iequals(value, "gzip-js")) return Hint::Gzip;
    if (iequals(value, "lz64") || iequals(value, "lz-string")) return Hint::LzString;
    if (iequals(value, "base64") || iequals(value, "b64")) return Hint::Base64;
    return Hint::None;
}

// The Content-Encoding we can inspect. Anything else is refused (415): we cannot look inside it, and
// capture would not decode it either, so forwarding it unseen would be a blind spot.
DecodeResult<Hint> hint_from_content_encoding(std::string_view header) {
    const std::string_view v = trim(header);
    if (v.empty() || iequals(v, "identity")) return Hint::None;
    if (iequals(v, "gzip") || iequals(v, "x-gzip") || iequals(v, "gzip-js")) return Hint::Gzip;
    // Capture reads its compression hint from the header too, with the query's values (WIRE.md 2.2).
    if (iequals(v, "lz64") || iequals(v, "lz-string")) return Hint::LzString;
    if (iequals(v, "base64") || iequals(v, "b64")) return Hint::Base64;
    return DecodeError{415, "unsupported_content_encoding",
                       "unsupported Content-Encoding (gzip, lz64 and base64 are inspected)"};
}

// The payload as it moves through the steps: a view of the request, or bytes we own.
class Payload {
  public:
    explicit Payload(std::string_view original) : view_(original) {}
    std::string_view view() const { return view_; }
    bool owned() const { return owned_; }
    void replace(std::string&& bytes, std::string_view step) {
        storage_ = std::move(bytes);
        view_ = storage_;
        owned_ = true;
        padded_ = false;
        add_step(step);
    }
    // The bytes now lie in a PaddedText the caller owns.
    void replace_padded(std::string_view text, std::string_view step) {
        storage_.clear();
        view_ = text;
        owned_ = true;
        padded_ = true;
        add_step(step);
    }
    void add_step(std::string_view step) {
        if (!chain_.empty()) chain_.push_back('+');
        chain_.append(step);
    }
    DecodedPayload finish(DecodedPayload::Source source, DecodedPayload::Compression compression) && {
        DecodedPayload out;
        out.source = source;
        out.compression = compression;
        out.decoded = owned_;
        out.padded = padded_;
        out.chain = std::move(chain_);
        if (owned_ && !padded_) {
            out.storage = std::move(storage_);
        } else {
            out.original = view_;
        }
        return out;
    }

  private:
    std::string_view view_;
    std::string storage_;
    std::string chain_;
    bool owned_ = false;
    bool padded_ = false;
};

DecodeError empty_payload() {
    return DecodeError{400, "empty_payload", "request missing data payload"};
}

// The final checks every successful decode passes: UTF-8 (capture requires it) and the size cap.
std::optional<DecodeError> check_text(std::string_view text, const DecodeLimits& limits) {
    if (text.size() > limits.max_decoded_bytes) return too_large("decoded payload exceeds the limit");
    if (!simdjson::validate_utf8(text.data(), text.size())) return undecodable("payload is not valid UTF-8");
    return std::nullopt;
}

// Runs `decoder` on the payload and either takes its output or returns its error.
template <class Result>
std::optional<DecodeError> apply_step(Payload& payload, Result&& result, std::string_view step) {
    if (auto* e = std::get_if<DecodeError>(&result)) return std::move(*e);
    payload.replace(std::move(std::get<std::string>(result)), step);
    return std::nullopt;
}

bool looks_like_json(std::string_view text) {
    const size_t first = text.find_first_not_of(" \t\r\n");
    return first != std::string_view::npos && (text[first] == '{' || text[first] == '[');
}

// gzip into `padded` when given (the fast path; gzip_inflate_padded), else or on its refusal gzip_inflate.
std::optional<DecodeError> inflate_step(Payload& payload, uint64_t cap, PaddedText* padded) {
    if (padded != nullptr && gzip_inflate_padded(payload.view(), cap, *padded)) {
        payload.replace_padded(padded->text(), "gzip");
        return std::nullopt;
    }
    return apply_step(payload, gzip_inflate(payload.view(), cap), "gzip");
}

DecodeOutcome decode_capture(const FilterInput& in, const DecodeLimits& limits, PaddedText* inflate_into) {
    using Source = DecodedPayload::Source;
    using Compression = DecodedPayload::Compression;

    // 1. Legacy GET ?data= wins over the body.
    auto query_data = find_form_value(in.query, "data");
    if (auto* e = std::get_if<DecodeError>(&query_data)) return std::move(*e);
    const std::optional<std::string_view> data_in_query =
        std::get<std::optional<std::string_view>>(query_data);

    Source source = Source::Body;
    Payload payload(in.body);
    uint64_t wire_size = in.body.size();
    if (data_in_query && !data_in_query->empty()) {
        // capture reads the query and ignores the body; a request carrying both is never sent by an SDK
        // and is refused so that no version of capture can read a part we did not inspect.
        if (!in.body.empty()) return undecodable("both a ?data= query payload and a body");
        source = Source::QueryData;
        wire_size = data_in_query->size();
        std::string value = percent_decode(*data_in_query);
        repair_base64_spaces(value);
        payload.replace(std::move(value), "query");
    } else if (in.body.empty()) {
        return empty_payload();
    }

    // The query hint is known before the body is touched (the form one is read in step 3).
    Hint hint = Hint::None;
    auto query_compression = find_form_value(in.query, "compression");
    if (auto* e = std::get_if<DecodeError>(&query_compression)) return std::move(*e);
    if (const auto q = std::get<std::optional<std::string_view>>(query_compression))
        hint = hint_from_value(*q);

    auto header_hint = hint_from_content_encoding(in.content_encoding);
    if (auto* e = std::get_if<DecodeError>(&header_hint)) return std::move(*e);

    // 2. Whole-payload base64 (not a form). On failure capture keeps the bytes; so do we. lz64 text is
    // skipped (hinted by the query or the header): it is often valid base64 too, and unwrapping it would
    // destroy it (capture fails there).
    const bool lz_hinted = hint == Hint::LzString || (hint == Hint::None && std::get<Hint>(header_hint) == Hint::LzString);
    if (!lz_hinted && !looks_like_form(payload.view()) &&
        looks_like_strict_base64(payload.view())) {
        std::string bytes;
        if (base64_decode_into(payload.view(), Base64Alphabet::Standard, bytes))
            payload.replace(std::move(bytes), "base64");
    }

    // 3. Form body: capture parses it when Content-Type says so; a body that starts with `data=` is read
    // as a form too, since capture would refuse it as JSON anyway and the SDKs that send it mean a form.
    Hint form_hint = Hint::None;
    const bool form_by_type = is_form_type(in.content_type);
    if (form_by_type || (source == Source::Body && starts_with(payload.view(), "data="))) {
        if (!looks_like_form(payload.view()))
            return undecodable("expected form data in POST request payload");
        auto data = find_form_value(payload.view(), "data");
        if (auto* e = std::get_if<DecodeError>(&data)) return std::move(*e);
        auto compression = find_form_value(payload.view(), "compression");
        if (auto* e = std::get_if<DecodeError>(&compression)) return std::move(*e);
        const auto data_value = std::get<std::optional<std::string_view>>(data);
        if (!data_value || data_value->empty()) return undecodable("form has no data field");
        if (const auto c = std::get<std::optional<std::string_view>>(compression))
            form_hint = hint_from_value(*c);
        std::string value = percent_decode(*data_value);
        repair_base64_spaces(value);
        payload.replace(std::move(value), "form");
        if (source == Source::Body) source = Source::FormData;
    }

    // 4. Hint priority: query, then form, then Content-Encoding.
    if (hint == Hint::None) hint = form_hint;
    if (hint == Hint::None) hint = std::get<Hint>(header_hint);

    // 5. Decompress. gzip is detected by its magic bytes only: hints are not trusted (WIRE.md §2.3; the
    // 2023 dump sends `compression=gzip-js` with a form body). A gzip hint on non-gzip bytes changes
    // nothing: the bytes are then read as text, which is at least as strict as capture's refusal.
    // lz64 has no magic, so its hint is followed unless the payload is plainly JSON already.
    Compression compression = Compression::None;
    const uint64_t cap = limits.output_cap(wire_size);
    if (has_gzip_magic(payload.view())) {
        if (auto e = inflate_step(payload, cap, inflate_into)) return std::move(*e);
        compression = Compression::Gzip;
    } else if (hint == Hint::LzString && !looks_like_json(payload.view())) {
        if (auto e = apply_step(payload, lz_string_decompress_from_base64(payload.view(), cap), "lz64")) {
            return std::move(*e);
        }
        compression = Compression::LzString;
    }
    if (auto e = check_text(payload.view(), limits)) return std::move(*e);

    // 6. One more base64 unwrap: capture does it on legacy paths; a `compression=base64` hint (sendBeacon)
    // asks for it on any path.
    if ((is_legacy_path(in.path) || hint == Hint::Base64) && looks_like_strict_base64(payload.view())) {
        std::string bytes;
        if (base64_decode_into(payload.view(), Base64Alphabet::Standard, bytes)) {
            payload.replace(std::move(bytes), "base64");
            if (compression == Compression::None) compression = Compression::Base64;
            if (auto e = check_text(payload.view(), limits)) return std::move(*e);
        }
    }
    return std::move(payload).finish(source, compression);
}

// feature-flags' fallback for non-JSON bodies and its form reading: percent-decode (no `+` rule), drop a
// `data=` prefix, remove spaces, pad, base64-decode.
std::optional<std::string> flags_base64(std::string_view raw) {
    std::string text = percent_decode(raw, /*plus_is_space=*/false);
    std::string_view view = text;
    if (starts_with(view, "data=")) view.remove_prefix(5);
    std::string compact;
    compact.reserve(view.size() + 3);
    for (const char c : view) {
        if (c != ' ') compact.push_back(c);
    }
    while (compact.size() % 4 != 0) compact.push_back('=');
    std::string bytes;
    if (!base64_decode_into(compact, Base64Alphabet::Standard, bytes)) return std::nullopt;
    return bytes;
}

DecodeOutcome decode_flags(const FilterInput& in, const DecodeLimits& limits, PaddedText* inflate_into) {
    using Compression = DecodedPayload::Compression;
    if (in.body.empty()) return empty_payload();
    Payload payload(in.body);
    Compression compression = Compression::None;
    const std::string_view type = media_type(in.content_type);

    if (iequals(type, "application/x-www-form-urlencoded")) {
        auto bytes = flags_base64(payload.view());
        if (!bytes) return undecodable("form body is not base64");
        payload.replace(std::move(*bytes), "form+base64");
        compression = Compression::Base64;
        if (auto e = check_text(payload.view(), limits)) return std::move(*e);
        return std::move(payload).finish(DecodedPayload::Source::FormData, compression);
    }
    if (!type.empty() && !iequals(type, "application/json") && !iequals(type, "text/plain")) {
        return DecodeError{400, "request_decoding_error", "unsupported Content-Type for flags"};
    }

    // Unsupported Content-Encoding -> 415. gzip is detected by magic bytes; the service also inflates on
    // a gzip hint alone, but then a non-gzip body fails there, while we read it as text (stricter).
    auto header_hint = hint_from_content_encoding(in.content_encoding);
    if (auto* e = std::get_if<DecodeError>(&header_hint)) return std::move(*e);
    if (has_gzip_magic(payload.view())) {
        if (auto e = inflate_step(payload, limits.output_cap(in.body.size()), inflate_into))
            return std::move(*e);
        compression = Compression::Gzip;
    }
    if (!looks_like_json(payload.view())) {
        if (auto bytes = flags_base64(payload.view())) {
            payload.replace(std::move(*bytes), "base64");
            if (compression == Compression::None) compression = Compression::Base64;
        }
    }
    if (auto e = check_text(payload.view(), limits)) return std::move(*e);
    return std::move(payload).finish(DecodedPayload::Source::Body, compression);
}

}  // namespace

DecodeLimits DecodeLimits::for_wire_limit(uint64_t wire_limit) {
    DecodeLimits limits;
    limits.max_decoded_bytes = wire_limit * 5;
    return limits;
}

uint64_t DecodeLimits::output_cap(uint64_t input_bytes) const {
    if (max_ratio <= 0) return max_decoded_bytes;  // ratio cap off: the size cap alone bounds memory
    const double by_ratio = max_ratio * static_cast<double>(input_bytes);
    const uint64_t ratio_cap = by_ratio >= static_cast<double>(max_decoded_bytes)
                                   ? max_decoded_bytes
                                   : static_cast<uint64_t>(by_ratio);
    return std::min(max_decoded_bytes, std::max(ratio_floor_bytes, ratio_cap));
}

WireFormat wire_format_for_path(std::string_view path) {
    return path_in_family(path, "/flags") || path_in_family(path, "/decide") ? WireFormat::Flags
                                                                             : WireFormat::Capture;
}

DecodeOutcome decode_payload(const FilterInput& in, const DecodeLimits& limits, PaddedText* inflate_into) {
    return decode_payload(in, limits, wire_format_for_path(in.path), inflate_into);
}

DecodeOutcome decode_payload(const FilterInput& in, const DecodeLimits& limits, WireFormat format,
                             PaddedText* inflate_into) {
    return format == WireFormat::Flags ? decode_flags(in, limits, inflate_into)
                                       : decode_capture(in, limits, inflate_into);
}

}  // namespace edgeguard::privacy
