#include "filters/decode/multipart.h"

#include <algorithm>
#include <cstring>

namespace edgeguard::privacy {

namespace {

bool ieq(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
        if (x != y) return false;
    }
    return true;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool is_tchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != '\0';
}

// RFC 2046 bchars (a space only inside, never last).
bool is_bchar(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
    return std::strchr("'()+_,-./:=? ", c) != nullptr && c != '\0';
}

// One `; key=value` parameter list (after the media type or the disposition type). Values are tokens or
// quoted strings without quoted-pairs: an escape is read differently by different parsers, so it is refused.
struct Param {
    std::string_view key;
    std::string_view value;
};

bool parse_params(std::string_view s, std::vector<Param>& out, std::string& why) {
    while (true) {
        s = trim(s);
        if (s.empty()) return true;
        if (s.front() != ';') {
            why = "expected ';' between parameters";
            return false;
        }
        s.remove_prefix(1);
        s = trim(s);
        if (s.empty()) return true;  // a trailing ';' is tolerated, as every parser does
        size_t k = 0;
        while (k < s.size() && is_tchar(s[k])) ++k;
        if (k == 0 || k >= s.size() || s[k] != '=') {
            why = "malformed parameter";
            return false;
        }
        Param p{s.substr(0, k), {}};
        s.remove_prefix(k + 1);
        if (!s.empty() && s.front() == '"') {
            size_t end = 1;
            while (end < s.size() && s[end] != '"') {
                const unsigned char c = static_cast<unsigned char>(s[end]);
                if (c == '\\' || c < 0x20 || c == 0x7f) {
                    why = "escaped or control character in a quoted parameter";
                    return false;
                }
                ++end;
            }
            if (end >= s.size()) {
                why = "unterminated quoted parameter";
                return false;
            }
            p.value = s.substr(1, end - 1);
            s.remove_prefix(end + 1);
        } else {
            size_t v = 0;
            while (v < s.size() && is_tchar(s[v])) ++v;
            if (v == 0) {
                why = "empty parameter value";
                return false;
            }
            p.value = s.substr(0, v);
            s.remove_prefix(v);
        }
        for (const auto& seen : out) {
            if (ieq(seen.key, p.key)) {
                why = "duplicated parameter";
                return false;
            }
        }
        out.push_back(p);
    }
}

struct PartHeaders {
    std::string_view disposition;
    std::string_view content_type;
    std::string_view content_encoding;
    std::string_view transfer_encoding;
};

DecodeError bad(std::string why) { return undecodable("malformed multipart body: " + why); }

}  // namespace

DecodeResult<std::string_view> multipart_boundary(std::string_view content_type) {
    const size_t semi = content_type.find(';');
    if (!ieq(trim(content_type.substr(0, semi)), "multipart/form-data")) {
        return undecodable("Content-Type must be multipart/form-data");
    }
    if (semi == std::string_view::npos) return undecodable("multipart Content-Type without a boundary");
    std::vector<Param> params;
    std::string why;
    if (!parse_params(content_type.substr(semi), params, why)) return undecodable("multipart Content-Type: " + why);
    for (const auto& p : params) {
        if (!ieq(p.key, "boundary")) continue;
        const std::string_view b = p.value;
        if (b.empty() || b.size() > 70 || b.back() == ' ') return undecodable("invalid multipart boundary");
        if (!std::all_of(b.begin(), b.end(), is_bchar)) return undecodable("invalid multipart boundary");
        return b;
    }
    return undecodable("multipart Content-Type without a boundary");
}

