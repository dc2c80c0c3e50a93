#include "filters/learn/observation_store.h"

#include <time.h>

#include <algorithm>
#include <bit>

#include "filters/string_memo.h"

namespace edgeguard::privacy::learn {

namespace {

size_t index_size_for(uint32_t cap) {
    return std::bit_ceil(static_cast<size_t>(cap) * 2 + 2);
}

// Short strings compared inline (a libc memcmp call per member cost more than the comparison).
bool same_text(std::string_view a, std::string_view b) {
    return a.size() == b.size() && memo_detail::equal_bytes(a.data(), b.data(), a.size());
}

template <typename T>
void store_min(std::atomic<T>& a, T v) {
    if (v < a.load(std::memory_order_relaxed)) a.store(v, std::memory_order_relaxed);
}
template <typename T>
void store_max(std::atomic<T>& a, T v) {
    if (v > a.load(std::memory_order_relaxed)) a.store(v, std::memory_order_relaxed);
}

}  // namespace

// The coarse clock: a vDSO read without a hardware timer access, and a few milliseconds of resolution are
// plenty for a budget per second.
uint64_t monotonic_ms() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1000 + static_cast<uint64_t>(ts.tv_nsec) / 1000000;
}

ProfileTable::ProfileTable(std::string name, const Limits& limits, Clock clock)
    : name_(std::move(name)),
      limits_(limits),
      clock_(clock),
      path_index_(index_size_for(limits.paths)),
      event_index_(index_size_for(limits.events)) {
    grew(sizeof(*this) + path_index_.size() * sizeof(path_index_[0]) +
         event_index_.size() * sizeof(event_index_[0]));
}

// The budget is kept in thousandths of an event so that a rate below one event per millisecond still
// accrues between close requests; it holds at most one second's worth.
void ProfileTable::begin_request(uint32_t events_per_second) {
    const uint64_t now = clock_();
    const uint64_t full = uint64_t{events_per_second} * 1000;
    if (events_per_second != rate_ || !budget_started_) {
        // The first request, or a reload changed the rate: start from a full second's worth.
        rate_ = events_per_second;
        budget_ = full;
        budget_started_ = true;
    } else if (now > refilled_ms_) {
        budget_ = std::min(full, budget_ + (now - refilled_ms_) * events_per_second);
    }
    refilled_ms_ = std::max(now, refilled_ms_);
}

bool ProfileTable::event_seen(std::string_view event) {
    events_total_.add();
    bool observe = true;
    if (rate_ != 0) {
        observe = budget_ >= 1000;
        if (observe) budget_ -= 1000;
    }
    if (observe) events_observed_.add();
    current_event_ = nullptr;
    last_path_ = nullptr;
    const uint64_t hash = mix64(fast_string_hash(event));
    const size_t mask = event_index_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        EventStats* e = event_index_[i].load(std::memory_order_relaxed);
        if (e == nullptr) {
            if (events_.size() >= limits_.events) {
                events_overflow_.add();
                return observe;
            }
            auto fresh = std::make_unique<EventStats>();
            fresh->name.assign(event);
            fresh->hash = hash;
            fresh->count.add();
            if (observe) fresh->observed.add();
            current_event_ = fresh.get();
            grew(sizeof(EventStats) + fresh->name.capacity());
            event_index_[i].store(fresh.get(), std::memory_order_release);
            events_.push_back(std::move(fresh));
            return observe;
        }
        if (e->hash == hash && same_text(e->name, event)) {
            e->count.add();
            if (observe) e->observed.add();
            current_event_ = e;
            return observe;
        }
    }
}

// The path the previous lookups predict (the one that followed the last path, or came first in the last
// event of this name), checked exactly; else the index.
PathStats* ProfileTable::find_path(std::string_view event, std::string_view key) {
    if (current_event_ != nullptr) {
        PathStats* hint = last_path_ != nullptr ? last_path_->next_hint : current_event_->first_hint;
        PathStats* p = hint;
        if (p == nullptr || p->owner != current_event_ || !same_text(p->key, key) ||
            !same_text(current_event_->name, event))
            p = find_or_add_path(event, key);
        if (p != nullptr && p != hint) {
            if (last_path_ != nullptr)
                last_path_->next_hint = p;
            else
                current_event_->first_hint = p;
        }
        last_path_ = p;
        return p;
    }
    return find_or_add_path(event, key);
}

PathStats* ProfileTable::find_or_add_path(std::string_view event, std::string_view key) {
    const uint64_t hash = mix64(fast_string_hash(event, key));
    const size_t mask = path_index_.size() - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        PathStats* p = path_index_[i].load(std::memory_order_relaxed);
        if (p == nullptr) {
            if (paths_.size() >= limits_.paths) {
                paths_overflow_.add();
                return nullptr;
            }
            auto fresh = std::make_unique<PathStats>();
            fresh->event.assign(event);
            fresh->key.assign(key);
            fresh->hash = hash;
            if (current_event_ != nullptr && same_text(current_event_->name, event))
                fresh->owner = current_event_;
            grew(sizeof(PathStats) + fresh->event.capacity() + fresh->key.capacity());
            p = fresh.get();
            path_index_[i].store(p, std::memory_order_release);
            paths_.push_back(std::move(fresh));
            path_count_.store(static_cast<uint32_t>(paths_.size()), std::memory_order_relaxed);
            return p;
        }
        if (p->hash == hash && same_text(p->event, event) && same_text(p->key, key)) return p;
    }
}

