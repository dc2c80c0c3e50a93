// Cost of the operations work a worker does per request: the metrics update (one shard, integer indices) and
// formatting + enqueueing one access-log line. Run single-threaded and with one thread per shard, to show the
// shards keep workers from contending.
//
//   build-ops/real/bench/ops_bench --benchmark_min_time=0.2
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "proxy/ops/access_log.h"
#include "proxy/config/config.h"
#include "proxy/ops/metrics.h"

namespace edgeguard {
namespace {

Metrics& shared_metrics() {
    static Metrics* m = [] {
        auto* metrics = new Metrics(8);
        Config c;
        for (const char* name : {"livestream", "capture", "replay", "flags", "web"}) {
            RouteConfig r;
            r.name = name;
            c.routes.push_back(r);
        }
        metrics->register_config(c);
        return metrics;
    }();
    return *m;
}

void BM_MetricsRequestDone(benchmark::State& state) {
    Metrics& m = shared_metrics();
    MetricsShard& shard = m.shard(static_cast<size_t>(state.thread_index()));
    uint64_t i = 0;
    for (auto _ : state) {
        shard.request_done(1, 200, 1'500 + (i & 1023), 900, 120);
        shard.upstream_response(0, 1'200);
        ++i;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MetricsRequestDone)->ThreadRange(1, 4)->UseRealTime();

void BM_MetricsRender(benchmark::State& state) {
    Metrics& m = shared_metrics();
    for (auto _ : state) benchmark::DoNotOptimize(m.render());
}
BENCHMARK(BM_MetricsRender);

void BM_AccessLogLine(benchmark::State& state) {
    std::string line;
    line.reserve(1024);
    AccessLogEntry e;
    e.start_unix_micros = 1'764'276'837'123'456;
    e.client = *IpAddress::parse("10.1.1.77");
    e.client_ip_policy = ClientIpPolicy::Truncate;
    e.method = "POST";
    e.host = "posthog.internal";
    e.target = "/e/?ip=1&_=1700000000000&ver=1.2.3";
    e.status = 200;
    e.duration_micros = 1234;
    e.upstream = "capture";
    e.upstream_micros = 1000;
    e.route = "capture";
    e.verdict = "rewritten";
    for (auto _ : state) {
        line.clear();
        append_access_log_line(line, e);
        benchmark::DoNotOptimize(line.data());
    }
    state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * line.size()));
}
BENCHMARK(BM_AccessLogLine);

// Whole hot-path cost including the ring push; the writer thread drains to /dev/null.
void BM_AccessLogEnqueue(benchmark::State& state) {
    static std::unique_ptr<AccessLog> log = [] {
        std::string error;
        AccessLog::Options o;
        o.producers = 4;
        o.ring_bytes = 4 << 20;
        o.flush_interval = std::chrono::milliseconds(5);
        return AccessLog::open(std::string("/dev/null"), o, error);
    }();
    AccessLogEntry e;
    e.client = *IpAddress::parse("10.1.1.77");
    e.method = "GET";
    e.host = "posthog.internal";
    e.target = "/decide/?v=3";
    e.status = 200;
    e.route = "flags";
    const size_t producer = static_cast<size_t>(state.thread_index());
    const uint64_t dropped_before = log->dropped();
    for (auto _ : state) log->log(producer, e);
    state.counters["dropped"] = static_cast<double>(log->dropped() - dropped_before);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AccessLogEnqueue)->ThreadRange(1, 2)->UseRealTime();

}  // namespace
}  // namespace edgeguard

BENCHMARK_MAIN();
