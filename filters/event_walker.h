// One pass over a decoded PostHog payload with simdjson On-Demand: finds every event in every accepted
// shape, applies the profile's rules and collects byte-range edits against the original JSON text.
// Nothing is re-serialized here; rule_set_impl.cc splices the edits.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "filters/decode/padded_text.h"
#include "filters/filter_api.h"
#include "filters/hmac_key.h"
#include "filters/learn/observation_store.h"
#include "filters/rules_model.h"

namespace edgeguard::privacy {

// Replace bytes [begin, end) of the walked text with `text` (already JSON-escaped where needed).
struct Edit {
    size_t begin = 0;
    size_t end = 0;
    std::string text;
};

struct WalkOutcome {
    enum class Status { Ok, ParseError, Rejected } status = Status::Ok;
    std::string error;                       // ParseError: why (never echoes data)
    std::vector<std::string> reject_rule_ids;  // Rejected: the enforcing rules that fired
    std::vector<Edit> edits;                 // sorted by begin, disjoint
    std::vector<AuditEntry> audit;
    bool report_only_hits = false;
};

// What the payload is expected to be: the capture/replay/flags request root, or any JSON value (a
// nested document such as a decompressed replay field).
enum class WalkShape { Request, AnyValue };

struct WalkOptions {
    IpPolicy ip_policy = IpPolicy::Forward;
    // Set only when the profile learns (filters/learn/): where its property observations go, the key that
    // hashes client identities for k-anonymity, and the client address used when an event has no distinct_id.
    learn::ProfileTable* observe = nullptr;
    const HmacKey* client_key = nullptr;
    std::string_view client_ip;
    // The text passed to walk_and_filter is followed by PaddedText::kPadding zero bytes (it lies in
    // thread_decode_buffer()): it is parsed where it lies instead of being copied.
    bool padded_input = false;
};

// Thread-safe: all mutable state is per call (plus per-thread scratch reused across calls).
WalkOutcome walk_and_filter(const Profile& profile, const CompiledRules& rules, std::string_view json,
                            const WalkOptions& options);

// This thread's buffer for a request's decoded text (decode_payload's inflate_into), kept across requests
// up to the size the walker keeps its own buffers for; release_decode_buffer_if_large() frees a larger one.
PaddedText& thread_decode_buffer();
void release_decode_buffer_if_large();

// Applies sorted, disjoint edits to `text`.
std::string apply_edits(std::string_view text, const std::vector<Edit>& edits);

}  // namespace edgeguard::privacy
