// The privacy filter's public face: what the proxy (and the CLI) hand in, and what comes back.
// Knows nothing of sockets; one call per request body, no state kept between calls.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace edgeguard::privacy {

struct Profile;

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
    bool operator==(const AuditEntry&) const = default;
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

namespace edgeguard::privacy {

// A problem found while loading rules; line/col are 1-based positions in the YAML (0 when unknown).
struct RuleError {
    std::string file;
    int line = 0;
    int col = 0;
    std::string message;
    bool warning = false;  // e.g. a profile with `on_undecodable: pass`
};

// How a rules file may touch the machine while loading. `edgeguard check` loads with no side effects: a
// missing hash key file is then reported (with the command that creates it) instead of created, and the
// load goes on with a throw-away key so every rule and sample is still checked.
struct RuleLoadOptions {
    bool create_missing_hash_key = true;
};

// Compiled rules file (conf/privacy.yaml): immutable once loaded, shared by every worker thread.
class RuleSet {
  public:
    virtual ~RuleSet() = default;
    // Loads, validates and compiles; runs the rules' must_match/must_not_match samples. Returns null when
    // `errors` gained any non-warning entry. Never throws.
    static std::shared_ptr<const RuleSet> load(const std::string& path, std::vector<RuleError>& errors,
                                               const RuleLoadOptions& options = {});
    static std::shared_ptr<const RuleSet> load_text(const std::string& yaml, const std::string& path,
                                                    std::vector<RuleError>& errors,
                                                    const RuleLoadOptions& options = {});

    virtual bool has_profile(std::string_view name) const = 0;
    virtual std::vector<std::string> profile_names() const = 0;
    // Decodes, walks and filters one request. Thread-safe. Never throws; every failure is a Rejected verdict.
    virtual FilterOutput apply(std::string_view profile, const FilterInput& in) const = 0;
};

}  // namespace edgeguard::privacy
