#include "proxy/pipeline/http_errors.h"

#include <charconv>

namespace edgeguard {

std::string_view reason_phrase(int status) {
    switch (status) {
        case 100: return "Continue";
        case 101: return "Switching Protocols";
        case 103: return "Early Hints";
        case 200: return "OK";
        case 201: return "Created";
        case 202: return "Accepted";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 301: return "Moved Permanently";
        case 302: return "Found";
        case 303: return "See Other";
        case 304: return "Not Modified";
        case 307: return "Temporary Redirect";
        case 308: return "Permanent Redirect";
        case 400: return "Bad Request";
        case 401: return "Unauthorized";
        case 403: return "Forbidden";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 409: return "Conflict";
        case 411: return "Length Required";
        case 413: return "Content Too Large";
        case 414: return "URI Too Long";
        case 415: return "Unsupported Media Type";
        case 417: return "Expectation Failed";
        case 422: return "Unprocessable Content";
        case 429: return "Too Many Requests";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        case 502: return "Bad Gateway";
        case 503: return "Service Unavailable";
        case 504: return "Gateway Timeout";
        case 505: return "HTTP Version Not Supported";
        default: return "Unknown";
    }
}

void append_json_escaped(std::string& out, std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(c);
        } else if (u < 0x20) {
            out.append("\\u00");
            out.push_back(kHex[u >> 4]);
            out.push_back(kHex[u & 0xf]);
        } else {
            out.push_back(c);
        }
    }
}

static void append_number(std::string& out, uint64_t n) {
    char buf[24];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    (void)ec;
    out.append(buf, end);
}

void append_json_response(std::string& out, int status, std::string_view json_body, bool close_connection,
                          std::string_view extra_headers) {
    out.append("HTTP/1.1 ");
    append_number(out, static_cast<uint64_t>(status));
    out.push_back(' ');
    out.append(reason_phrase(status));
    out.append("\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: ");
    append_number(out, json_body.size());
    out.append("\r\n");
    out.append(extra_headers);
    if (close_connection) out.append("Connection: close\r\n");
    out.append("\r\n");
    out.append(json_body);
}

void append_error_response(std::string& out, int status, std::string_view message, bool close_connection) {
    std::string body;
    body.reserve(48 + message.size());
    body.append("{\"error\":\"");
    append_json_escaped(body, message);
    body.append("\",\"status\":");
    append_number(body, static_cast<uint64_t>(status));
    body.push_back('}');
    append_json_response(out, status, body, close_connection);
}

std::string privacy_rejection_body(int status, std::string_view code, std::string_view error) {
    std::string body;
    body.append("{\"status\":");
    append_number(body, static_cast<uint64_t>(status));
    body.append(",\"code\":\"");
    append_json_escaped(body, code);
    body.append("\",\"error\":\"");
    append_json_escaped(body, error);
    body.append("\"}");
    return body;
}

}  // namespace edgeguard
