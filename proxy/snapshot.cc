#include "proxy/snapshot.h"

namespace edgeguard {

Snapshot::Snapshot(std::shared_ptr<const Config> cfg, MetricsLabelIds label_ids)
    : config(std::move(cfg)), router(config->routes), labels(std::move(label_ids)) {}

SnapshotHolder::SnapshotHolder(std::shared_ptr<const Config> initial, MetricsLabelIds labels) {
    auto snap = std::make_shared<Snapshot>(std::move(initial), std::move(labels));
    snap->generation = 1;
    current_.store(std::move(snap), std::memory_order_release);
    generation_.store(1, std::memory_order_release);
}

void SnapshotHolder::publish(std::shared_ptr<const Config> next, MetricsLabelIds labels) {
    auto snap = std::make_shared<Snapshot>(std::move(next), std::move(labels));
    snap->generation = generation_.load(std::memory_order_relaxed) + 1;
    uint64_t gen = snap->generation;
    current_.store(std::move(snap), std::memory_order_release);
    generation_.store(gen, std::memory_order_release);
}

}  // namespace edgeguard