DecodeResult<MultipartBody> decode_multipart(std::string_view body, std::string_view boundary,
                                             const MultipartLimits& limits) {
    MultipartBody out;
    out.boundary = boundary;
    std::string delim = "--";
    delim.append(boundary);
    std::string next_delim = "\r\n";
    next_delim.append(delim);

    if (body.substr(0, delim.size()) != delim) return bad("the body must start with the boundary delimiter");
    size_t pos = delim.size();
    uint64_t total = 0;
    size_t part_start = 0;
    while (true) {
        if (body.substr(pos, 2) == "--") {
            const std::string_view rest = body.substr(pos + 2);
            if (!rest.empty() && rest != "\r\n") return bad("bytes after the close delimiter");
            break;
        }
        if (body.substr(pos, 2) != "\r\n") return bad("the boundary delimiter line must end with CRLF");
        pos += 2;
        if (out.parts.size() == limits.max_parts) return bad("too many parts");

        // Header block: field lines up to an empty line.
        const size_t block_end = body.find("\r\n\r\n", pos == 0 ? 0 : pos - 2);
        if (block_end == std::string_view::npos) return bad("part headers are not terminated");
        if (block_end + 2 < pos) return bad("a part without headers");
        const std::string_view block = body.substr(pos, block_end + 2 - pos);
        if (block.size() > limits.max_header_bytes) return bad("part headers are too large");
        PartHeaders h;
        size_t fields = 0;
        size_t line_start = 0;
        while (line_start < block.size()) {
            const size_t crlf = block.find("\r\n", line_start);
            const std::string_view line = block.substr(line_start, crlf - line_start);
            line_start = crlf + 2;
            if (++fields > limits.max_headers) return bad("too many part headers");
            for (char c : line) {
                if (c == '\r' || c == '\n' || c == '\0') return bad("bare CR, LF or NUL in part headers");
            }
            const size_t colon = line.find(':');
            if (colon == 0 || colon == std::string_view::npos) return bad("malformed part header");
            const std::string_view name = line.substr(0, colon);
            if (!std::all_of(name.begin(), name.end(), is_tchar)) return bad("malformed part header name");
            const std::string_view value = trim(line.substr(colon + 1));
            std::string_view* slot = nullptr;
            if (ieq(name, "content-disposition")) slot = &h.disposition;
            if (ieq(name, "content-type")) slot = &h.content_type;
            if (ieq(name, "content-encoding")) slot = &h.content_encoding;
            if (ieq(name, "content-transfer-encoding")) slot = &h.transfer_encoding;
            if (slot == nullptr) continue;  // RFC 7578 §4.8: other fields are ignored
            if (slot->data() != nullptr) return bad("duplicated part header");
            *slot = value.data() == nullptr ? std::string_view(line.data() + line.size(), 0) : value;
        }

        // Content-Disposition: form-data; name="..." [; filename="..."]
        if (h.disposition.data() == nullptr) return bad("a part without Content-Disposition");
        const size_t dsemi = h.disposition.find(';');
        if (!ieq(trim(h.disposition.substr(0, dsemi)), "form-data")) return bad("disposition is not form-data");
        std::vector<Param> params;
        std::string why;
        if (dsemi == std::string_view::npos || !parse_params(h.disposition.substr(dsemi), params, why)) {
            return bad(why.empty() ? "a part without a name" : "Content-Disposition: " + why);
        }
        MultipartPart part;
        bool named = false;
        for (const auto& p : params) {
            if (ieq(p.key, "name")) {
                part.name = p.value;
                named = true;
            } else if (!ieq(p.key, "filename")) {
                return bad("unsupported Content-Disposition parameter");  // name*=, filename*=: other readings
            }
        }
        if (!named || part.name.empty()) return bad("a part without a name");
        for (const auto& other : out.parts) {
            if (other.name == part.name) return bad("duplicated part name");
        }
        if (h.transfer_encoding.data() != nullptr && !ieq(h.transfer_encoding, "binary") &&
            !ieq(h.transfer_encoding, "8bit") && !ieq(h.transfer_encoding, "7bit")) {
            return bad("unsupported Content-Transfer-Encoding");
        }
        if (h.content_type.size() >= 10 && ieq(h.content_type.substr(0, 10), "multipart/")) {
            return bad("nested multipart parts are not accepted");
        }
        part.content_type = h.content_type;
        part.content_encoding = h.content_encoding;

        // Body: up to CRLF + delimiter.
        const size_t body_start = block_end + 4;
        const size_t found = body.find(next_delim, body_start);
        if (found == std::string_view::npos) return bad("a part is not terminated by the boundary");
        part.body = body.substr(body_start, found - body_start);
        // A body that starts with the delimiter is read as an empty part by parsers that take the header
        // block's last CRLF for the delimiter's: ambiguous, so refused (and never re-emitted either).
        if (part.body.compare(0, delim.size(), delim) == 0) return bad("a part's body starts with the boundary");
        part.body_offset = body_start;
        part.part_offset = part_start;
        if (part.body.size() > limits.max_part_bytes) return too_large("a multipart part is over its size cap");
        total += part.body.size();
        if (total > limits.max_total_bytes) return too_large("the multipart parts are over their total size cap");
        out.parts.push_back(part);
        part_start = found + 2;
        pos = found + next_delim.size();
    }
    if (out.parts.empty()) return bad("no parts");
    return out;
}

DecodeResult<std::string> reencode_multipart(std::string_view body, const MultipartBody& decoded,
                                             const std::vector<PartReplacement>& replacements) {
    std::string delim = "--";
    delim.append(decoded.boundary);
    const std::string next_delim = "\r\n" + delim;
    // The close delimiter starts where the last part's body ends plus its CRLF.
    const MultipartPart& last = decoded.parts.back();
    const size_t close_start = last.body_offset + last.body.size() + 2;
    std::string out;
    out.reserve(body.size());
    size_t pos = 0;
    for (size_t i = 0; i < decoded.parts.size(); ++i) {
        const MultipartPart& part = decoded.parts[i];
        const size_t part_end = i + 1 < decoded.parts.size() ? decoded.parts[i + 1].part_offset : close_start;
        const PartReplacement* r = i < replacements.size() ? &replacements[i] : nullptr;
        if (r == nullptr || r->kind == PartReplacement::Kind::Keep) continue;
        out.append(body.substr(pos, part.part_offset - pos));
        pos = part_end;
        if (r->kind == PartReplacement::Kind::Remove) continue;
        if (r->text.find(next_delim) != std::string::npos || r->text.compare(0, delim.size(), delim) == 0) {
            return undecodable("a rewritten multipart part would contain the boundary");
        }
        out.append(body.substr(part.part_offset, part.body_offset - part.part_offset));
        out.append(r->text);
        out.append(body.substr(part.body_offset + part.body.size(), part_end - part.body_offset - part.body.size()));
    }
    out.append(body.substr(pos));
    return out;
}

}  // namespace edgeguard::privacy
