// Snapshot publication across threads: what a reload does while workers serve. These tests carry the
// "threads" label, so the TSan pass checks the publication protocol and the workers' use of it for races.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "proxy/ops/metrics.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/worker.h"

namespace edgeguard {
namespace {

// A snapshot whose config carries `mark` in a field the holder never touches, so a reader can tell whether the
// config it sees belongs to the generation it sees. `upstream_port` varies the upstream so a worker rebuilds it.
std::shared_ptr<Snapshot> make_snapshot(uint32_t mark, uint16_t upstream_port = 9) {
    auto cfg = std::make_shared<Config>();
    cfg->workers = mark;
    UpstreamConfig up;
    up.name = "app";
    up.servers.push_back(HostPort{"127.0.0.1", upstream_port});
    cfg->upstreams.push_back(up);
    return std::make_shared<Snapshot>(std::move(cfg), MetricsLabelIds{});
}

TEST(SnapshotHolder, ReadersAlwaysSeeAWholeSnapshotAndGenerationsNeverGoBack) {
    SnapshotHolder holder(make_snapshot(0));
    constexpr uint32_t kPublishes = 2000;
    std::atomic<bool> done{false};
    constexpr size_t kReaders = 3;
    std::vector<std::thread> readers;
    std::vector<int> torn(kReaders, 0), backwards(kReaders, 0);
    for (size_t r = 0; r < kReaders; ++r) {
        readers.emplace_back([&, r] {
            uint64_t last = 0;
            while (!done.load(std::memory_order_acquire)) {
                const uint64_t seen_generation = holder.generation();
                std::shared_ptr<const Snapshot> snap = holder.load();
                // The publication order (snapshot first, then generation) means the snapshot is never older
                // than the generation number announced before it was loaded.
                if (snap->generation < seen_generation) ++backwards[r];
                if (snap->generation < last) ++backwards[r];
                last = snap->generation;
                // publish(k) is the k-th publication: generation k + 1, config mark k.
                if (snap->config->workers + 1 != snap->generation) ++torn[r];
            }
        });
    }
    for (uint32_t k = 1; k <= kPublishes; ++k) holder.publish(make_snapshot(k));
    done.store(true, std::memory_order_release);
    for (auto& t : readers) t.join();
    for (size_t r = 0; r < readers.size(); ++r) {
        EXPECT_EQ(torn[r], 0) << "reader " << r;
        EXPECT_EQ(backwards[r], 0) << "reader " << r;
    }
    EXPECT_EQ(holder.generation(), kPublishes + 1);
    EXPECT_EQ(holder.load()->config->workers, kPublishes);
}

// Reloads while worker threads run their loops: each publication wakes the workers, which take the new snapshot
// and rebuild the upstream pool whose server changed; then a graceful stop. Old snapshots must be let go.
TEST(Worker, FollowsPublishedSnapshotsAndStopsOnRequest) {
    SnapshotHolder holder(make_snapshot(0));
    Metrics metrics(2);
    std::vector<std::unique_ptr<Worker>> workers;
    for (size_t i = 0; i < 2; ++i) {
        auto w = std::make_unique<Worker>(i, holder, &metrics, nullptr);
        std::string error;
        ASSERT_TRUE(w->init(error)) << error;
        workers.push_back(std::move(w));
    }
    for (auto& w : workers) w->start();

    std::weak_ptr<const Snapshot> middle;
    constexpr uint32_t kPublishes = 300;
    for (uint32_t k = 1; k <= kPublishes; ++k) {
        auto next = make_snapshot(k, static_cast<uint16_t>(9 + k % 2));
        if (k == kPublishes / 2) middle = next;
        holder.publish(std::move(next));
        for (auto& w : workers) w->notify_new_snapshot();
        if (k % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    for (auto& w : workers) w->request_stop(Millis{2000});
    for (auto& w : workers) w->join();  // a worker that never saw the stop would hang here (ctest timeout)
    // Every worker moved past the middle snapshot, so nobody holds it any more.
    EXPECT_TRUE(middle.expired());
    for (auto& w : workers) EXPECT_EQ(w->current_snapshot()->generation, kPublishes + 1);
    workers.clear();
}

// Connections and streams copy their worker's snapshot pointer; those copies must count on a reference count of
// that worker's own, not on the published snapshot's, which every worker would otherwise write to.
TEST(Worker, CopiesOfItsSnapshotCountOnAReferenceOfItsOwn) {
    SnapshotHolder holder(make_snapshot(7));
    Metrics metrics(2);
    Worker a(0, holder, &metrics, nullptr), b(1, holder, &metrics, nullptr);
    std::string error;
    ASSERT_TRUE(a.init(error)) << error;
    ASSERT_TRUE(b.init(error)) << error;
    const std::shared_ptr<const Snapshot> published = holder.load();
    const long published_refs = published.use_count();
    std::vector<std::shared_ptr<const Snapshot>> held;
    for (int i = 0; i < 8; ++i) {
        held.push_back(a.current_snapshot());
        held.push_back(b.current_snapshot());
    }
    EXPECT_EQ(published.use_count(), published_refs);
    EXPECT_EQ(a.current_snapshot().get(), published.get());
    EXPECT_EQ(b.current_snapshot().get(), published.get());
    EXPECT_EQ(a.current_snapshot().use_count(), 9);  // the worker's own plus its eight copies
    EXPECT_EQ(b.current_snapshot().use_count(), 9);
}

}  // namespace
}  // namespace edgeguard
