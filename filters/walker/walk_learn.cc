// What a profile with `learn: true` records of each event (filters/learn/): the event name, who sent it
// (as a keyed hash, for the k-anonymity of enum candidates) and the shape of every top-level property.
// Runs only when the profile learns, and property by property only for the events within its rate
// (learn_events_per_second); the walk itself is unchanged.
#include "filters/walker/value_shapes.h"
#include "filters/walker/walker.h"

namespace edgeguard::privacy::walk {

// Counts the event and decides whether its properties are observed (the profile's rate); for an observed
// one, finds who sent it: the event's distinct_id (top level, or in properties as posthog-js sends it), the
// client address when there is none. Leaves `obj` rewound. False: invalid JSON.
bool Walker::learn_event(od::object& obj) {
    learn_observing_ = options_.observe->event_seen(event_name_);
    if (!learn_observing_) return true;
    learn_client_id_ = options_.client_ip;
    learn_client_hashed_ = false;
    auto read_id = [&](od::value& v) {
        std::string_view id;
        if (!v.get_string().get(id)) {
            learn_client_id_ = id;
        } else {
            std::string_view tok = v.raw_json_token();  // a numeric distinct_id
            while (!tok.empty() && is_ws(tok.back())) tok.remove_suffix(1);
            if (!tok.empty()) learn_client_id_ = tok;
        }
    };
    od::value v;
    auto found = obj.find_field_unordered("distinct_id");
    bool rewound = false;
    if (!found.get(v)) {
        read_id(v);
    } else if (found.error() != simdjson::NO_SUCH_FIELD) {
        return false;
    } else {
        if (obj.reset().get(rewound)) return false;
        od::object props;
        auto p = obj.find_field_unordered("properties");
        if (!p.get(v) && !v.get_object().get(props)) {
            od::value id;
            if (!props.find_field_unordered("distinct_id").get(id)) read_id(id);
        }
    }
    return !obj.reset().get(rewound);
}

// Clients are counted, never stored: a 32-bit keyed hash of the id. The key is derived once per thread and
// profile from the rules' hash key (an HMAC per event cost more than the rest of the observation), and the
// hash never leaves the process (only the number of distinct clients per enum value does).
uint32_t Walker::learn_client() {
    if (!learn_client_hashed_) {
        Scratch& scratch = *scratch_;
        if (scratch.learn_seed_owner != profile_.unique_id || scratch.learn_seed.empty()) {
            scratch.learn_seed = options_.client_key->token("edgeguard learn: client key");
            scratch.learn_seed_owner = profile_.unique_id;
        }
        learn_client_hash_ =
            static_cast<uint32_t>(learn::mix64(fast_string_hash(scratch.learn_seed, learn_client_id_)));
        learn_client_hashed_ = true;
    }
    return learn_client_hash_;
}

// One member of `properties`, just walked: [vbegin, vend) is its raw JSON text.
void Walker::observe_member(std::string_view key, const Decision& d, size_t vbegin, size_t vend,
                            bool person_key) {
    if (vend <= vbegin) return;
    const std::string_view raw(base_ + vbegin, vend - vbegin);
    learn::ValueObservation obs;
    obs.event = event_name_;
    obs.key = key;
    obs.value_hash = learn::mix64(fast_string_hash(raw));
    obs.person_key = person_key || d.rule != nullptr;
    obs.hits = &scratch_->tally;
    switch (raw[0]) {
        case '"': {
            obs.type = learn::kString;
            const std::string_view inner =
                raw.size() >= 2 ? raw.substr(1, raw.size() - 2) : std::string_view();
            obs.length = static_cast<uint32_t>(inner.size());
            obs.uuid = is_uuid(inner);
            obs.timestamp = !obs.uuid && is_iso_timestamp(inner);
            // An enum candidate passed every detector: walked (not replaced, not typed), scanned, clean.
            if (d.kind == Decision::Kind::Walk && !obs.person_key && profile_.has_detector_rules &&
                value_clean_ && scratch_->tally.empty() && !inner.empty() &&
                inner.find('\\') == std::string_view::npos) {
                obs.enum_candidate = inner;
                obs.client = learn_client();
            }
            break;
        }
        case '{':
            obs.type = learn::kObject;
            break;
        case '[':
            obs.type = learn::kArray;
            break;
        case 't':
        case 'f':
            obs.type = learn::kBool;
            break;
        case 'n':
            obs.type = learn::kNull;
            break;
        default:
            obs.type = raw.find_first_of(".eE") == std::string_view::npos ? learn::kInteger : learn::kFloat;
            break;
    }
    options_.observe->observe(obs);
}

}  // namespace edgeguard::privacy::walk
