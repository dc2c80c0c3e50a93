// The process: N workers, the current config snapshot, and the control thread that handles signals.
// SIGTERM/SIGINT stop gracefully (no new connections, in-flight requests finish until the grace deadline,
// exit 0); SIGHUP reloads the config off the workers and publishes it only when it loads cleanly.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "proxy/ops/access_log.h"
#include "proxy/ops/admin_server.h"
#include "proxy/access/connection_limits.h"
#include "proxy/access/rate_limiter.h"
#include "proxy/access/redis_limiter.h"
#include "proxy/ops/metrics.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/worker.h"
#include "proxy/tls/certificate_watcher.h"
#include "proxy/tcp/tcp_listener_stats.h"

namespace edgeguard {

class Server {
public:
    Server(std::string config_path, std::shared_ptr<const Config> initial);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds every listener on every worker, prints "edgeguard: ready", then serves until SIGTERM/SIGINT.
    // Returns the process exit code.
    int run();

    // Loads the config file again and, if it is valid, publishes it to the workers. Every error is logged
    // and the running config stays. Thread-safe; called on SIGHUP (and by an admin endpoint).
    bool reload();
    // Same, with every error (one per line) or the new config hash as the message (admin /reload).
    AdminServer::ReloadResult reload_with_report();

    // Asks the server to stop as on SIGTERM (thread-safe).
    void request_stop();

    SnapshotHolder& snapshots() { return snapshots_; }
    Metrics& metrics() { return *metrics_; }
    size_t worker_count() const { return workers_.size(); }

private:
    void stop_workers();
    // The certificate watcher saw changed files: rebuilds the TLS contexts into a new snapshot of the same
    // config, or keeps the current one (and logs why) when the files do not load.
    void reload_certificates();
    std::shared_ptr<Snapshot> make_initial_snapshot(const std::shared_ptr<const Config>& config);

    std::string config_path_;
    std::shared_ptr<const Config> initial_;
    std::unique_ptr<Metrics> metrics_;  // outlives workers and reloads, so counters survive both
    // What `learn: true` profiles observed, one shard per worker; outlives reloads like metrics_.
    std::unique_ptr<privacy::learn::ObservationStore> observations_;
    // State that outlives reloads and is shared by every worker (declared before snapshots_, which
    // is built from rate_limiter_).
    RateLimiter rate_limiter_;
    ConnectionLimits connection_limits_;
    std::shared_ptr<RedisLimiterCounters> redis_counters_ = std::make_shared<RedisLimiterCounters>();
    TcpListenerRegistry tcp_registry_;  // TCP listeners' counters and limits, kept across reloads
    std::vector<std::string> startup_errors_;  // TLS files that could not be loaded: run() refuses to start
    SnapshotHolder snapshots_;
    std::unique_ptr<AccessLog> access_log_;
    std::unique_ptr<AdminServer> admin_;
    std::vector<std::unique_ptr<Worker>> workers_;
    std::unique_ptr<CertificateWatcher> certificate_watcher_;
    std::mutex reload_mutex_;
    std::atomic<uint32_t> total_connections_{0};  // all workers' client connections (Limits::max_connections)
};

// Number of workers for a config: config.workers, or the hardware thread count when 0.
size_t worker_count_for(const Config& config);

}  // namespace edgeguard
