#include "proxy/tcp/tcp_log_line.h"

#include <cstdio>

#include "proxy/ops/access_log.h"

namespace edgeguard {

namespace {

void append_optional_string(std::string& out, std::string_view s) {
    if (s.empty())
        out += "null";
    else
        append_json_string(out, s);
}

}  // namespace

void append_tcp_log_line(std::string& out, const TcpLogEntry& e) {
    char num[64];
    const uint64_t ts = static_cast<uint64_t>(e.start_unix_micros < 0 ? 0 : e.start_unix_micros);
    std::snprintf(num, sizeof num, "{\"ts\":%llu.%06llu", static_cast<unsigned long long>(ts / 1'000'000),
                  static_cast<unsigned long long>(ts % 1'000'000));
    out += num;
    out += ",\"kind\":\"tcp\",\"listener\":";
    append_json_string(out, e.listener);
    out += ",\"client_ip\":";
    append_json_string(out, e.client.str());
    std::snprintf(num, sizeof num, ",\"client_port\":%u", static_cast<unsigned>(e.client_port));
    out += num;
    out += ",\"upstream\":";
    append_optional_string(out, e.upstream);
    out += ",\"server\":";
    append_optional_string(out, e.server);
    std::snprintf(num, sizeof num, ",\"bytes_in\":%llu,\"bytes_out\":%llu,\"duration_ms\":%llu.%03llu",
                  static_cast<unsigned long long>(e.bytes_in), static_cast<unsigned long long>(e.bytes_out),
                  static_cast<unsigned long long>(e.duration_micros / 1000),
                  static_cast<unsigned long long>(e.duration_micros % 1000));
    out += num;
    out += ",\"end\":";
    append_json_string(out, e.end);
    out += "}\n";
}

}  // namespace edgeguard
