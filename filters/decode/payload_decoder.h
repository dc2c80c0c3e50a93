// Turns one PostHog request (query + body + headers) into the JSON text capture would see, in capture's own
// order (WIRE.md §2.2-2.3, §3 for /flags, §8). Fails closed: whatever capture could interpret, we decode
// the same way or reject; we never hand back bytes we did not understand.
//
// Order (capture): query `data=` (non-empty) before the body; whole-payload strict base64 when it is not a
// form; form `data` (Content-Type form, or a body starting with `data=`) with the `+`->space repair;
// gzip by magic bytes 1f 8b (hints are recorded but not trusted: WIRE.md §2.3); lz64 by the
// `compression=lz64|lz-string` hint (query, then form); UTF-8 check; one more base64 unwrap on legacy
// paths (/e, /capture, /engage, /track) or with `compression=base64`. /flags and /decide follow the
// feature-flags service instead (form = percent-decode + base64; JSON/text with gzip and a base64 fallback).
//
// Statuses:
//   400 request_decoding_error   undecodable (bad gzip, bad lz64, invalid UTF-8/UTF-16, bad form, duplicate
//   keys) 400 empty_payload            no `data=` in the query and an empty body 400 request_decoding_error
//   also: both a non-empty `?data=` and a body (capture reads only the query) 413 payload_too_large decoded
//   size over max_decoded_bytes or over the compression-ratio cap 415 unsupported_content_encoding  a
//   Content-Encoding other than identity/gzip (br, deflate, zstd, lists):
//                                we cannot inspect it, and capture would not decode it either
//
// Re-encoding for forwarding: none is needed. A rewritten payload is forwarded as plain JSON
// (Content-Type: application/json, no Content-Encoding, `data`/`compression` removed from the query — see
// query_without_keys in url_form.h); capture accepts plain JSON on every route. An unchanged payload is
// forwarded byte-identical in its original encoding, so the decoded text is never re-compressed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

#include "filters/decode/decode_error.h"
#include "filters/decode/padded_text.h"
#include "filters/filter_api.h"

namespace edgeguard::privacy {

struct DecodeLimits {
    // Hard cap on the decoded JSON size; capture's production budget is 5x the wire limit.
    uint64_t max_decoded_bytes = 100 * 1024 * 1024;
    // Decoded/wire ratio above which a payload is treated as a bomb (413). Real JSON batches compress
    // 5-20x; the ratio only applies once the output exceeds ratio_floor_bytes so tiny payloads (where
    // gzip headers dominate) are never refused. 0 = no ratio cap (profile option max_compression_ratio).
    double max_ratio = 100.0;
    uint64_t ratio_floor_bytes = 1024 * 1024;

    // Capture's defaults for a route whose wire limit is `wire_limit`.
    static DecodeLimits for_wire_limit(uint64_t wire_limit);
    // The most output a decoder may produce from `input_bytes` of encoded input.
    uint64_t output_cap(uint64_t input_bytes) const;
};

// Which service's decoding rules apply: capture (events, replay) or feature-flags (/flags, /decide).
enum class WireFormat { Capture, Flags };
WireFormat wire_format_for_path(std::string_view path);

struct DecodedPayload {
    enum class Source { Body, QueryData, FormData };
    enum class Compression { None, Gzip, LzString, Base64 };

    Source source = Source::Body;
    Compression compression = Compression::None;  // the step that produced the JSON (not the hint)
    bool decoded = false;                         // false: json() is the original body bytes, untouched
    // The decoded bytes lie in the caller's PaddedText (decoded == true): followed by zeroed padding, so
    // they can be parsed where they are. Valid until that buffer is prepared again.
    bool padded = false;
    std::string storage;        // owns the decoded bytes when decoded && !padded
    std::string_view original;  // when decoded == false: the untouched body; when padded: the buffer's text
    std::string chain;  // e.g. "form+base64+gzip", for audit and logs; "" when not decoded

    // The JSON text to walk. Valid while this object (and, when !decoded, the request body; when padded,
    // the PaddedText) lives.
    std::string_view json() const { return decoded && !padded ? std::string_view(storage) : original; }
};

using DecodeOutcome = std::variant<DecodedPayload, DecodeError>;

// Decodes per the wire format of in.path (wire_format_for_path). Never throws. With `inflate_into`, a gzip
// body whose inflated text is the final payload is inflated into that buffer (DecodedPayload::padded).
DecodeOutcome decode_payload(const FilterInput& in, const DecodeLimits& limits,
                             PaddedText* inflate_into = nullptr);
DecodeOutcome decode_payload(const FilterInput& in, const DecodeLimits& limits, WireFormat format,
                             PaddedText* inflate_into = nullptr);

}  // namespace edgeguard::privacy