const char* ProfileTable::intern(std::string_view detector) {
    for (const auto& s : detector_names_)
        if (*s == detector) return s->c_str();
    detector_names_.push_back(std::make_unique<std::string>(detector));
    return detector_names_.back()->c_str();
}

EnumTable* ProfileTable::enum_table(PathStats& p) {
    EnumTable* t = p.enums.load(std::memory_order_relaxed);
    if (t != nullptr) return t;
    if (enum_tables_ >= limits_.enum_paths) {
        enum_paths_overflow_.add();
        return nullptr;
    }
    ++enum_tables_;
    enum_owned_.push_back(std::make_unique<EnumTable>(limits_.enum_values));
    grew(sizeof(EnumTable) + limits_.enum_values * (sizeof(std::atomic<EnumEntry*>) + sizeof(uint64_t)));
    t = enum_owned_.back().get();
    p.enums.store(t, std::memory_order_release);
    return t;
}

void ProfileTable::observe(const ValueObservation& obs) {
    PathStats* p = find_path(obs.event, obs.key);
    if (p == nullptr) return;
    p->count.add();
    p->types.store(p->types.load(std::memory_order_relaxed) | obs.type, std::memory_order_relaxed);
    p->distinct.add(obs.value_hash);
    if (obs.type == kString) {
        p->strings.add();
        store_min(p->min_length, obs.length);
        store_max(p->max_length, obs.length);
        if (obs.uuid) p->uuids.add();
        if (obs.timestamp) p->timestamps.add();
    }
    if (obs.person_key) p->person_key.add();
    if (obs.hits != nullptr && !obs.hits->empty()) {
        for (uint32_t h = 0; h < obs.hits->used; ++h) {
            const std::string_view name = obs.hits->names[h];
            uint32_t slot = 0;
            for (; slot < kDetectorSlots; ++slot) {
                const char* existing = p->hit_names[slot].load(std::memory_order_relaxed);
                if (existing == nullptr) {
                    p->hit_names[slot].store(intern(name), std::memory_order_release);
                    break;
                }
                if (name == existing) break;
            }
            if (slot == kDetectorSlots)
                p->hit_overflow.add(obs.hits->counts[h]);
            else
                p->hit_counts[slot].add(obs.hits->counts[h]);
        }
        p->hit_overflow.add(obs.hits->overflow);
    }
    if (obs.enum_candidate.empty() || obs.enum_candidate.size() > limits_.enum_max_length) return;
    EnumTable* t = enum_table(*p);
    if (t == nullptr) return;
    const uint32_t n = t->size.load(std::memory_order_relaxed);
    EnumEntry* entry = nullptr;
    for (uint32_t i = 0; i < n; ++i) {
        if (t->hashes[i] != obs.value_hash) continue;
        EnumEntry* e = t->entries[i].load(std::memory_order_relaxed);
        if (same_text(e->value, obs.enum_candidate)) {
            entry = e;
            break;
        }
    }
    if (entry == nullptr) {
        if (n >= t->entries.size()) {
            t->overflow.add();
            return;
        }
        t->owned.push_back(std::make_unique<EnumEntry>());
        entry = t->owned.back().get();
        entry->value.assign(obs.enum_candidate);
        t->hashes.push_back(obs.value_hash);
        grew(sizeof(EnumEntry) + entry->value.capacity());
        t->entries[n].store(entry, std::memory_order_release);
        t->size.store(n + 1, std::memory_order_release);
    }
    entry->count.add();
    const uint32_t clients = entry->client_count.load(std::memory_order_relaxed);
    if (clients >= kEnumClients) return;  // k-anonymous already: the client hashes are no longer needed
    for (uint32_t i = 0; i < clients; ++i)
        if (entry->clients[i].load(std::memory_order_relaxed) == obs.client) return;
    entry->clients[clients].store(obs.client, std::memory_order_relaxed);
    entry->client_count.store(clients + 1, std::memory_order_release);
}

ProfileTable* ObservationShard::profile(std::string_view profile) {
    const uint32_t n = count_.load(std::memory_order_relaxed);
    for (uint32_t i = 0; i < n; ++i) {
        ProfileTable* t = tables_[i].load(std::memory_order_relaxed);
        if (t->name() == profile) return t;
    }
    if (n == kMaxProfiles) return nullptr;
    owned_.push_back(std::make_unique<ProfileTable>(std::string(profile), limits_, clock_));
    tables_[n].store(owned_.back().get(), std::memory_order_release);
    count_.store(n + 1, std::memory_order_release);
    return owned_.back().get();
}

ObservationStore::ObservationStore(size_t workers, Limits limits, Clock clock)
    : limits_(limits), client_key_(HmacKey::random("learn")) {
    for (size_t i = 0; i < (workers == 0 ? 1 : workers); ++i)
        shards_.push_back(std::make_unique<ObservationShard>(limits, *client_key_, clock));
}

}  // namespace edgeguard::privacy::learn
