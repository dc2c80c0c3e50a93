// multipart/form-data (RFC 7578 on RFC 2046), read strictly: the boundary comes from the Content-Type
// header, the body must be exactly delimiter, parts, close delimiter, and every part must name itself with
// one Content-Disposition: form-data; name="...". Whatever a lenient parser could read differently from the
// service behind us (a preamble, transport padding, a duplicated name, a nested multipart, a transfer
// encoding, a bare LF) is refused, because inspecting one reading while the service acts on another is a
// bypass. Parts are views into the body: nothing is copied.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "filters/decode/decode_error.h"

namespace edgeguard::privacy {

struct MultipartLimits {
    size_t max_parts = 64;
    uint64_t max_part_bytes = 16 * 1024 * 1024;   // one part's body
    uint64_t max_total_bytes = 64 * 1024 * 1024;  // the sum of the parts' bodies
    size_t max_header_bytes = 8 * 1024;           // one part's header block
    size_t max_headers = 16;                      // header fields in one part
};

struct MultipartPart {
    std::string_view name;              // Content-Disposition name (unquoted; quoted-pairs refused)
    std::string_view content_type;      // the part's Content-Type value, "" when absent
    std::string_view content_encoding;  // the part's Content-Encoding value, "" when absent
    std::string_view body;              // the part's bytes (a view into the request body)
    size_t body_offset = 0;             // where `body` starts in the request body
    size_t part_offset = 0;             // where the part's delimiter line starts (its leading CRLF excluded)
};

struct MultipartBody {
    std::string_view boundary;
    std::vector<MultipartPart> parts;
};

// The boundary parameter of a `multipart/form-data` Content-Type (1-70 bchars, quoted or a token).
// Any other media type, a missing or malformed boundary -> 400.
DecodeResult<std::string_view> multipart_boundary(std::string_view content_type);

// Splits `body` into its parts; every violation is a 400 naming what was wrong (never the data), a part or
// the total over its cap a 413.
DecodeResult<MultipartBody> decode_multipart(std::string_view body, std::string_view boundary,
                                             const MultipartLimits& limits);

// The request body with the bodies of some parts replaced and some parts removed, every other byte as it
// came. `replacements[i]` applies to parts[i]: `keep` leaves it byte-identical, `remove` drops the part with
// its delimiter, otherwise `text` becomes its body. A replacement that contains the delimiter is refused
// (400): the re-emitted body would split differently.
struct PartReplacement {
    enum class Kind { Keep, Replace, Remove } kind = Kind::Keep;
    std::string text;
};
DecodeResult<std::string> reencode_multipart(std::string_view body, const MultipartBody& decoded,
                                             const std::vector<PartReplacement>& replacements);

}  // namespace edgeguard::privacy
