#include "proxy/http2/response_fields.h"

#include "proxy/http1/http_headers.h"

namespace edgeguard {

namespace {

bool connection_specific(std::string_view lower_name) {
    return lower_name == "connection" || lower_name == "keep-alive" || lower_name == "proxy-connection" ||
           lower_name == "transfer-encoding" || lower_name == "upgrade";
}

uint8_t* bytes(const char* p) { return reinterpret_cast<uint8_t*>(const_cast<char*>(p)); }

}  // namespace

bool http2_response_fields(std::string_view head, std::string& storage, std::vector<nghttp2_nv>& out) {
    out.clear();
    storage.clear();
    // Names are copied lower-cased; reserving the head's size keeps every pointer into storage valid.
    storage.reserve(head.size() + 3);
    size_t line_end = head.find("\r\n");
    if (line_end == std::string_view::npos || !head.starts_with("HTTP/1.1 ") || line_end < 12) return false;
    const std::string_view status = head.substr(9, 3);
    for (char c : status)
        if (c < '0' || c > '9') return false;
    storage.append(status);
    out.push_back({bytes(":status"), bytes(storage.data()), 7, 3, NGHTTP2_NV_FLAG_NONE});
    size_t pos = line_end + 2;
    while (pos < head.size()) {
        line_end = head.find("\r\n", pos);
        if (line_end == std::string_view::npos) return false;
        if (line_end == pos) return true;  // the blank line
        const std::string_view line = head.substr(pos, line_end - pos);
        pos = line_end + 2;
        const size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) return false;
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        const size_t name_at = storage.size();
        for (char c : line.substr(0, colon)) storage.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c);
        const std::string_view name(storage.data() + name_at, colon);
        if (connection_specific(name)) {
            storage.resize(name_at);
            continue;
        }
        out.push_back({bytes(name.data()), bytes(value.data()), name.size(), value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    return false;
}

}  // namespace edgeguard
