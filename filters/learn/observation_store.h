// What `learn: true` profiles observe of live traffic, without keeping values: per profile, per event name
// and per top-level property (`properties.<key>`), the JSON types seen, a count, a distinct-value estimate,
// the string length range, detector hits by detector, and — only for short strings that passed every
// detector and came from at least kEnumClients distinct clients — the value as an enum candidate.
//
// Memory is bounded: at most Limits::paths (event, property) pairs per profile and worker,
// Limits::enum_values candidates per property; what does not fit is counted, never stored. CPU is bounded
// too: every event is counted, but only up to the profile's `learn_events_per_second` per worker are
// observed property by property (a token bucket, a second's worth of burst), so under load observation
// costs a fixed share of a core and shares are taken over the observed events. Each worker writes
// its own shard (no lock, no shared cache line on the request path); readers merge the shards
// (observed_json.cc). The store belongs to the Server, not to a config snapshot, so a reload keeps what was
// learnt.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "filters/hmac_key.h"
#include "filters/learn/hyperloglog.h"

namespace edgeguard::privacy::learn {

struct Limits {
    uint32_t paths = 20000;         // (event, property) pairs per profile and worker
    uint32_t events = 1000;         // event names per profile and worker
    uint32_t enum_values = 50;      // enum candidates per property
    uint32_t enum_paths = 2000;     // properties per profile and worker that keep enum candidates
    uint32_t enum_max_length = 32;  // longer strings are never candidates
};

// A value is offered as an enum member only once this many distinct clients sent it (k-anonymity).
constexpr uint32_t kEnumClients = 10;
constexpr uint32_t kMaxProfiles = 16;
constexpr uint32_t kDetectorSlots = 6;

// Milliseconds of a monotonic clock; the store reads it once per request of a learning profile.
using Clock = uint64_t (*)();
uint64_t monotonic_ms();

enum TypeBit : uint8_t {
    kString = 1,
    kInteger = 2,
    kFloat = 4,
    kBool = 8,
    kNull = 16,
    kObject = 32,
    kArray = 64,
};

// Detector hits inside one property value (the walker fills it while the value is walked).
struct DetectorTally {
    std::string_view names[kDetectorSlots];
    uint32_t counts[kDetectorSlots] = {};
    uint32_t used = 0;
    uint32_t overflow = 0;
    void clear() {
        used = 0;
        overflow = 0;
    }
    bool empty() const { return used == 0 && overflow == 0; }
    void add(std::string_view detector) {
        for (uint32_t i = 0; i < used; ++i)
            if (names[i] == detector) {
                ++counts[i];
                return;
            }
        if (used == kDetectorSlots) {
            ++overflow;
            return;
        }
        names[used] = detector;
        counts[used++] = 1;
    }
};

// One property value as the walker saw it. Never holds the value, except `enum_candidate`.
struct ValueObservation {
    std::string_view event;
    std::string_view key;
    uint8_t type = 0;         // one TypeBit
    uint64_t value_hash = 0;  // of the raw JSON text: the distinct estimate, and equal values hash equal
    uint32_t length = 0;      // strings: unescaped bytes
    bool uuid = false;        // a string in UUID form
    bool timestamp = false;   // a string in ISO-8601 form
    bool person_key = false;  // a key rule names this key (email, phone, name, ...)
    const DetectorTally* hits = nullptr;
    std::string_view enum_candidate;  // set only for short strings no detector hit
    uint32_t client = 0;              // keyed hash of the client (enum candidates only)
};

// Single-writer counters: the owning worker stores, readers load (relaxed; no read-modify-write needed).
struct Counter {
    std::atomic<uint64_t> value{0};
    void add(uint64_t n = 1) {
        value.store(value.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t get() const { return value.load(std::memory_order_relaxed); }
};

struct EnumEntry {
    std::string value;  // immutable once published
    Counter count;
    std::atomic<uint32_t> clients[kEnumClients] = {};
    std::atomic<uint32_t> client_count{0};
};

struct EnumTable {
    std::vector<std::atomic<EnumEntry*>> entries;  // published in order; size fixed at Limits::enum_values
    std::vector<std::unique_ptr<EnumEntry>> owned;
    // The writer's own: each entry's value hash, in entry order, so a lookup compares words, not strings.
    std::vector<uint64_t> hashes;
    std::atomic<uint32_t> size{0};
    Counter overflow;  // values that did not fit
    explicit EnumTable(uint32_t capacity) : entries(capacity) { hashes.reserve(capacity); }
};

struct EventStats;

struct PathStats {
    std::string event;  // immutable once published
    std::string key;
    uint64_t hash = 0;
    // The writer's own: the event name's entry, and the path observed right after this one last time
    // (events of one kind repeat their order of properties, so it predicts the next lookup).
    const EventStats* owner = nullptr;
    PathStats* next_hint = nullptr;
    Counter count;
    std::atomic<uint8_t> types{0};
    std::atomic<uint32_t> min_length{UINT32_MAX};
    std::atomic<uint32_t> max_length{0};
    Counter strings;
    Counter uuids;
    Counter timestamps;
    Counter person_key;
    HyperLogLog distinct;
    std::atomic<const char*> hit_names[kDetectorSlots] = {};  // interned detector ids (ProfileTable::intern)
    Counter hit_counts[kDetectorSlots];
    Counter hit_overflow;
    std::atomic<EnumTable*> enums{nullptr};
};

struct EventStats {
    std::string name;
    uint64_t hash = 0;
    Counter count;     // every event of this name
    Counter observed;  // those whose properties were observed (within the rate)
    PathStats* first_hint = nullptr;  // the writer's own: the first path observed in the last such event
};

// One profile's observations on one worker.
class ProfileTable {
  public:
    ProfileTable(std::string name, const Limits& limits, Clock clock);
    const std::string& name() const { return name_; }

    // Once per request, before its events: refills the observation budget for `events_per_second`
    // (0: every event is observed).
    void begin_request(uint32_t events_per_second);
    // Every event of the profile passes here once. True when its properties are to be observed (the
    // budget had room); false: the event is only counted.
    bool event_seen(std::string_view event);
    void observe(const ValueObservation& obs);

    // ---- readers (any thread) ----
    template <typename Fn>
    void for_each_path(Fn&& fn) const {
        for (const auto& slot : path_index_)
            if (const PathStats* p = slot.load(std::memory_order_acquire)) fn(*p);
    }
    template <typename Fn>
    void for_each_event(Fn&& fn) const {
        for (const auto& slot : event_index_)
            if (const EventStats* e = slot.load(std::memory_order_acquire)) fn(*e);
    }
    uint64_t events_total() const { return events_total_.get(); }
    uint64_t events_observed() const { return events_observed_.get(); }
    uint64_t paths_overflow() const { return paths_overflow_.get(); }
    uint64_t events_overflow() const { return events_overflow_.get(); }
    uint64_t enum_overflow() const { return enum_paths_overflow_.get(); }
    uint32_t path_count() const { return path_count_.load(std::memory_order_relaxed); }
    // What the table holds, kept by the writer so a reader never walks the writer's vectors.
    size_t memory_bytes() const { return memory_bytes_.load(std::memory_order_relaxed); }

  private:
    PathStats* find_path(std::string_view event, std::string_view key);
    PathStats* find_or_add_path(std::string_view event, std::string_view key);
    EnumTable* enum_table(PathStats& p);
    const char* intern(std::string_view detector);

    std::string name_;
    Limits limits_;
    Clock clock_;
    // The observation budget (writer only): events that may still be observed, refilled with time.
    uint32_t rate_ = 0;
    uint64_t budget_ = 0;
    uint64_t refilled_ms_ = 0;
    bool budget_started_ = false;
    // The event being observed (null when its name did not fit) and the path observed last in it.
    EventStats* current_event_ = nullptr;
    PathStats* last_path_ = nullptr;
    // Open addressing, twice the cap: a probe ends at an empty slot well before the table is full.
    std::vector<std::atomic<PathStats*>> path_index_;
    std::vector<std::unique_ptr<PathStats>> paths_;
    std::atomic<uint32_t> path_count_{0};
    std::vector<std::atomic<EventStats*>> event_index_;
    std::vector<std::unique_ptr<EventStats>> events_;
    uint32_t enum_tables_ = 0;
    std::vector<std::unique_ptr<EnumTable>> enum_owned_;
    std::vector<std::unique_ptr<std::string>> detector_names_;
    Counter events_total_;
    Counter events_observed_;
    Counter paths_overflow_;
    Counter events_overflow_;
    Counter enum_paths_overflow_;
    std::atomic<size_t> memory_bytes_{0};
    void grew(size_t bytes) {
        memory_bytes_.store(memory_bytes_.load(std::memory_order_relaxed) + bytes, std::memory_order_relaxed);
    }
};

// One worker's tables, one per learning profile, created on first use.
class ObservationShard {
  public:
    ObservationShard(const Limits& limits, const HmacKey& client_key, Clock clock)
        : limits_(limits), client_key_(client_key), clock_(clock) {}
    // Hashes client identities when the rules have no hash key of their own.
    const HmacKey& client_key() const { return client_key_; }
    // The table of `profile`, or null when kMaxProfiles profiles are already learning.
    ProfileTable* profile(std::string_view profile);
    template <typename Fn>
    void for_each_profile(Fn&& fn) const {
        const uint32_t n = count_.load(std::memory_order_acquire);
        for (uint32_t i = 0; i < n; ++i) fn(*tables_[i].load(std::memory_order_acquire));
    }

  private:
    Limits limits_;
    const HmacKey& client_key_;
    Clock clock_;
    std::atomic<ProfileTable*> tables_[kMaxProfiles] = {};
    std::atomic<uint32_t> count_{0};
    std::vector<std::unique_ptr<ProfileTable>> owned_;
};

// Owned by whoever runs the workers (the Server); shard(i) belongs to worker i alone.
class ObservationStore {
  public:
    // `clock`: what the observation budget is measured against (benchmarks and tests pass their own).
    explicit ObservationStore(size_t workers, Limits limits = {}, Clock clock = monotonic_ms);
    ObservationShard& shard(size_t worker) { return *shards_[worker]; }
    size_t shard_count() const { return shards_.size(); }
    const ObservationShard& shard(size_t worker) const { return *shards_[worker]; }
    const Limits& limits() const { return limits_; }

  private:
    Limits limits_;
    std::shared_ptr<const HmacKey> client_key_;  // in memory only: a restart forgets which client was which
    std::vector<std::unique_ptr<ObservationShard>> shards_;
};

}  // namespace edgeguard::privacy::learn
