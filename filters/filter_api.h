// The privacy filter's public face: what the proxy (and the CLI) hand in, and what comes back.
// Knows nothing of sockets; one call per request body, no state kept between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

class Profile;

enum class IpPolicy { Forward, Truncate, Drop };

struct FilterInput {
    std::string_view method;            // "POST", "GET", ...
    std::string_view path;              // normalized request path, e.g. "/batch/"
    std::string_view query;             // raw query string without '?', may be empty
    std::string_view content_type;      // request header value, may be empty
    std::string_view content_encoding;  // request header value, may be empty
    std::string_view body;              // whole wire body (already de-chunked)
    std::string_view client_ip;         // textual client address, for $ip policy
    IpPolicy ip_policy = IpPolicy::Forward;
    uint64_t wire_limit = 20 * 1024 * 1024;  // the route's body limit; decoded cap derives from it
};

// One line of the audit: never carries the matched value.
struct AuditEntry {
    std::string rule_id;
    std::string path;    // JSON path template, e.g. "batch[*].properties.$set.email"
    std::string action;  // "reject", "drop", "redact", "mask", "hash", "truncate_ip", "report"
    uint32_t count = 0;
};

struct FilterOutput {
    enum class Verdict { Unchanged, Rewritten, Rejected } verdict = Verdict::Unchanged;
    // Rejected: HTTP status (400/413/415/422...), a stable machine code and a human message that names
    // rule ids and never echoes request data.
    int status = 0;
    std::string code;
    std::string error;
    std::vector<std::string> rule_ids;
    // Rewritten: what to send upstream instead. The body is plain JSON; the proxy sets
    // Content-Type: application/json, drops Content-Encoding and fixes Content-Length.
    std::string body;
    std::string query;  // rewritten query (data= removed/replaced, compression hint dropped)
    bool query_changed = false;
    std::vector<AuditEntry> audit;  // filled in every verdict (report-mode hits too)
    bool report_only_hits = false;  // a report-mode rule would have acted
};

}  // namespace edgeguard::privacy
