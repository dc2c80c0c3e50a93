#include "filters/learn/observed_json.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <utility>

#include "filters/value_actions.h"

namespace edgeguard::privacy::learn {

namespace {

struct MergedEnum {
    uint64_t count = 0;
    std::set<uint32_t> clients;
};

struct MergedPath {
    uint64_t count = 0;
    uint8_t types = 0;
    uint32_t min_length = UINT32_MAX;
    uint32_t max_length = 0;
    uint64_t strings = 0, uuids = 0, timestamps = 0, person_key = 0;
    uint8_t registers[HyperLogLog::kRegisters] = {};
    std::map<std::string, uint64_t> hits;
    uint64_t hit_overflow = 0;
    std::map<std::string, MergedEnum> enums;
};

struct MergedProfile {
    uint64_t events_total = 0, events_observed = 0, paths_overflow = 0, events_overflow = 0,
             enum_overflow = 0;
    size_t memory_bytes = 0;
    std::map<std::string, uint64_t> events;
    std::map<std::string, uint64_t> observed;  // events whose properties were observed, by name
    std::map<std::pair<std::string, std::string>, MergedPath> paths;
};

void merge(const ProfileTable& table, MergedProfile& m) {
    m.events_total += table.events_total();
    m.events_observed += table.events_observed();
    m.paths_overflow += table.paths_overflow();
    m.events_overflow += table.events_overflow();
    m.enum_overflow += table.enum_overflow();
    m.memory_bytes += table.memory_bytes();
    table.for_each_event([&](const EventStats& e) {
        m.events[e.name] += e.count.get();
        m.observed[e.name] += e.observed.get();
    });
    table.for_each_path([&](const PathStats& p) {
        MergedPath& out = m.paths[{p.event, p.key}];
        out.count += p.count.get();
        out.types |= p.types.load(std::memory_order_relaxed);
        out.min_length = std::min(out.min_length, p.min_length.load(std::memory_order_relaxed));
        out.max_length = std::max(out.max_length, p.max_length.load(std::memory_order_relaxed));
        out.strings += p.strings.get();
        out.uuids += p.uuids.get();
        out.timestamps += p.timestamps.get();
        out.person_key += p.person_key.get();
        p.distinct.merge_into(out.registers);
        for (uint32_t i = 0; i < kDetectorSlots; ++i) {
            const char* name = p.hit_names[i].load(std::memory_order_acquire);
            if (name == nullptr) break;
            out.hits[name] += p.hit_counts[i].get();
        }
        out.hit_overflow += p.hit_overflow.get();
        if (const EnumTable* t = p.enums.load(std::memory_order_acquire)) {
            const uint32_t n = t->size.load(std::memory_order_acquire);
            for (uint32_t i = 0; i < n; ++i) {
                const EnumEntry* e = t->entries[i].load(std::memory_order_acquire);
                MergedEnum& me = out.enums[e->value];
                me.count += e->count.get();
                const uint32_t c = e->client_count.load(std::memory_order_acquire);
                for (uint32_t k = 0; k < c; ++k)
                    me.clients.insert(e->clients[k].load(std::memory_order_relaxed));
            }
        }
    });
}

void append_string(std::string& out, std::string_view s) {
    out.push_back('"');
    append_json_escaped(out, s);
    out.push_back('"');
}

void append_number(std::string& out, double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    out += buf;
}

void append_types(std::string& out, uint8_t types) {
    static constexpr std::pair<uint8_t, const char*> kNames[] = {
        {kString, "string"}, {kInteger, "integer"}, {kFloat, "float"}, {kBool, "bool"},
        {kNull, "null"},     {kObject, "object"},   {kArray, "array"}};
    out += '[';
    bool first = true;
    for (const auto& [bit, name] : kNames) {
        if (!(types & bit)) continue;
        if (!first) out += ',';
        first = false;
        append_string(out, name);
    }
    out += ']';
}

void append_path(std::string& out, const std::string& event, const std::string& key, const MergedPath& p,
                 uint64_t event_count) {
    out += "{\"event\":";
    append_string(out, event);
    out += ",\"key\":";
    append_string(out, key);
    out += ",\"count\":" + std::to_string(p.count) + ",\"share\":";
    append_number(out,
                  event_count == 0 ? 0.0 : static_cast<double>(p.count) / static_cast<double>(event_count));
    out += ",\"types\":";
    append_types(out, p.types);
    out += ",\"distinct_estimate\":" + std::to_string(HyperLogLog::estimate(p.registers));
    if (p.strings != 0) {
        out += ",\"strings\":" + std::to_string(p.strings) +
               ",\"min_length\":" + std::to_string(p.min_length) +
               ",\"max_length\":" + std::to_string(p.max_length) + ",\"uuid\":" + std::to_string(p.uuids) +
               ",\"timestamp\":" + std::to_string(p.timestamps);
    }
    out += ",\"person_key\":" + std::to_string(p.person_key) + ",\"detector_hits\":{";
    bool first = true;
    for (const auto& [name, count] : p.hits) {
        if (!first) out += ',';
        first = false;
        append_string(out, name);
        out += ':' + std::to_string(count);
    }
    if (p.hit_overflow != 0) {
        if (!first) out += ',';
        out += "\"other\":" + std::to_string(p.hit_overflow);
    }
    out += '}';
    if (p.strings != 0) {
        // Only values seen from kEnumClients distinct clients are shown; every other string is counted in
        // `other` (too rare, too long, a detector hit, or beyond the candidate cap).
        uint64_t listed = 0;
        out += ",\"enum\":{\"values\":{";
        first = true;
        for (const auto& [value, e] : p.enums) {
            if (e.clients.size() < kEnumClients) continue;
            if (!first) out += ',';
            first = false;
            append_string(out, value);
            out += ':' + std::to_string(e.count);
            listed += e.count;
        }
        out += "},\"other\":" + std::to_string(p.strings - std::min(listed, p.strings)) + '}';
    }
    out += '}';
}

}  // namespace

std::string render_observed_json(const ObservationStore& store) {
    std::map<std::string, MergedProfile> profiles;
    for (size_t i = 0; i < store.shard_count(); ++i)
        store.shard(i).for_each_profile([&](const ProfileTable& t) { merge(t, profiles[t.name()]); });
    const Limits& limits = store.limits();
    std::string out = "{\"limits\":{\"paths\":" + std::to_string(limits.paths) +
                      ",\"events\":" + std::to_string(limits.events) +
                      ",\"enum_values\":" + std::to_string(limits.enum_values) +
                      ",\"enum_clients\":" + std::to_string(kEnumClients) +
                      ",\"workers\":" + std::to_string(store.shard_count()) + "},\"profiles\":{";
    bool first_profile = true;
    for (const auto& [name, m] : profiles) {
        if (!first_profile) out += ',';
        first_profile = false;
        append_string(out, name);
        out += ":{\"events_total\":" + std::to_string(m.events_total) +
               ",\"events_observed\":" + std::to_string(m.events_observed) +
               ",\"events_overflow\":" + std::to_string(m.events_overflow) +
               ",\"paths\":" + std::to_string(m.paths.size()) +
               ",\"paths_overflow\":" + std::to_string(m.paths_overflow) +
               ",\"enum_overflow\":" + std::to_string(m.enum_overflow) +
               ",\"memory_bytes\":" + std::to_string(m.memory_bytes) + ",\"events\":{";
        bool first = true;
        for (const auto& [event, count] : m.events) {
            if (!first) out += ',';
            first = false;
            append_string(out, event);
            out += ':' + std::to_string(count);
        }
        out += "},\"properties\":[";
        first = true;
        for (const auto& [ek, p] : m.paths) {
            if (!first) out += ',';
            first = false;
            // A share of the events whose properties were observed, not of every event counted.
            auto it = m.observed.find(ek.first);
            append_path(out, ek.first, ek.second, p, it == m.observed.end() ? 0 : it->second);
        }
        out += "]}";
    }
    out += "}}";
    return out;
}

}  // namespace edgeguard::privacy::learn
