// What the server owns for operators across reloads: the metrics registry, the access log and the admin
// listener, started together from the first config and kept in step with every later one. The server holds
// one of these; workers reach the metrics shard and access-log producer by their worker index.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "proxy/access_log.h"
#include "proxy/admin_server.h"
#include "proxy/config.h"
#include "proxy/metrics.h"

namespace edgeguard {

class Observability {
public:
    // Starts the admin listener (Config::admin) and the access-log writer (Config::access_log) for `workers`
    // worker threads, registers the first config's labels and counts it as loaded. `reload` backs POST /reload
    // (empty = no endpoint). Returns null and sets `error` when the admin address cannot be bound or the log
    // file cannot be opened. /readyz stays 503 until set_ready(true).
    static std::unique_ptr<Observability> start(const Config& initial, size_t workers,
                                                 AdminServer::ReloadHandler reload, std::string& error);

    Metrics& metrics() { return *metrics_; }
    AccessLog& access_log() { return *access_log_; }
    AdminServer& admin() { return *admin_; }
    const MetricsLabelIds& initial_label_ids() const { return initial_ids_; }

    // Call on the reload thread after a new config loaded cleanly, before publishing it: interns its labels
    // (returned for the new snapshot), applies the admin allowlist and a changed access-log output, and sets
    // the config hash. An access-log file that cannot be opened keeps the old output and is reported in
    // `error` (the reload itself still succeeds: logging is not worth refusing a privacy-rule fix for).
    MetricsLabelIds config_published(const Config& config, std::string& error);
    void config_reload_failed() { metrics_->config_reload_failed(); }

    void set_ready(bool ready) { admin_->set_ready(ready); }

private:
    Observability() = default;

    std::unique_ptr<Metrics> metrics_;
    std::unique_ptr<AccessLog> access_log_;
    std::unique_ptr<AdminServer> admin_;  // declared after metrics_: destroyed (stopped) before it
    MetricsLabelIds initial_ids_;
    std::mutex reload_mutex_;
    std::string access_log_output_;
};

}  // namespace edgeguard
