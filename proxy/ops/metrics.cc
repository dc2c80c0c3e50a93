// The metrics registry: per-worker shards of relaxed atomic counters the hot path bumps, the label tables
// (routes, upstreams, profiles, rules) interned when a config loads, and the registration of families
// other subsystems render themselves. The text exposition is metrics_exposition.cc.
#include "proxy/ops/metrics.h"

#include <chrono>
#include <functional>

#include "filters/filter_api.h"
#include "proxy/config/config.h"
#include "proxy/ops/process_metrics.h"

namespace edgeguard {

namespace {

size_t round_up_pow2(size_t n) {
    size_t p = 1;
    while (p < n) p <<= 1;
    return p;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------------
// names of the closed enums

std::string_view reject_reason_name(RejectReason r) {
    switch (r) {
        case RejectReason::Allowlist:
            return "allowlist";
        case RejectReason::RateLimit:
            return "rate_limit";
        case RejectReason::ConnectionLimit:
            return "connection_limit";
        case RejectReason::Size:
            return "size";
        case RejectReason::Parse:
            return "parse";
        case RejectReason::Privacy:
            return "privacy";
        case RejectReason::Timeout:
            return "timeout";
    }
    return "unknown";
}

std::string_view http2_goaway_name(Http2Goaway g) {
    switch (g) {
        case Http2Goaway::Idle:
            return "idle";
        case Http2Goaway::Drain:
            return "drain";
        case Http2Goaway::StreamResets:
            return "stream_resets";
        case Http2Goaway::ControlFrames:
            return "control_frames";
        case Http2Goaway::Stalled:
            return "stalled";
        case Http2Goaway::Protocol:
            return "protocol";
    }
    return "unknown";
}

std::string_view privacy_action_name(PrivacyAction a) {
    switch (a) {
        case PrivacyAction::Reject:
            return "reject";
        case PrivacyAction::Drop:
            return "drop";
        case PrivacyAction::Redact:
            return "redact";
        case PrivacyAction::Mask:
            return "mask";
        case PrivacyAction::Hash:
            return "hash";
        case PrivacyAction::TruncateIp:
            return "truncate_ip";
        case PrivacyAction::Report:
            return "report";
        case PrivacyAction::Pass:
            return "pass";
        case PrivacyAction::Other:
            return "other";
    }
    return "other";
}

PrivacyAction parse_privacy_action(std::string_view name) {
    for (size_t i = 0; i + 1 < kPrivacyActionCount; ++i) {
        auto a = static_cast<PrivacyAction>(i);
        if (privacy_action_name(a) == name) return a;
    }
    return PrivacyAction::Other;
}

std::string_view privacy_verdict_name(PrivacyVerdict v) {
    switch (v) {
        case PrivacyVerdict::Unchanged:
            return "unchanged";
        case PrivacyVerdict::Rewritten:
            return "rewritten";
        case PrivacyVerdict::Rejected:
            return "rejected";
        case PrivacyVerdict::InvalidJson:
            return "invalid_json";
        case PrivacyVerdict::DecodeFailed:
            return "decode_failed";
    }
    return "unknown";
}

// ---------------------------------------------------------------------------------------------------------------
// LabelTable

LabelTable::LabelTable(size_t capacity)
    : capacity_(capacity < 1 ? 1 : capacity),
      slot_mask_(round_up_pow2(capacity_ * 2) - 1),
      slots_(new std::atomic<const Entry*>[slot_mask_ + 1]),
      by_index_(new std::atomic<const Entry*>[capacity_]) {
    for (size_t i = 0; i <= slot_mask_; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
    for (size_t i = 0; i < capacity_; ++i) by_index_[i].store(nullptr, std::memory_order_relaxed);
    intern(kOtherLabelName);
}

LabelTable::~LabelTable() {
    for (size_t i = 0; i < capacity_; ++i) delete by_index_[i].load(std::memory_order_relaxed);
}

const LabelTable::Entry* LabelTable::probe(std::string_view name, size_t& slot) const {
    slot = std::hash<std::string_view>{}(name)&slot_mask_;
    for (;;) {
        const Entry* e = slots_[slot].load(std::memory_order_acquire);
        if (e == nullptr || e->name == name) return e;
        slot = (slot + 1) & slot_mask_;  // never full: at most capacity_ of 2 * capacity_ slots are used
    }
}

uint32_t LabelTable::find(std::string_view name) const {
    size_t slot;
    const Entry* e = probe(name, slot);
    return e ? e->index : kOtherLabel;
}

uint32_t LabelTable::intern(std::string_view name) {
    size_t slot;
    if (const Entry* e = probe(name, slot)) return e->index;
    std::lock_guard lock(insert_mutex_);
    if (const Entry* e = probe(name, slot)) return e->index;  // another thread won the race
    size_t n = size_.load(std::memory_order_relaxed);
    if (n >= capacity_) return kOtherLabel;
    auto* e = new Entry{std::string(name), static_cast<uint32_t>(n)};
    by_index_[n].store(e, std::memory_order_release);
    slots_[slot].store(e, std::memory_order_release);
    size_.store(n + 1, std::memory_order_release);
    return e->index;
}

std::string_view LabelTable::name(uint32_t index) const {
    if (index >= size()) return kOtherLabelName;
    return by_index_[index].load(std::memory_order_acquire)->name;
}

// ---------------------------------------------------------------------------------------------------------------
// MetricsShard

void HistogramCells::observe_micros(uint64_t micros) {
    // The bounds in whole microseconds, what is observed: two observations per request compare integers
    // instead of dividing into seconds first (the same bucket for every count of microseconds).
    static constexpr auto kBoundsMicros = [] {
        std::array<uint64_t, kLatencyBucketsSeconds.size()> bounds{};
        for (size_t i = 0; i < bounds.size(); ++i)
            bounds[i] = static_cast<uint64_t>(kLatencyBucketsSeconds[i] * 1e6 + 0.5);
        return bounds;
    }();
    size_t i = 0;
    while (i < kBoundsMicros.size() && micros > kBoundsMicros[i]) ++i;
    buckets[i].fetch_add(1, std::memory_order_relaxed);
    sum_micros.fetch_add(micros, std::memory_order_relaxed);
}

size_t status_cell(int status) {
    // A table indexed by status code, built once at compile time: one load on the hot path.
    static constexpr auto kCellOf = [] {
        std::array<uint8_t, 600> cells{};
        for (auto& c : cells) c = static_cast<uint8_t>(kTrackedStatuses.size());
        for (size_t i = 0; i < kTrackedStatuses.size(); ++i) cells[kTrackedStatuses[i]] = static_cast<uint8_t>(i);
        return cells;
    }();
    return status >= 0 && status < static_cast<int>(kCellOf.size()) ? kCellOf[static_cast<size_t>(status)]
                                                                     : kTrackedStatuses.size();
}

void MetricsShard::request_done(uint32_t route, int status, uint64_t duration_micros, uint64_t in,
                                uint64_t out) {
    route = clamp_route(route);
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 5;  // a malformed status is counted as a server error, never lost
    add(requests[route][static_cast<size_t>(cls - 1)]);
    add(statuses[route][status_cell(status)]);
    request_duration[route].observe_micros(duration_micros);
    add(bytes_in[route], in);
    add(bytes_out[route], out);
}

void MetricsShard::upstream_response(uint32_t upstream, uint64_t duration_micros) {
    upstream_duration[clamp_upstream(upstream)].observe_micros(duration_micros);
}

void MetricsShard::privacy_verdict(uint32_t profile, PrivacyVerdict v) {
    if (profile >= kMaxProfileLabels) profile = kOtherLabel;
    add(privacy_verdicts[profile][static_cast<size_t>(v)]);
}

// ---------------------------------------------------------------------------------------------------------------
// Metrics

uint32_t MetricsLabelIds::profile(std::string_view name) const {
    for (const auto& [n, id] : profiles)
        if (n == name) return id;
    return kOtherLabel;
}

Metrics::Metrics(size_t worker_shards)
    : worker_shards_(worker_shards),
      start_time_unix_(process_start_time_seconds()),
      privacy_decisions_(
          new std::atomic<uint64_t>[kMaxProfileLabels * kMaxRuleLabels * kPrivacyActionCount]) {
    for (size_t i = 0; i <= worker_shards_; ++i) shards_.push_back(std::make_unique<MetricsShard>());
    for (size_t i = 0; i < kMaxProfileLabels * kMaxRuleLabels * kPrivacyActionCount; ++i)
        privacy_decisions_[i].store(0, std::memory_order_relaxed);
}

Metrics::~Metrics() = default;

MetricsLabelIds Metrics::register_config(const Config& config) {
    MetricsLabelIds ids;
    for (const auto& r : config.routes) ids.routes.push_back(routes_.intern(r.name));
    for (const auto& u : config.upstreams) ids.upstreams.push_back(upstreams_.intern(u.name));
    for (const auto& r : config.routes) {
        if (r.privacy_profile.empty() || ids.profile(r.privacy_profile) != kOtherLabel) continue;
        ids.profiles.emplace_back(r.privacy_profile, profiles_.intern(r.privacy_profile));
    }
    return ids;
}

void Metrics::privacy_decision(uint32_t profile, std::string_view rule_id, PrivacyAction action, uint64_t n) {
    if (profile >= kMaxProfileLabels) profile = kOtherLabel;
    const uint32_t rule = rules_.intern(rule_id);
    const size_t cell = (profile * kMaxRuleLabels + rule) * kPrivacyActionCount + static_cast<size_t>(action);
    privacy_decisions_[cell].fetch_add(n, std::memory_order_relaxed);
}

void Metrics::record_privacy(MetricsShard& shard, uint32_t profile, const privacy::FilterOutput& out) {
    using V = privacy::FilterOutput::Verdict;
    const bool undecodable = out.status == 400 || out.status == 413 || out.status == 415;
    const bool invalid_json = out.code == "request_parsing_error";
    shard.privacy_verdict(profile, out.verdict == V::Rejected    ? (invalid_json  ? PrivacyVerdict::InvalidJson
                                                                    : undecodable ? PrivacyVerdict::DecodeFailed
                                                                                  : PrivacyVerdict::Rejected)
                                   : out.verdict == V::Rewritten ? PrivacyVerdict::Rewritten
                                                                 : PrivacyVerdict::Unchanged);
    for (const auto& entry : out.audit)
        privacy_decision(profile, entry.rule_id, parse_privacy_action(entry.action),
                         entry.count ? entry.count : 1);
}

void Metrics::config_loaded(std::string_view config_hash) {
    {
        std::lock_guard lock(slow_mutex_);
        config_hash_ = config_hash;
    }
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    config_last_reload_unix_.store(std::chrono::duration_cast<std::chrono::seconds>(now).count(),
                                   std::memory_order_relaxed);
    config_reloads_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::config_reload_failed() {
    config_reload_failures_.fetch_add(1, std::memory_order_relaxed);
}

void Metrics::add_external(std::string name, std::string help, std::string type,
                           std::function<double()> read) {
    std::lock_guard lock(slow_mutex_);
    externals_.push_back({std::move(name), std::move(help), std::move(type), std::move(read)});
}

void Metrics::add_collector(std::function<void(std::string&)> render) {
    std::lock_guard lock(slow_mutex_);
    collectors_.push_back(std::move(render));
}

}  // namespace edgeguard
